#!/usr/bin/env zx
// The original procedure (the host's full distro config + olddefconfig, `make all`) against the
// toolkit's trimmed kernel (tinyconfig + kernels/fragments/guest-minimal.config, e1000 forced =m),
// on the same linux-source-X.Y tree (the installed Debian kernel's series), as compiled objects and wall time.
//
// A full distro build takes hours on 2 cores, so both configs are built for the same fixed
// sample of directories (after `make prepare`, not counted), and the whole-tree work is
// extrapolated from the number of objects each config enables: every `obj-$(CONFIG_X) += f.o`
// (and obj-y) line whose symbol is y or m, following kbuild's descent into enabled dirs/ from the
// top-level dirs and arch/x86. That count
// ignores composite objects (foo-y += a.o b.o), so it is an estimate; both configs are counted the
// same way, which is what the ratio needs.
//
// The sample is one directory per kind of kernel code, so that neither config is favoured:
// kernel/ and mm/ (core, both configs build much of it), lib/ (helpers, likewise), net/ipv4/
// (networking, trimmed to what a guest needs), fs/ext4/ (a distro filesystem the guest does not
// use: nothing in the trimmed build) and drivers/net/ethernet/intel/ (the NIC drivers netmap
// patches: the distro builds them all, the toolkit only e1000). An earlier sample
// (kernel/sched/ fs/9p/ net/9p/ .../e1000/ lib/) held mostly what the guest kernel needs, so it
// would have compared what both configs build. About 1.3M lines of C; the whole bench took ~32 min
// on 2 cores under loadavg 2-7 (two runs).
// "Objects" in the sample are the CC lines kbuild prints (C files compiled, modules' .o
// included; no link, no modpost). Wall time is whatever the machine gives: loadavg is printed,
// and the CPU seconds of make and its compilers are measured too: they depend less on load, though
// not zero on a shared VM (its vCPUs share physical cores).
// Run after `npx tsc -p .`:  npx zx bench/kernel.mjs [--jobs 2] [--no-sample]
import { fileURLToPath } from "node:url";
import { installedDebianKernel } from "./installed-kernel.mjs";

$.verbose = false;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = (p) => path.join(repo, "dist/toolkit", p);
const numArg = (flag, dflt) => {
  const i = process.argv.indexOf(flag);
  return i > 0 && Number(process.argv[i + 1]) > 0 ? Number(process.argv[i + 1]) : dflt;
};
const jobs = numArg("--jobs", 2);
const sample = !process.argv.includes("--no-sample");
const SAMPLE_DIRS = ["kernel/", "mm/", "lib/", "net/ipv4/", "fs/ext4/", "drivers/net/ethernet/intel/"];
// The installed Debian kernel (whatever ABI release apt installed), found as the tests find it.
const debian = await installedDebianKernel(repo);
const bootConfig = debian.config;
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
const loadStart = load();
// CPU seconds of waited-for children (cutime + cstime, /proc/[pid]/stat fields 16-17): make and
// every compiler under it, which load from other processes changes far less than wall time.
const childCpuSeconds = () => {
  const f = fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
  return (Number(f[13]) + Number(f[14])) / 100; // fields 16, 17; USER_HZ is 100 on Linux
};
const benchT0 = performance.now();
const note = (msg) => console.error(`[${Math.round((performance.now() - benchT0) / 1000)}s] ${msg}`);
note(`start, loadavg ${loadStart} (1/5/15 min) on ${os.cpus().length} cores`);

const { createExec } = await import(dist("core/exec.js"));
const { ensureBuildSources } = await import(dist("kernel/sources.js"));
const { configureKernel } = await import(dist("kernel/config.js"));
const exec = createExec();
const cacheDir = path.join(repo, ".cache", "kernel-test");
const src = await ensureBuildSources({ kind: "distro", tarball: debian.sourceTarball }, { cacheDir, exec });
const work = path.join(repo, ".cache", "kernel-bench");
fs.mkdirSync(work, { recursive: true });

