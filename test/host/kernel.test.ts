import test from "ava";
import {
  detectModuleCompression,
  parseMakefileVersion,
  parseProcVersion,
  parseVersionH,
  readKernelFacts,
  versionFromRelease,
} from "../../toolkit/host/kernel.js";
import { FIXTURE_RELEASE, hostTree } from "../helpers/hosts.js";

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
