import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { BlockedError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import {
  ensureKernelSources,
  readKernelTarget,
  treeMakefileVersion,
} from "../../toolkit/sources/kernel-sources.js";

const exec = createExec();
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

test("the installed Debian headers: 6.1.0-56-amd64 is Linux 6.1.192, code 601c0", (t) => {
  const k = readKernelTarget({ release: "6.1.0-56-amd64" });
  t.is(k.version, "6.1.192");
  t.is(k.versionCode, "601c0");
  t.is(k.versionSource, "version.h");
  t.false(k.sublevelCapped);
  t.is(k.buildDir, "/lib/modules/6.1.0-56-amd64/build");
  // Debian's headers Makefile is one `include` of the common one: followed.
  t.is(treeMakefileVersion(k.buildDir), "6.1.192");
});

/** A build dir as an older kernel writes it: only LINUX_VERSION_CODE, sublevel saturated at 255. */
function oldBuildDir(release: string, makefile: string | null): string {
  const root = tmp("np-kroot-");
  const dir = join(root, "lib/modules", release, "build");
  mkdirSync(join(dir, "include/generated/uapi/linux"), { recursive: true });
  writeFileSync(join(dir, ".config"), "CONFIG_E1000=m\n");
  writeFileSync(join(dir, "include/generated/uapi/linux/version.h"), "#define LINUX_VERSION_CODE 264703\n");
  writeFileSync(join(dir, "include/generated/utsrelease.h"), `#define UTS_RELEASE "${release}"\n`);
  if (makefile) writeFileSync(join(dir, "Makefile"), makefile);
  return root;
}

test("a capped LINUX_VERSION_CODE (4.9.255) defers to the Makefile's full version", (t) => {
  const root = oldBuildDir("4.9.0-19-amd64", "VERSION = 4\nPATCHLEVEL = 9\nSUBLEVEL = 337\n");
  const k = readKernelTarget({ release: "4.9.0-19-amd64", root });
  t.is(k.version, "4.9.337");
  t.is(k.versionSource, "makefile");
  t.is(k.versionCode, "409ff");
  const capped = readKernelTarget({ release: "4.9.0-19-amd64", root: oldBuildDir("4.9.0-19-amd64", null) });
  t.is(capped.version, "4.9.255");
  t.true(capped.sublevelCapped);
});

test("headers of another release, or none, block with what to install", (t) => {
  const root = oldBuildDir("4.9.0-19-amd64", null);
  const other = t.throws(() =>
    readKernelTarget({
      release: "4.9.0-20-amd64",
      root,
      buildDir: join(root, "lib/modules/4.9.0-19-amd64/build"),
    }),
  );
  t.true(other instanceof BlockedError);
  t.regex(other?.message ?? "", /build dir of 4\.9\.0-19-amd64, not of 4\.9\.0-20-amd64/);
  const none = t.throws(() => readKernelTarget({ release: "9.9.9-x", root }));
  t.regex((none as BlockedError).hint ?? "", /linux-headers-9\.9\.9-x/);
});

/** A tiny "source package" tarball: a top folder with a Makefile of the given version. */
function fakeSourceTarball(version: string): string {
  const dir = tmp("np-srcpkg-");
  const [a, b, c] = version.split(".");
  mkdirSync(join(dir, "linux-source-x", "drivers/net"), { recursive: true });
  writeFileSync(
    join(dir, "linux-source-x", "Makefile"),
    `VERSION = ${a}\nPATCHLEVEL = ${b}\nSUBLEVEL = ${c}\nEXTRAVERSION =\n`,
  );
  const file = join(dir, "linux-source-x.tar.xz");
  execFileSync("tar", ["-cJf", file, "-C", dir, "linux-source-x"]);
  return file;
}

test("a source tarball is unpacked once into <cache>/kernel-sources/<x.y.z> and reused", async (t) => {
  const target = readKernelTarget({ release: "6.1.0-56-amd64" });
  const cacheDir = tmp("np-ksc-");
  const tarball = fakeSourceTarball("6.1.192");
  const first = await ensureKernelSources(target, { tarball: { path: tarball }, cacheDir, exec });
  t.is(first.origin, "unpacked");
  t.is(first.dir, join(cacheDir, "kernel-sources", "6.1.192"));
  t.true(existsSync(join(first.dir, "drivers/net")));
  const second = await ensureKernelSources(target, {
    tarball: { path: "/nonexistent.tar.xz" },
    cacheDir,
    exec,
  });
  t.is(second.origin, "cache");
});

test("sources of another point release are refused, naming both versions and the package", async (t) => {
  const target = readKernelTarget({ release: "6.1.0-56-amd64" });
  const e = await t.throwsAsync(
    ensureKernelSources(target, {
      tarball: { path: fakeSourceTarball("6.1.180") },
      cacheDir: tmp("np-ksc-"),
      exec,
    }),
  );
  t.true(e instanceof BlockedError);
  t.regex(e?.message ?? "", /Linux 6\.1\.180, but 6\.1\.0-56-amd64 is 6\.1\.192/);
  t.regex((e as BlockedError).hint ?? "", /linux-source-6\.1/);
  const given = tmp("np-given-");
  writeFileSync(join(given, "Makefile"), "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 170\n");
  await t.throwsAsync(ensureKernelSources(target, { given, cacheDir: tmp("np-ksc-"), exec }), {
    instanceOf: BlockedError,
  });
});