/** Objects a config enables, by the Makefile lines (see the header), following kbuild's descent:
 * the total and the count per top-level directory. */
function enabledObjects(configText) {
  const on = new Set(configText.split("\n").flatMap((l) => /^CONFIG_(\w+)=(y|m)$/.exec(l)?.[1] ?? []));
  let n = 0;
  const byTop = {};
  const seen = new Set();
  const visit = (dir) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    for (const f of ["Kbuild", "Makefile"]) {
      const p = path.join(src.dir, dir, f);
      if (!fs.existsSync(p)) continue;
      const text = fs.readFileSync(p, "utf8").replace(/\\\n/g, " ");
      for (const m of text.matchAll(/^(?:obj|lib|core|drivers)-(y|\$\(CONFIG_(\w+)\))\s*[+:]?=\s*(.*)$/gm)) {
        if (m[1] !== "y" && !on.has(m[2])) continue;
        for (const w of m[3].split(/\s+/)) {
          if (w.endsWith(".o")) {
            n++;
            byTop[dir.split("/")[0]] = (byTop[dir.split("/")[0]] ?? 0) + 1;
          } else if (w.endsWith("/") && !w.includes("$")) visit(path.join(dir, w));
        }
      }
      break; // kbuild reads Kbuild when present, else Makefile
    }
  };
  const top = [
    "init",
    "kernel",
    "mm",
    "fs",
    "ipc",
    "security",
    "crypto",
    "block",
    "io_uring",
    "drivers",
    "sound",
    "net",
    "lib",
    "virt",
    "certs",
    "arch/x86",
  ];
  for (const d of top) visit(d);
  return { n, byTop };
}

async function measure(name, base, extra) {
  const out = path.join(work, name);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const log = path.join(out, "bench.log");
  note(`${name}: configure`);
  await configureKernel({ src: src.dir, out, version: src.version, base, exec, logFile: log, ...extra });
  const counted = enabledObjects(fs.readFileSync(path.join(out, ".config"), "utf8"));
  const res = { name, estimate: counted.n, byTop: counted.byTop };
  if (sample) {
    note(`${name}: make prepare (not timed)`);
    await exec.run(["make", `O=${out}`, `-j${jobs}`, "prepare"], { cwd: src.dir, logFile: log });
    note(`${name}: timing the sample, loadavg ${load()}`);
    let cc = 0;
    const perDir = Object.fromEntries(SAMPLE_DIRS.map((d) => [d, 0]));
    const t0 = performance.now();
    const cpu0 = childCpuSeconds();
    const load0 = load();
    await exec.run(["make", `O=${out}`, `-j${jobs}`, ...SAMPLE_DIRS], {
      cwd: src.dir,
      logFile: log,
      onLine: (l) => {
        const m = /^\s+CC( \[M\])?\s+(\S+)/.exec(l);
        if (!m) return;
        cc++;
        const d = SAMPLE_DIRS.find((x) => m[2].startsWith(x));
        if (d) perDir[d]++;
        if (cc % 100 === 0) note(`${name}: ${cc} objects`);
      },
    });
    res.sampleObjects = cc;
    res.sampleSeconds = Math.round((performance.now() - t0) / 100) / 10;
    res.sampleCpuSeconds = Math.round((childCpuSeconds() - cpu0) * 10) / 10;
    res.perDir = perDir;
    res.load = `${load0} -> ${load()}`;
    note(
      `${name}: ${cc} objects in ${res.sampleSeconds} s (${res.sampleCpuSeconds} CPU s), loadavg ${res.load}`,
    );
  }
  return res;
}

