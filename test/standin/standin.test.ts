import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { parseConfigureLog } from "../../toolkit/parse/configure-report.js";
import { detectLayout } from "../../toolkit/sources/netmap-source.js";
import { debianKernel, reEscape } from "../helpers/debian-kernel.js";
import {
  ensureKernelDriverSources,
  kernelHeaders,
  legacyStandinDir,
  standinDir,
} from "../helpers/kernel-sources.js";

// Builds the netmap stand-in for real against the installed headers: these tests are the
// proof that the fixture other tests (sysroot, guest) rely on has netmap's interface.
const exec = createExec();
const configure = join(standinDir, "configure");
const made: string[] = [];
const buildDir = (tag: string) => {
  const dir = mkdtempSync(join(tmpdir(), `np-standin-${tag}-`));
  made.push(dir);
  return dir;
};
test.after.always(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

test.serial("configure + make: netmap.ko and a patched e1000.ko that depends on it", async (t) => {
  const ksrc = ensureKernelDriverSources();
  const { kver, kdir } = kernelHeaders();
  const { version, versionCode } = debianKernel();
  const dir = buildDir("ok");
  const argv = [
    configure,
    `--kernel-dir=${kdir}`,
    `--kernel-sources=${ksrc}`,
    "--drivers=e1000",
    "--fail-on-driver-errors",
  ];
  const conf = await exec.run(argv, { cwd: dir, reject: false });
  t.log(`configure: ${conf.durationMs} ms`);
  t.is(conf.exitCode, 0, conf.stderr);
  t.regex(conf.stdout, new RegExp(`^linux version {15}${versionCode} {2}\\[${reEscape(version)}\\]$`, "m"));
  t.regex(conf.stdout, /^module file {17}netmap\.ko$/m);
  t.regex(conf.stdout, /^native drivers {14}e1000 $/m);
  t.regex(conf.stdout, /^e1000@patch := patches\/vanilla--e1000--31200--99999$/m);
  for (const f of ["config.status", "drivers.mak", "Makefile", "Kbuild"]) t.true(existsSync(join(dir, f)), f);

  // The toolkit's own parser must read the stand-in's report as it reads netmap's.
  const report = parseConfigureLog(`${conf.stdout}\n${conf.stderr}`, ["e1000"]);
  t.deepEqual(report.native, ["e1000"]);
  t.is(report.versionCode, versionCode);
  t.deepEqual(report.dropped, []);

  const jobs = String(Math.min(4, availableParallelism()));
  const make = await exec.run(["make", `-j${jobs}`], { cwd: dir, reject: false, timeoutMs: 150_000 });
  t.log(`make -j${jobs}: ${make.durationMs} ms`);
  t.is(make.exitCode, 0, make.stderr.split("\n").slice(-20).join("\n"));
  const netmapKo = join(dir, "netmap.ko");
  const e1000Ko = join(dir, "e1000", "e1000.ko");
  t.true(existsSync(netmapKo));
  t.true(existsSync(e1000Ko));
  t.true(existsSync(join(dir, "build-apps", "pkt-gen", "pkt-gen")));

  const info = async (field: string, ko: string) =>
    (await exec.run(["modinfo", "-F", field, ko])).stdout.trim().split("\n");
  t.is((await info("vermagic", netmapKo))[0]?.split(" ")[0], kver);
  t.is((await info("vermagic", e1000Ko))[0]?.split(" ")[0], kver);
  t.deepEqual(await info("depends", e1000Ko), ["netmap"]);
  t.deepEqual(await info("name", netmapKo), ["netmap"]);
  const parms = (await info("parm", netmapKo)).map((p) => p.split(":")[0]);
  t.true(parms.includes("admode") && parms.includes("verbose"), parms.join(","));
  // The patched driver really needs netmap's symbols: loading it alone fails with "Unknown symbol".
  const undef = (await exec.run(["nm", "-u", e1000Ko])).stdout;
  t.regex(undef, /\bnetmap_attach\b/);
  t.regex(undef, /\bnetmap_detach\b/);

  // The stand-in pkt-gen fails on a missing interface as pkt-gen does.
  const pg = await exec.run(
    [join(dir, "build-apps", "pkt-gen", "pkt-gen"), "-i", "np-nonexist0", "-f", "tx"],
    {
      reject: false,
    },
  );
  t.is(pg.exitCode, 255);
  t.regex(pg.stderr, /^np-nonexist0: No such device or address$/m);
  t.regex(pg.stderr, /main \[\d+\] aborting$/m);
});

test.serial("--fail-on-driver-errors with an external driver exits 1 naming it, offline", async (t) => {
  const ksrc = ensureKernelDriverSources();
  const { kdir } = kernelHeaders();
  const dir = buildDir("fail");
  const argv = [
    configure,
    `--kernel-dir=${kdir}`,
    `--kernel-sources=${ksrc}`,
    "--drivers=e1000,igb",
    "--fail-on-driver-errors",
  ];
  const conf = await exec.run(argv, { cwd: dir, reject: false, timeoutMs: 60_000 });
  t.is(conf.exitCode, 1);
  t.regex(conf.stdout, /^\*\*\* Unable to fetch the sources for driver igb\. Disabling driver\.$/m);
  t.regex(conf.stderr, /could not be enabled: igb$/m);
  t.notRegex(conf.stdout, /wget: /); // the stand-in never tries the network
  t.deepEqual(readdirSync(dir), [], "a failed configure writes nothing");
  const report = parseConfigureLog(`${conf.stdout}\n${conf.stderr}`, ["e1000", "igb"]);
  t.is(report.dropped.find((d) => d.driver === "igb")?.reason, "download-failed");

  // Without the flag, the same request succeeds with e1000 only, as netmap does.
  const lenient = await exec.run(argv.slice(0, -1), { cwd: dir, reject: false });
  t.is(lenient.exitCode, 0);
  t.regex(lenient.stdout, /^native drivers {14}e1000 $/m);
});

test("hard errors: no kernel directory, unconfigured kernel", async (t) => {
  const dir = buildDir("err");
  const missing = await exec.run([configure, `--kernel-dir=${join(dir, "nope")}`], {
    cwd: dir,
    reject: false,
  });
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /^\*\*\* Cannot find kernel directory\.$/m);

  const fake = join(dir, "fake-kernel");
  mkdirSync(fake);
  writeFileSync(join(fake, ".config"), "CONFIG_E1000=m\n"); // no include/generated/uapi/linux/version.h
  const unconf = await exec.run([configure, `--kernel-dir=${fake}`, "--bogus-option"], {
    cwd: dir,
    reject: false,
  });
  t.is(unconf.exitCode, 1);
  t.regex(unconf.stdout, /^Unrecognized option: --bogus-option$/m);
  t.regex(unconf.stderr, /^\*\*\* kernel not configured\.$/m);
});

