#!/usr/bin/env zx
// The original procedure (the host's full distro config + olddefconfig, `make all`) against the
// toolkit's trimmed kernel (tinyconfig + kernels/fragments/guest-minimal.config, e1000 forced =m),
// on the same linux-source-6.1 tree, as compiled objects and wall time.
//
// A full distro build takes hours on 2 cores, so both configs are built for the same fixed
// sample of directories (after `make prepare`, not counted), and the whole-tree work is
// extrapolated from the number of objects each config enables: every `obj-$(CONFIG_X) += f.o`
// (and obj-y) line whose symbol is y or m, following kbuild's descent into enabled dirs/ from the
// top-level dirs and arch/x86. That count
// ignores composite objects (foo-y += a.o b.o), so it is an estimate; both configs are counted the
// same way, which is what the ratio needs.
// Run after `npx tsc -p .`:  npx zx bench/kernel.mjs [--jobs 2] [--no-sample]
import { fileURLToPath } from "node:url";

$.verbose = false;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = (p) => path.join(repo, "dist/toolkit", p);
const numArg = (flag, dflt) => {
  const i = process.argv.indexOf(flag);
  return i > 0 && Number(process.argv[i + 1]) > 0 ? Number(process.argv[i + 1]) : dflt;
};
const jobs = numArg("--jobs", 2);
const sample = !process.argv.includes("--no-sample");
const SAMPLE_DIRS = ["kernel/sched/", "fs/9p/", "net/9p/", "drivers/net/ethernet/intel/e1000/", "lib/"];
const bootConfig = "/boot/config-6.1.0-56-amd64";

const { createExec } = await import(dist("core/exec.js"));
const { ensureBuildSources } = await import(dist("kernel/sources.js"));
const { configureKernel } = await import(dist("kernel/config.js"));
const exec = createExec();
const cacheDir = path.join(repo, ".cache", "kernel-test");
const src = await ensureBuildSources(
  { kind: "distro", tarball: "/usr/src/linux-source-6.1.tar.xz" },
  { cacheDir, exec },
);
const work = path.join(repo, ".cache", "kernel-bench");
fs.mkdirSync(work, { recursive: true });

/** Objects a config enables, by the Makefile lines (see the header), following kbuild's descent. */
function enabledObjects(configText) {
  const on = new Set(configText.split("\n").flatMap((l) => /^CONFIG_(\w+)=(y|m)$/.exec(l)?.[1] ?? []));
  let n = 0;
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
          if (w.endsWith(".o")) n++;
          else if (w.endsWith("/") && !w.includes("$")) visit(path.join(dir, w));
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
  return n;
}

async function measure(name, base, extra) {
  const out = path.join(work, name);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const log = path.join(out, "bench.log");
  await configureKernel({ src: src.dir, out, version: src.version, base, exec, logFile: log, ...extra });
  const estimate = enabledObjects(fs.readFileSync(path.join(out, ".config"), "utf8"));
  const res = { name, estimate };
  if (sample) {
    await exec.run(["make", `O=${out}`, `-j${jobs}`, "prepare"], { cwd: src.dir, logFile: log });
    let cc = 0;
    const t0 = performance.now();
    await exec.run(["make", `O=${out}`, `-j${jobs}`, ...SAMPLE_DIRS], {
      cwd: src.dir,
      logFile: log,
      onLine: (l) => {
        if (/^\s+CC( \[M\])?\s/.test(l)) cc++;
      },
    });
    res.sampleObjects = cc;
    res.sampleSeconds = Math.round((performance.now() - t0) / 100) / 10;
  }
  return res;
}

const full = await measure("full-distro", { kind: "file", path: bootConfig }, {});
const trimmed = await measure(
  "toolkit-trimmed",
  { kind: "tiny" },
  { fragments: ["guest-minimal"], modules: ["E1000"] },
);
console.log(`Linux ${src.version} (linux-source-6.1), ${jobs} jobs`);
console.log("config            enabled objects (estimate)   sample objects   sample wall s");
for (const r of [full, trimmed])
  console.log(
    `${r.name.padEnd(18)}${String(r.estimate).padStart(10)}                  ${String(r.sampleObjects ?? "-").padStart(8)}   ${String(r.sampleSeconds ?? "-").padStart(10)}`,
  );
console.log(
  `work ratio, whole tree (estimate): ${(full.estimate / trimmed.estimate).toFixed(1)}x less with the toolkit (goal: 5x)`,
);
if (sample) {
  console.log(
    `sample (${SAMPLE_DIRS.join(" ")}): ${(full.sampleObjects / Math.max(1, trimmed.sampleObjects)).toFixed(1)}x objects, ${(full.sampleSeconds / Math.max(0.1, trimmed.sampleSeconds)).toFixed(1)}x wall time`,
  );
  console.log(
    `extrapolated full build wall time: ~${Math.round((full.estimate * full.sampleSeconds) / Math.max(1, full.sampleObjects) / 60)} min vs ~${Math.round((trimmed.estimate * trimmed.sampleSeconds) / Math.max(1, trimmed.sampleObjects) / 60)} min (per-object time from the sample)`,
  );
}