const full = await measure("full-distro", { kind: "file", path: bootConfig }, {});
const trimmed = await measure(
  "toolkit-trimmed",
  { kind: "tiny" },
  { fragments: ["guest-minimal"], modules: ["E1000"] },
);
const loadEnd = load();
const benchMin = (performance.now() - benchT0) / 60000;
const ratio = (a, b) => (a / Math.max(b, 1e-9)).toFixed(1);
console.log(`Linux ${src.version} (${debian.sourcePackage}), make -j${jobs}, ${os.cpus().length} cores`);
console.log(`full-distro:     ${bootConfig} + olddefconfig (the original procedure)`);
console.log("toolkit-trimmed: tinyconfig + kernels/fragments/guest-minimal.config, E1000=m");
console.log(
  "config            enabled objects (estimate)   sample objects   sample wall s   sample CPU s   loadavg during the sample",
);
for (const r of [full, trimmed])
  console.log(
    `${r.name.padEnd(18)}${String(r.estimate).padStart(10)}                  ${String(r.sampleObjects ?? "-").padStart(8)}   ${String(r.sampleSeconds ?? "-").padStart(10)}   ${String(r.sampleCpuSeconds ?? "-").padStart(12)}   ${r.load ?? "-"}`,
  );
if (sample) {
  console.log("sample objects per directory (full / trimmed):");
  for (const d of SAMPLE_DIRS)
    console.log(
      `  ${d.padEnd(30)}${String(full.perDir[d]).padStart(6)} / ${String(trimmed.perDir[d]).padStart(4)}`,
    );
  console.log(
    `extrapolated full build wall time: ~${Math.round((full.estimate * full.sampleSeconds) / Math.max(1, full.sampleObjects) / 60)} min vs ~${Math.round((trimmed.estimate * trimmed.sampleSeconds) / Math.max(1, trimmed.sampleObjects) / 60)} min (per-object time from the sample times the estimate; a lower bound, the estimate counts a composite object once)`,
  );
}
console.log(
  `machine load (loadavg 1/5/15 min): ${loadStart} at start, ${loadEnd} at end; whole bench ${benchMin.toFixed(1)} min`,
);
console.log("");
console.log("SUMMARY (full / trimmed; goal: at least 5x less work)");
console.log(
  `  whole tree, enabled objects (estimate): ${full.estimate} / ${trimmed.estimate} = ${ratio(full.estimate, trimmed.estimate)}x`,
);
console.log(
  `  of which drivers/:                      ${full.byTop.drivers ?? 0} / ${trimmed.byTop.drivers ?? 0} = ${ratio(full.byTop.drivers ?? 0, trimmed.byTop.drivers ?? 0)}x`,
);
if (sample) {
  console.log(
    `  sample, objects compiled:               ${full.sampleObjects} / ${trimmed.sampleObjects} = ${ratio(full.sampleObjects, trimmed.sampleObjects)}x`,
  );
  console.log(
    `  sample, wall time:                      ${full.sampleSeconds} s / ${trimmed.sampleSeconds} s = ${ratio(full.sampleSeconds, trimmed.sampleSeconds)}x`,
  );
  console.log(
    `  sample, CPU time (user+sys):            ${full.sampleCpuSeconds} s / ${trimmed.sampleCpuSeconds} s = ${ratio(full.sampleCpuSeconds, trimmed.sampleCpuSeconds)}x`,
  );
  console.log(
    "  the sample weighs core code that both configs build (one drivers/ directory of six), so its object ratio is below the whole tree's",
  );
  console.log(
    "  time ratios exceed the object ratio: the distro config compiles with -O2 and -g (DEBUG_INFO), the trimmed one with -Os and no debug info; wall time depends on the load above, and on a shared VM CPU time does too, less",
  );
  console.log(
    `  the sample is ${SAMPLE_DIRS.join(" ")} after make prepare, not a full \`make all\`: a full distro build takes hours on this machine; the whole-tree figure is counted from the Makefiles, not compiled`,
  );
} else {
  console.log("  (--no-sample: nothing compiled; the whole-tree figure is counted from the Makefiles)");
}
