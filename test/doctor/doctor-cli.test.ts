import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import test from "ava";
import { FIXTURE_RELEASE, hostTree } from "../helpers/hosts.js";
import { cliPath, repoRoot } from "../helpers/paths.js";

const env = { ...process.env, NO_COLOR: "1", SSH_CONNECTION: "" };
const doctor = (...args: string[]) =>
  spawnSync(process.execPath, [cliPath, "doctor", ...args], { encoding: "utf8", env });

interface DoctorJson {
  blocked: boolean;
  checks: Array<{ id: string; status: string; found: string; fix?: string; blocksUp: boolean }>;
  facts: { root: string; kernel: { release: string }; kconfig: { symbols: number } | null };
}

test("debian12-e1000: table with badges, exit 0", (t) => {
  const r = doctor("--root", hostTree("debian12-e1000"));
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^OK {6}Kernel configuration +\/boot\/config-6\.1\.0-56-amd64/m);
  t.regex(r.stdout, /^WARN {4}Management link/m);
  t.regex(r.stdout, /nothing blocks `up`/);
  t.false(r.stdout.includes("\u001b["), "no ANSI without a terminal");
});

test("--json: one document on stdout, facts summarised", (t) => {
  const r = doctor("--root", hostTree("debian12-e1000"), "--json");
  t.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as DoctorJson;
  t.false(j.blocked);
  t.is(j.facts.kernel.release, FIXTURE_RELEASE);
  t.is(j.facts.kconfig?.symbols, 14);
  t.true(j.checks.some((c) => c.id === "nic:eth0" && c.status === "ok"));
});

test("secure-boot: exit 4 and the blocker named", (t) => {
  const r = doctor("--root", hostTree("secure-boot"));
  t.is(r.status, 4);
  t.regex(r.stdout, /^FAIL {4}Unsigned module loading/m);
  t.regex(r.stdout, /`up` would refuse: Unsigned module loading \(exit 4\)/);
});

test("--recipe: the shipped Debian 12 recipe on a host whose e1000 is built in blocks", (t) => {
  const r = doctor(
    "--root",
    hostTree("builtin-nic"),
    "--recipe",
    join(repoRoot, "recipes", "debian-12.yaml"),
    "--json",
  );
  t.is(r.status, 4, r.stderr);
  const j = JSON.parse(r.stdout) as DoctorJson;
  t.true(j.checks.some((c) => c.id === "nic:eth0" && c.status === "fail" && c.blocksUp));
});

test("a --root that is not a directory is a usage error (exit 2)", (t) => {
  const r = doctor("--root", join(repoRoot, "no-such-host-tree"));
  t.is(r.status, 2);
  t.regex(r.stderr, /--root .*not a directory/);
});

test("the real host: valid JSON; a missing /lib/modules for the running kernel is said plainly", (t) => {
  const r = doctor("--json");
  t.true(r.status === 0 || r.status === 4, `exit ${r.status}: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as DoctorJson;
  t.is(j.facts.root, "/");
  const release = execFileSync("uname", ["-r"], { encoding: "utf8" }).trim();
  t.is(j.facts.kernel.release, release);
  const moduleDir = j.checks.find((c) => c.id === "module-dir");
  if (moduleDir?.status === "fail") {
    t.regex(moduleDir.found, new RegExp(`/lib/modules/${release.replaceAll(".", "\\.")} does not exist`));
    t.is(r.status, 4);
  }
});

test("--help documents the options and the exit status", (t) => {
  const r = doctor("--help");
  t.is(r.status, 0);
  for (const s of ["--root", "--json", "--recipe", "4 when"]) t.true(r.stdout.includes(s), s);
});