/** The old-layout stand-in copied as the build step copies a legacy tree (cpSync; shared files stay links). */
function legacyCopy(tag: string): string {
  const top = join(buildDir(`legacy-${tag}`), "netmap");
  cpSync(legacyStandinDir, top, { recursive: true });
  return top;
}

test.serial(
  "old layout: `make KSRC=` builds netmap_lin.ko and a patched e1000 that depends on it, `make KSRC= apps` builds examples/pkt-gen",
  async (t) => {
    const ksrc = ensureKernelDriverSources();
    const { kver, kdir } = kernelHeaders();
    const top = legacyCopy("ok");
    // netmap v11.0's shape: no configure anywhere, a LINUX/Makefile.
    t.deepEqual(detectLayout(top), { layout: "legacy-make" });
    const linux = join(top, "LINUX");
    const jobs = String(Math.min(4, availableParallelism()));
    const make = await exec.run(["make", `-j${jobs}`, `KSRC=${kdir}`, `SRC=${ksrc}`], {
      cwd: linux,
      reject: false,
      timeoutMs: 150_000,
    });
    t.log(`make -j${jobs} KSRC= SRC=: ${make.durationMs} ms`);
    t.is(make.exitCode, 0, make.stderr.split("\n").slice(-20).join("\n"));
    t.regex(make.stdout, /^\*\* patch with diff--e1000--31200--99999$/m);
    const netmapKo = join(linux, "netmap_lin.ko");
    const e1000Ko = join(linux, "e1000", "e1000.ko");
    t.true(existsSync(netmapKo));
    t.true(existsSync(e1000Ko));
    t.false(existsSync(join(linux, "netmap.ko")), "the old layout's module is netmap_lin.ko only");

    const info = async (field: string, ko: string) =>
      (await exec.run(["modinfo", "-F", field, ko])).stdout.trim().split("\n");
    t.deepEqual(await info("name", netmapKo), ["netmap_lin"]);
    t.is((await info("vermagic", netmapKo))[0]?.split(" ")[0], kver);
    t.is((await info("vermagic", e1000Ko))[0]?.split(" ")[0], kver);
    t.deepEqual(await info("depends", e1000Ko), ["netmap_lin"]);
    const parms = (await info("parm", netmapKo)).map((p) => p.split(":")[0]);
    t.true(parms.includes("admode") && parms.includes("verbose"), parms.join(","));
    const undef = (await exec.run(["nm", "-u", e1000Ko])).stdout;
    t.regex(undef, /\bnetmap_attach\b/);
    // The 2012 wording of the load line is compiled in; today's is not.
    const text = readFileSync(netmapKo).toString("latin1");
    t.true(text.includes("run mknod /dev/netmap c %d %d # error %d"));
    t.false(text.includes("# returned %d"));

    const apps = await exec.run(["make", `KSRC=${kdir}`, "apps"], {
      cwd: linux,
      reject: false,
      timeoutMs: 60_000,
    });
    t.is(apps.exitCode, 0, apps.stderr);
    const pktgen = join(top, "examples", "pkt-gen");
    t.true(existsSync(pktgen));
    const pg = await exec.run([pktgen, "-i", "np-nonexist0", "-f", "tx"], { reject: false });
    t.is(pg.exitCode, 255);
    t.regex(pg.stderr, /^np-nonexist0: No such device or address$/m);
  },
);

test.serial(
  "old layout without driver sources (KSRC= the headers, no SRC=): make still exits 0, with netmap_lin.ko alone",
  async (t) => {
    const { kdir } = kernelHeaders();
    const top = legacyCopy("nosrc");
    const linux = join(top, "LINUX");
    const make = await exec.run(["make", "-j2", `KSRC=${kdir}`], {
      cwd: linux,
      reject: false,
      timeoutMs: 150_000,
    });
    // As netmap v11.0: a driver it cannot copy is left out without an error; the toolkit has to notice.
    t.is(make.exitCode, 0, make.stderr.split("\n").slice(-20).join("\n"));
    t.regex(make.stdout, /^\*\* e1000: no sources under .*\/drivers\/net, skipped$/m);
    t.true(existsSync(join(linux, "netmap_lin.ko")));
    t.false(existsSync(join(linux, "e1000")));
  },
);
