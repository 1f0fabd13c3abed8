import { spawnSync } from "node:child_process";
import { join } from "node:path";
import test from "ava";
import { cliPath, fixture, repoRoot } from "../helpers/paths.js";

const run = (...args: string[]) =>
  spawnSync(process.execPath, [cliPath, ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });

test("recipe validate on a broken recipe prints file:line:col and exits 2", (t) => {
  const file = fixture("recipes", "broken", "unknown-key-top-misspelt.yaml");
  const r = run("recipe", "validate", file);
  t.is(r.status, 2, r.stderr);
  t.true(
    r.stderr.includes(`${file}:5:1: error: unknown key "drivres" at the top level; did you mean "drivers"?`),
    r.stderr,
  );
  t.regex(r.stderr, /hint: keys allowed here: name, /);
  t.is(r.stdout, "");
});

test("recipe validate on the shipped recipes prints FILE: ok and exits 0", (t) => {
  const files = ["default", "debian-12", "ubuntu-24.04", "seed-2.6.37-e1000"].map((n) =>
    join("recipes", `${n}.yaml`),
  );
  const r = run("recipe", "validate", ...files);
  t.is(r.status, 0, r.stderr);
  for (const f of files) t.regex(r.stdout, new RegExp(`${f.replace(/\./g, "\\.")}: ok$`, "m"));
});

test("one bad file among good ones still exits 2, and --json reports each", (t) => {
  const bad = fixture("recipes", "broken", "moving-ref-branch.yaml");
  const r = run("recipe", "validate", "--json", "recipes/default.yaml", bad);
  t.is(r.status, 2);
  const doc = JSON.parse(r.stdout) as {
    ok: boolean;
    command: string;
    results: Array<{ file: string; ok: boolean; issues: Array<{ line: number; col: number }> }>;
    error: { exitCode: number; issues: Array<{ line: number; col: number }> };
  };
  t.like(doc, { ok: false, command: "recipe validate", error: { exitCode: 2 } });
  t.like(doc.error.issues[0], { line: 7, col: 13 });
  const out = doc.results;
  t.deepEqual(
    out.map((o) => o.ok),
    [true, false],
  );
  t.like(out[1]?.issues[0], { line: 7, col: 13 });
});

test("recipe show --json prints the recipe with defaults filled", (t) => {
  const r = run("recipe", "show", "recipes/default.yaml", "--json");
  t.is(r.status, 0, r.stderr);
  const rec = JSON.parse(r.stdout);
  t.like(rec, {
    name: "default",
    netmap: { moduleName: "netmap", layout: "configure", configure: { options: [] } },
    modules: { strategy: "updates", persist: false, initramfs: "auto" },
    guard: { management: "refuse", confirmTimeoutSec: 120 },
    verify: { pktgen: { vale: true, seconds: 3, size: 60 } },
  });
});

test("recipe show prints YAML by default and fails with exit 2 on a broken recipe", (t) => {
  const ok = run("recipe", "show", "recipes/seed-2.6.37-e1000.yaml");
  t.is(ok.status, 0, ok.stderr);
  t.regex(ok.stdout, /^ {2}moduleName: netmap_lin$/m);
  const bad = run("recipe", "show", fixture("recipes", "broken", "null-document.yaml"));
  t.is(bad.status, 2);
  t.regex(bad.stderr, /^error: .*null-document\.yaml:1:1: recipe is empty/m);
});
