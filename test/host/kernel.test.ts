import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { release as osRelease } from "node:os";
import { dirname, join } from "node:path";
import test from "ava";
import {
  detectModuleCompression,
  parseMakefileVersion,
  parseProcVersion,
  parseVersionH,
  parseVersionSignature,
  readKernelFacts,
  versionFromRelease,
} from "../../toolkit/host/kernel-facts.js";
import { debianKernel } from "../helpers/debian-kernel.js";
import { copyHostTree, FIXTURE_RELEASE, hostTree, removeKernelHeaders } from "../helpers/hosts.js";

test("debian12-e1000: release, version from version.h, resolved build dir, unpacked sources", (t) => {
  const k = readKernelFacts(hostTree("debian12-e1000"));
  t.is(k.release, FIXTURE_RELEASE);
  t.is(k.version, "6.1.192");
  t.is(k.versionSource, "version.h");
  t.is(k.moduleDir, `/lib/modules/${FIXTURE_RELEASE}`);
  t.true(k.moduleDirExists);
  t.is(k.moduleCompression, "none");
  t.deepEqual(k.build, {
    path: `/lib/modules/${FIXTURE_RELEASE}/build`,
    resolved: `/usr/src/linux-headers-${FIXTURE_RELEASE}`,
    exists: true,
    hasConfig: true,
    hasVersionH: true,
  });
  // <moddir>/source points at the headers' common part: not full sources, so the unpacked tree wins.
  t.is(k.sources.kind, "unpacked");
  t.is(k.sources.path, "/usr/src/linux-source-6.1");
  t.is(k.sources.version, "6.1.192");
});

test("headers-no-sources: the headers' source link is not mistaken for sources", (t) => {
  const s = readKernelFacts(hostTree("headers-no-sources")).sources;
  t.is(s.kind, "none");
  t.is(s.path, null);
  t.regex(s.detail, /no full sources of 6\.1\.192/);
});

test("secure-boot tree: the distro tarball is reported as present but not unpacked", (t) => {
  const s = readKernelFacts(hostTree("secure-boot")).sources;
  t.is(s.kind, "tarball");
  t.is(s.path, "/usr/src/linux-source-6.1.tar.xz");
  t.is(s.version, "6.1");
});

test("compressed-modules: .ko.zst detected from modules.dep", (t) => {
  t.is(readKernelFacts(hostTree("compressed-modules")).moduleCompression, "zst");
});

test("module compression: each suffix, mixed, and unknown", (t) => {
  t.is(detectModuleCompression("a.ko.xz:\nb.ko.xz: a.ko.xz\n"), "xz");
  t.is(detectModuleCompression("a.ko.gz:\n"), "gz");
  t.is(detectModuleCompression("a.ko:\nb.ko.zst:\n"), "mixed");
  t.is(detectModuleCompression(""), "unknown");
  t.is(detectModuleCompression(null), "unknown");
});

test("version parsers", (t) => {
  t.is(parseVersionH("#define LINUX_VERSION_CODE 393664\n"), "6.1.192");
  t.is(parseVersionH("nothing"), null);
  t.is(parseMakefileVersion("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n"), "6.1.0");
  t.is(parseMakefileVersion("VERSION = 6\n"), null);
  t.is(parseProcVersion("Linux version 6.1.0-56-amd64 ... Debian 6.1.192-1 (2025-11-16)"), "6.1.192");
  t.is(parseVersionSignature("Ubuntu 6.8.0-31.31-generic 6.8.1\n", "6.8.0-31-generic"), "6.8.1");
  t.is(parseVersionSignature("Ubuntu 6.8.0-31.31-generic 6.8.1\n", FIXTURE_RELEASE), null);
  t.is(versionFromRelease("6.18.44-fc-v782"), "6.18.44");
  t.is(versionFromRelease("5.4-custom"), "5.4.0");
  t.is(versionFromRelease("garbage"), null);
});

test("the real host: reads the running release without crashing, whatever is installed", (t) => {
  const k = readKernelFacts("/");
  t.regex(k.release, /^\d+\.\d+/);
  t.is(k.moduleDir, `/lib/modules/${k.release}`);
  if (!k.moduleDirExists) {
    t.false(k.build.exists);
    t.is(k.moduleCompression, "unknown");
  }
});

