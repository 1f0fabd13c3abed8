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
} from "../../toolkit/sources/target-kernel-sources.js";
import { debianKernel, dpkgVersion, reEscape, upstreamVersion } from "../helpers/debian-kernel.js";

const exec = createExec();
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** netmap's configure code, computed here on its own: printf "%03x%02x" of (major<<8|minor), sublevel capped. */
const configureCode = (version: string): string => {
  const [a, b, c] = version.split(".").map(Number);
  return `${(((a ?? 0) << 8) | (b ?? 0)).toString(16).padStart(3, "0")}${Math.min(c ?? 0, 255)
    .toString(16)
    .padStart(2, "0")}`;
};

test("the installed Debian headers: the ABI release is the upstream version dpkg names, with its configure code", (t) => {
  const { release } = debianKernel();
  const k = readKernelTarget({ release });
  // dpkg's own word for the headers package (6.1.192-3 for 6.1.0-57-amd64), not the toolkit's reading.
  const pkg = dpkgVersion(`linux-headers-${release}`);
  if (!pkg) return t.fail(`dpkg does not list linux-headers-${release}: install linux-headers-amd64`);
  t.log(`${release}: linux-headers ${pkg}, Linux ${k.version}, code ${k.versionCode}`);
  t.is(k.version, upstreamVersion(pkg));
  t.regex(k.version, /^\d+\.\d+\.\d+$/);
  t.is(k.versionCode, configureCode(k.version));
  t.is(k.versionSource, "version.h");
  t.false(k.sublevelCapped);
  t.is(k.buildDir, `/lib/modules/${release}/build`);
  // Debian's headers Makefile is one `include` of the common one: followed.
  t.is(treeMakefileVersion(k.buildDir), k.version);
});

test("the code computed here agrees with netmap's configure on known versions (6.1.192 is 601c0)", (t) => {
  t.is(configureCode("6.1.192"), "601c0");
  t.is(configureCode("4.9.337"), "409ff");
});

/** A Debian 9 ABI release (4.9.0-<abi>-amd64) for the synthetic build dirs below: made here, not installed. */
const stretch = (abi: number): string => `4.9.0-${abi}-amd64`;

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
  const root = oldBuildDir(stretch(19), "VERSION = 4\nPATCHLEVEL = 9\nSUBLEVEL = 337\n");
  const k = readKernelTarget({ release: stretch(19), root });
  t.is(k.version, "4.9.337");
  t.is(k.versionSource, "makefile");
  t.is(k.versionCode, "409ff");
  const capped = readKernelTarget({ release: stretch(19), root: oldBuildDir(stretch(19), null) });
  t.is(capped.version, "4.9.255");
  t.true(capped.sublevelCapped);
});

test("headers of another release, or none, block with what to install", (t) => {
  const root = oldBuildDir(stretch(19), null);
  const other = t.throws(() =>
    readKernelTarget({
      release: stretch(20),
      root,
      buildDir: join(root, "lib/modules", stretch(19), "build"),
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
  const target = readKernelTarget({ release: debianKernel().release });
  const cacheDir = tmp("np-ksc-");
  const tarball = fakeSourceTarball(target.version);
  const first = await ensureKernelSources(target, { tarball: { path: tarball }, cacheDir, exec });
  t.is(first.origin, "unpacked");
  t.is(first.dir, join(cacheDir, "kernel-sources", target.version));
  t.true(existsSync(join(first.dir, "drivers/net")));
  const second = await ensureKernelSources(target, {
    tarball: { path: "/nonexistent.tar.xz" },
    cacheDir,
    exec,
  });
  t.is(second.origin, "cache");
});

test("sources of another point release are refused, naming both versions and the package", async (t) => {
  const { release, series } = debianKernel();
  const target = readKernelTarget({ release });
  const sub = Number(target.version.split(".")[2]);
  const other = `${series}.${sub > 0 ? sub - 1 : sub + 1}`;
  const e = await t.throwsAsync(
    ensureKernelSources(target, {
      tarball: { path: fakeSourceTarball(other) },
      cacheDir: tmp("np-ksc-"),
      exec,
    }),
  );
  t.true(e instanceof BlockedError);
  t.regex(
    e?.message ?? "",
    new RegExp(`Linux ${reEscape(other)}, but ${reEscape(release)} is ${reEscape(target.version)}`),
  );
  t.regex((e as BlockedError).hint ?? "", new RegExp(`linux-source-${reEscape(series)}\\b`));
  const given = tmp("np-given-");
  const [major, minor] = series.split(".");
  writeFileSync(
    join(given, "Makefile"),
    `VERSION = ${major}\nPATCHLEVEL = ${minor}\nSUBLEVEL = ${sub + 7}\n`,
  );
  await t.throwsAsync(ensureKernelSources(target, { given, cacheDir: tmp("np-ksc-"), exec }), {
    instanceOf: BlockedError,
  });
});
