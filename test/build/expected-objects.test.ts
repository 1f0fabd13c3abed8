import { cpSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import {
  copiedFrom,
  describeExpected,
  expectedObjects,
  kbuildDirObjects,
  legacyDriverSource,
  parseDriversMak,
  parseMakeVars,
} from "../../toolkit/build/expected-objects.js";
import { createExec } from "../../toolkit/core/exec.js";
import { createMakeProgress } from "../../toolkit/parse/make-progress.js";
import {
  ensureKernelDriverSources,
  kernelHeaders,
  legacyStandinDir,
  standinDir,
} from "../helpers/kernel-sources.js";
import { fixture } from "../helpers/paths.js";
import { tempDirs } from "../helpers/temp.js";

const exec = createExec();
const tmp = tempDirs(test);
const upstreamLike = fixture("kbuild-upstream-like");

const listing = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((e) => join(e.parentPath, e.name))
    .sort();

test("a build dir shaped like netmap's: Kbuild, drivers' kernel Makefiles and user-space make give 19", async (t) => {
  const before = listing(upstreamLike);
  const e = await expectedObjects({
    dir: join(upstreamLike, "build"),
    kernelDir: join(upstreamLike, "kernel"),
    drivers: ["nicA", "single.c", "nicB", "extdrv"],
    exec,
  });
  t.deepEqual(e.modules, {
    // subsystems alpha and gamma-ray on, beta off; the ifdef'd object; the object with its own rule
    nm: ["core_a.o", "core_b.o", "alpha.o", "gamma.o", "glue.o", "gamma_extra.o"],
    // a single-file driver is one object
    single: ["single.o"],
    // read from where drivers.mak copies it; CONFIG_NICA_DEBUG=y comes from the kernel's auto.conf
    "nicA/nica": ["nica_main.o", "nica_hw.o", "nica_debug.o"],
    "nicA/nhelper": ["nhelper.o"],
    // already copied: its Makefile includes the kernel's original, orig.mak
    "nicB/nicb": ["nicb_main.o", "nicb_ring.o"],
  });
  t.is(e.userCompiles, 6, "library 2, app one 2 (one-step + -c), app two 2; links and ar are not objects");
  t.deepEqual(e.unresolved, ["extdrv"], "unpacked from an archive by make: not readable before");
  t.is(e.total, 13 + 6);
  t.is(
    describeExpected(e),
    "expecting 19 objects (nm 6, single 1, nicA/nica 3, nicA/nhelper 1, nicB/nicb 2, 6 user-space; not counted: extdrv)",
  );
  t.deepEqual(
    listing(upstreamLike),
    before,
    "reading the build dir changes nothing in it (no copy, no object)",
  );
});

test("without a driver list, the drivers are those of drivers.mak", async (t) => {
  const e = await expectedObjects({
    dir: join(upstreamLike, "build"),
    kernelDir: join(upstreamLike, "kernel"),
    exec,
  });
  t.is(e.total, 19);
});

test("the user-space part of the dry run is what the real make compiles", async (t) => {
  const copy = tmp("np-expected-");
  cpSync(upstreamLike, copy, { recursive: true });
  const dir = join(copy, "build");
  const e = await expectedObjects({ dir, kernelDir: join(copy, "kernel"), exec });
  const counter = createMakeProgress(e.userCompiles);
  const r = await exec.run(["make", "lib", "apps"], {
    cwd: dir,
    reject: false,
    onLine: (line) => counter.feed(line),
  });
  t.is(r.exitCode, 0, r.stderr);
  t.is(counter.snapshot().compiled, 6);
  t.is(counter.snapshot().fraction, 1);
});

test("the netmap stand-in's configure output: netmap 1, e1000 4, pkt-gen 1", async (t) => {
  const ksrc = ensureKernelDriverSources();
  const { kdir } = kernelHeaders();
  const dir = tmp("np-expected-standin-");
  const conf = await exec.run(
    [join(standinDir, "configure"), `--kernel-dir=${kdir}`, `--kernel-sources=${ksrc}`, "--drivers=e1000"],
    { cwd: dir, reject: false },
  );
  t.is(conf.exitCode, 0, conf.stderr);
  const e = await expectedObjects({ dir, kernelDir: kdir, drivers: ["e1000"], exec });
  t.deepEqual(e.modules, {
    netmap: ["netmap_standin.o"],
    "e1000/e1000": ["e1000_main.o", "e1000_hw.o", "e1000_ethtool.o", "e1000_param.o"],
  });
  t.is(e.userCompiles, 1, "pkt-gen, one `cc ... pkt-gen.c -o pkt-gen`");
  t.is(e.total, 6);
  t.deepEqual(e.unresolved, []);
});

test("the stand-in's old layout (make KSRC= SRC= in LINUX/ of a copy): netmap_lin 1, e1000 4 from SRC", async (t) => {
  const ksrc = ensureKernelDriverSources();
  const { kdir } = kernelHeaders();
  // Copied as the build step copies a legacy tree (links to the shared stand-in files kept).
  const top = join(tmp("np-expected-legacy-"), "netmap");
  cpSync(legacyStandinDir, top, { recursive: true });
  const dir = join(top, "LINUX");
  const makeArgs = [`KSRC=${kdir}`, `SRC=${ksrc}`];
  const e = await expectedObjects({ dir, kernelDir: kdir, drivers: ["e1000"], exec, makeArgs });
  t.deepEqual(e.modules, {
    netmap_lin: ["netmap_standin.o"],
    // no drivers.mak before configure existed: read where the old Makefile copies e1000 from
    "e1000/e1000": ["e1000_main.o", "e1000_hw.o", "e1000_ethtool.o", "e1000_param.o"],
  });
  t.is(e.userCompiles, 0, "the apps are another make run (`make KSRC=... apps`)");
  t.is(e.total, 5);
  t.deepEqual(e.unresolved, []);
  t.false(existsSync(join(dir, "e1000")), "counting copies nothing");
  t.is(
    legacyDriverSource([`KSRC=${kdir}`, `SRC=${ksrc}`], "e1000"),
    join(ksrc, "drivers/net/ethernet/intel/e1000"),
  );
  t.is(legacyDriverSource([`KSRC=${ksrc}`], "e1000"), join(ksrc, "drivers/net/ethernet/intel/e1000"));
  t.is(legacyDriverSource([`KSRC=${kdir}`, `SRC=${ksrc}`], "nonexistent0"), undefined);
  t.is(legacyDriverSource([], "e1000"), undefined);
});

test("kbuild's rules: composite parts, a module also built in, subdirectories, the empty `m-`", (t) => {
  const r = kbuildDirObjects({
    "obj-m": "a.o b.o c.o d.o sub/ a.o",
    "obj-y": "d.o other/",
    "a-objs": "a1.o a2.o",
    "a-y": "a3.o a1.o",
    "a-m": "a4.o",
    "b-": "b_off.o",
    "subdir-m": "more",
  });
  t.deepEqual(r.modules, {
    a: ["a1.o", "a2.o", "a3.o", "a4.o"],
    b: [], // composite, all its parts switched off
    c: ["c.o"],
  });
  t.deepEqual(r.subdirs, ["other", "sub", "more"]);
});

test("drivers.mak entries and where a driver is copied from", (t) => {
  const m = parseDriversMak(
    "# comment\ne1000@conf := CONFIG_E1000\ne1000@src := cp -Rp /k/drivers/net/ethernet/intel/e1000 e1000\nveth.c@src := cp -Rp /k/drivers/net/veth.c veth.c\nixgbe@src := unzip -u x.zip && ln -s y ixgbe\n",
  );
  t.is(m.get("e1000")?.conf, "CONFIG_E1000");
  t.is(copiedFrom(m.get("e1000")?.src, "e1000"), "/k/drivers/net/ethernet/intel/e1000");
  t.is(copiedFrom(m.get("veth.c")?.src, "veth.c"), "/k/drivers/net/veth.c");
  t.is(copiedFrom(m.get("ixgbe")?.src, "ixgbe"), undefined);
  t.is(copiedFrom(m.get("e1000")?.src, "igb"), undefined);
});

test("make's printed variables: make's own internal ones are left out", (t) => {
  t.deepEqual(
    parseMakeVars(
      "np-var -*-command-variables-*-=x=1\nnp-var obj-m=a.o \nnetmap_nm-objs := x\nnp-var a-y=\n",
    ),
    { "obj-m": "a.o", "a-y": "" },
  );
});
