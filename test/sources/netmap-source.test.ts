import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import test from "ava";
import { BlockedError, UserError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import { hashFile } from "../../toolkit/sources/download.js";
import { detectLayout, resolveNetmapSource, treeContentHash } from "../../toolkit/sources/netmap-source.js";
import { standinDir } from "../helpers/kernel-sources.js";

const exec = createExec();
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd })
    .toString()
    .trim();

test("layouts: configure at the top, LINUX/configure, or a legacy LINUX/Makefile", (t) => {
  t.like(detectLayout(standinDir), { layout: "configure" });
  const legacy = tmp("np-legacy-");
  mkdirSync(join(legacy, "LINUX"));
  writeFileSync(join(legacy, "LINUX", "Makefile"), "all:\n");
  t.deepEqual(detectLayout(legacy), { layout: "legacy-make" });
  t.true("problem" in detectLayout(tmp("np-empty-")));
});

test("local tree identity: content hash, changed by an edit, not by build outputs or .git", async (t) => {
  const dir = tmp("np-tree-");
  cpSync(standinDir, dir, { recursive: true });
  const h1 = treeContentHash(dir);
  writeFileSync(join(dir, "LINUX", "netmap_standin.o"), "object");
  writeFileSync(join(dir, "LINUX", "ext-drivers", "x.zip"), "placed by the toolkit");
  t.is(treeContentHash(dir), h1);
  writeFileSync(join(dir, "LINUX", "netmap_standin.c"), "/* edited */\n", { flag: "a" });
  t.not(treeContentHash(dir), h1);
  const r = await resolveNetmapSource({ kind: "local", path: dir }, { cacheDir: tmp("np-c-"), exec });
  t.is(r.id, `tree:${treeContentHash(dir)}`);
  t.is(r.configure, join(dir, "configure"));
  await t.throwsAsync(
    resolveNetmapSource({ kind: "local", path: tmp("np-none-") }, { cacheDir: tmp("np-c-"), exec }),
    {
      instanceOf: UserError,
    },
  );
});

test("git: pinned commit fetched into <cache>/netmap/<commit>, HEAD verified, reused offline", async (t) => {
  const repo = tmp("np-repo-");
  cpSync(standinDir, repo, { recursive: true });
  git(repo, "init", "-q", "-b", "main");
  git(repo, "add", "-A");
  git(repo, "commit", "-qm", "one");
  const first = git(repo, "rev-parse", "HEAD");
  writeFileSync(join(repo, "NEWS"), "two\n");
  git(repo, "add", "NEWS");
  git(repo, "commit", "-qm", "two");
  const url = pathToFileURL(repo).href;
  const cacheDir = tmp("np-gc-");

  const r = await resolveNetmapSource({ kind: "git", url, commit: first }, { cacheDir, exec });
  t.is(r.dir, join(cacheDir, "netmap", first));
  t.is(r.id, `commit:${first}`);
  t.is(git(r.dir, "rev-parse", "HEAD"), first);
  t.false(existsSync(join(r.dir, "NEWS")), "the pinned commit, not the branch tip");

  // An abbreviated commit resolves through the full-clone fallback; offline reuse needs no network.
  const again = await resolveNetmapSource(
    { kind: "git", url: "file:///nonexistent", commit: first.slice(0, 10) },
    { cacheDir, exec, offline: true },
  );
  t.is(again.dir, r.dir);

  await t.throwsAsync(resolveNetmapSource({ kind: "git", url, commit: "main" }, { cacheDir, exec }), {
    instanceOf: UserError,
  });
  const moving = await resolveNetmapSource(
    { kind: "git", url, commit: "main", allowMovingRef: true },
    { cacheDir, exec },
  );
  t.is(moving.commit, git(repo, "rev-parse", "HEAD"));

  const offline = await t.throwsAsync(
    resolveNetmapSource({ kind: "git", url, commit: "f".repeat(40) }, { cacheDir, exec, offline: true }),
  );
  t.true(offline instanceof BlockedError);
  t.true(offline?.message.includes(url));
  rmSync(repo, { recursive: true, force: true });
});

test("tarball: fetched by sha256 into the download cache and unpacked once, top folder stripped", async (t) => {
  const work = tmp("np-tar-");
  cpSync(standinDir, join(work, "netmap-standin-1.0"), { recursive: true });
  const file = join(work, "netmap.tar.gz");
  execFileSync("tar", ["-czf", file, "-C", work, "netmap-standin-1.0"]);
  const sha256 = await hashFile(file);
  const cacheDir = tmp("np-tc-");
  const r = await resolveNetmapSource(
    { kind: "tarball", url: pathToFileURL(file).href, sha256 },
    { cacheDir, exec },
  );
  t.is(r.dir, join(cacheDir, "netmap", `sha256-${sha256}`));
  t.is(r.id, `sha256:${sha256}`);
  t.true(existsSync(join(r.dir, "LINUX", "configure")));
  rmSync(file);
  const again = await resolveNetmapSource(
    { kind: "tarball", url: pathToFileURL(file).href, sha256 },
    { cacheDir, exec, offline: true },
  );
  t.is(again.dir, r.dir);
});