/** /proc/version as the kernel prints it: "Linux version %s (%s@%s) (%s) %s" (init/version.c). */
const banner = (release: string, by: string, host: string, compiler: string, uts: string): string =>
  `Linux version ${release} (${by}@${host}) (${compiler}) ${uts}\n`;

test("/proc/version of a Debian kernel: the version is the Debian x.y.z at the end, not gcc's 12.2.0", (t) => {
  // The fixture trees' /proc/version is a Debian 12 host's, verbatim.
  const fixtureText = readFileSync(join(hostTree("debian12-e1000"), "proc/version"), "utf8");
  t.regex(fixtureText, /\(gcc-12 \(Debian 12\.2\.0-14\+deb12u1\) 12\.2\.0/);
  t.is(parseProcVersion(fixtureText), "6.1.192");
  t.is(parseProcVersion(fixtureText, FIXTURE_RELEASE), "6.1.192");
  // The installed Debian kernel's own banner, from the strings its headers were built with.
  const k = debianKernel();
  const gen = (f: string) => readFileSync(join(k.headersDir, "include/generated", f), "utf8");
  const def = (text: string, name: string) =>
    text.match(new RegExp(`#define ${name}\\s+"([^"]*)"`))?.[1] ?? "";
  const compile = gen("compile.h");
  const text = banner(
    k.release,
    def(compile, "LINUX_COMPILE_BY"),
    def(compile, "LINUX_COMPILE_HOST"),
    def(compile, "LINUX_COMPILER"),
    def(gen("utsversion.h"), "UTS_VERSION"),
  );
  t.log(text.trim());
  t.regex(text, /\(Debian \d+\.\d+\.\d+/, "the compiler part names a Debian gcc version");
  t.is(parseProcVersion(text, k.release), k.version);
});

test("/proc/version without a Debian version (Ubuntu, this machine): null, the release decides", (t) => {
  const ubuntu = banner(
    "6.8.0-31-generic",
    "buildd",
    "lcy02-amd64-080",
    "x86_64-linux-gnu-gcc-13 (Ubuntu 13.2.0-23ubuntu4) 13.2.0, GNU ld (GNU Binutils for Ubuntu) 2.42",
    "#31-Ubuntu SMP PREEMPT_DYNAMIC Sat Apr 20 00:40:06 UTC 2024",
  );
  t.is(parseProcVersion(ubuntu, "6.8.0-31-generic"), null);
  const real = readFileSync("/proc/version", "utf8");
  const v = parseProcVersion(real, osRelease());
  t.log(real.trim(), "->", v);
  const series = (x: string | null | undefined) => x?.split(".").slice(0, 2).join(".");
  if (v !== null) t.is(series(v), series(versionFromRelease(osRelease())));
  // A compiler version of another series is never taken for the kernel's.
  t.is(
    parseProcVersion(
      banner("6.1.0-56-amd64", "x", "y", "gcc (Debian 12.2.0-14) 12.2.0", "#1 SMP"),
      "6.1.0-56-amd64",
    ),
    null,
  );
});

test("a Debian host without headers: the version comes from /proc/version (6.1.192), not gcc's", (t) => {
  const root = copyHostTree("debian12-e1000");
  t.teardown(() => rmSync(dirname(root), { recursive: true, force: true }));
  removeKernelHeaders(root, { keepSources: true });
  const k = readKernelFacts(root);
  t.false(k.build.exists);
  t.is(k.version, "6.1.192");
  t.is(k.versionSource, "proc-version");
  // Ubuntu's signature file is read when /proc/version names no version.
  writeFileSync(
    join(root, "proc/version"),
    banner(FIXTURE_RELEASE, "b", "h", "gcc (Ubuntu 12.3.0) 12.3.0", "#1 SMP"),
  );
  writeFileSync(join(root, "proc/version_signature"), `Ubuntu ${FIXTURE_RELEASE} 6.1.190\n`);
  t.like(readKernelFacts(root), { version: "6.1.190", versionSource: "version-signature" });
});
