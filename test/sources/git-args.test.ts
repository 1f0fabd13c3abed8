import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import test from "ava";
import { loadKernelCatalog, loadNetmapUpstream } from "../../toolkit/catalog/kernels.js";
import { RecipeError, UserError } from "../../toolkit/core/errors.js";
import { createExec, type ExecLogEntry } from "../../toolkit/core/exec.js";
import { ensureBuildSources } from "../../toolkit/kernel/build-sources.js";
import { resolveNetmapSource } from "../../toolkit/sources/netmap-source.js";
import { repoRoot } from "../helpers/paths.js";

/**
 * The git argv builders (issue 11): URLs after `--`, refs checked, nothing from a recipe read as an
 * option, and the checks hold for callers that bypass the recipe schema.
 */

const tmp = (t: { teardown(f: () => void): void }) => {
  const d = mkdtempSync(join(tmpdir(), "np-gitargs-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd })
    .toString()
    .trim();

/** Every command an Exec ran, as argv arrays. */
function recordingExec() {
  const ran: ExecLogEntry[] = [];
  return { exec: createExec({ onCommand: (e) => ran.push(e) }), ran };
}

function kernelRepo(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "Makefile"), "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 55\nEXTRAVERSION =\n");
  git(dir, "init", "-q", "-b", "main");
  git(dir, "add", "-A");
  git(dir, "commit", "-qm", "linux");
  git(dir, "tag", "v6.1.55");
  return dir;
}

test("kernel git sources: git clone ... --branch <tag> -- <url> <dir>, and the clone keeps no remote URL", async (t) => {
  const d = tmp(t);
  const url = pathToFileURL(kernelRepo(join(d, "linux"))).href;
  const { exec, ran } = recordingExec();
  const r = await ensureBuildSources(
    { kind: "git", url, tag: "v6.1.55" },
    { cacheDir: join(d, "cache"), exec, expectVersion: "6.1.55" },
  );
  t.is(r.version, "6.1.55");
  t.is(r.origin, "cloned");
  const clone = ran.find((e) => e.argv[1] === "clone")?.argv ?? [];
  t.deepEqual(clone.slice(-3), ["--", url, clone.at(-1) as string]);
  t.true(clone.indexOf("--") < clone.indexOf(url));
  t.false(
    readFileSync(join(r.dir, ".git", "config"), "utf8").includes(url),
    "no remote URL left in .git/config",
  );
});

test("kernel git sources: an option-like URL or tag is refused before git runs, whoever calls", async (t) => {
  const d = tmp(t);
  for (const spec of [
    { kind: "git" as const, url: "-uX@h:p", tag: "v6.1.55" },
    { kind: "git" as const, url: "ext::sh -c touch% x", tag: "v6.1.55" },
    { kind: "git" as const, url: "ssh://-oProxyCommand=touch/y", tag: "v6.1.55" },
    { kind: "git" as const, url: "https://git.kernel.org/linux.git", tag: "--upload-pack=touch" },
  ]) {
    const { exec, ran } = recordingExec();
    await t.throwsAsync(ensureBuildSources(spec, { cacheDir: join(d, "cache"), exec }), {
      instanceOf: UserError,
    });
    t.deepEqual(ran, [], `git ran for ${JSON.stringify(spec)}`);
  }
  t.false(existsSync(join(d, "cache", "kernel-sources")));
});

test("kernel git sources with a password: the cache dir, the id and the marker name the URL without it", async (t) => {
  const d = tmp(t);
  const { exec } = recordingExec();
  // Port 1 on loopback refuses at once: the clone fails after git saw the URL.
  const err = await t.throwsAsync(
    ensureBuildSources(
      { kind: "git", url: "http://user:s3cret@127.0.0.1:1/linux.git", tag: "v6.1.55" },
      { cacheDir: join(d, "cache"), exec, logFile: join(d, "log") },
    ),
  );
  t.false(String(err?.message).includes("s3cret"), err?.message);
  t.false(readFileSync(join(d, "log"), "utf8").includes("s3cret"));
  t.true(readFileSync(join(d, "log"), "utf8").includes("-- http://user:***@127.0.0.1:1/linux.git"));
  t.deepEqual(readdirSync(join(d, "cache", "kernel-sources")), []);
});

test("netmap git sources: fetch ... -- <url> <ref>, checkout of the resolved 40-hex commit; a moving ref too", async (t) => {
  const d = tmp(t);
  const repo = join(d, "netmap");
  mkdirSync(join(repo, "LINUX"), { recursive: true });
  writeFileSync(join(repo, "LINUX", "configure"), "#!/bin/sh\n");
  git(repo, "init", "-q", "-b", "main");
  git(repo, "add", "-A");
  git(repo, "commit", "-qm", "one");
  const head = git(repo, "rev-parse", "HEAD");
  const url = pathToFileURL(repo).href;
  for (const [commit, allowMovingRef] of [
    [head, false],
    ["main", true],
  ] as const) {
    const { exec, ran } = recordingExec();
    const r = await resolveNetmapSource(
      { kind: "git", url, commit, allowMovingRef },
      { cacheDir: join(d, `cache-${commit.length}`), exec },
    );
    t.is(r.commit, head);
    for (const f of ran.filter((e) => e.argv[1] === "fetch"))
      t.is(f.argv[f.argv.indexOf(url) - 1], "--", f.argv.join(" "));
    const checkout = ran.find((e) => e.argv[1] === "checkout")?.argv ?? [];
    t.deepEqual(checkout.slice(-2), [head, "--"]);
  }
  const { exec, ran } = recordingExec();
  await t.throwsAsync(
    resolveNetmapSource(
      { kind: "git", url, commit: "--upload-pack=touch", allowMovingRef: true },
      { cacheDir: join(d, "cache-x"), exec },
    ),
    { instanceOf: UserError, message: /starts with "-"/ },
  );
  await t.throwsAsync(
    resolveNetmapSource(
      { kind: "git", url: "-uid@x:y", commit: head },
      { cacheDir: join(d, "cache-x"), exec },
    ),
    { instanceOf: UserError, message: /starts with "-"/ },
  );
  t.deepEqual(ran, []);
});

test("catalogs: a kernel series' git URL or tag pattern that git would read as an option is refused", (t) => {
  const d = tmp(t);
  const src = join(repoRoot, "kernels");
  const series = readFileSync(join(src, "6.1.yaml"), "utf8");
  const upstream = readFileSync(join(src, "netmap-upstream.yaml"), "utf8");
  t.true(series.includes("url: https://git.kernel.org/"), "the fixture edit below needs this line");
  for (const [what, text, why] of [
    [
      "url",
      series.replace(/url: https:\/\/git\.kernel\.org\/\S+/, "url: ssh://-oProxyCommand=touch/y"),
      /host starting with "-"/,
    ],
    ["url", series.replace(/url: https:\/\/git\.kernel\.org\/\S+/, '"url": "ext::sh"'), /remote-helper/],
    [
      "tagPattern",
      series.replace("tagPattern: v{version}", 'tagPattern: "--upload-pack={version}"'),
      /starts with "-"/,
    ],
  ] as const) {
    const dir = join(d, `${what}-${Math.random().toString(16).slice(2)}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "6.1.yaml"), text);
    const e = t.throws(() => loadKernelCatalog(dir), { instanceOf: RecipeError });
    t.regex(e?.message ?? "", why);
  }
  const dir = join(d, "upstream");
  mkdirSync(dir);
  writeFileSync(join(dir, "netmap-upstream.yaml"), upstream.replace(/^url: .*$/m, "url: -uid@x:y"));
  t.throws(() => loadNetmapUpstream(dir), { instanceOf: RecipeError, message: /starts with "-"/ });
});
