#!/usr/bin/env zx
// Wall time of `try` (build cached) against its floor: a bare guest of the same kernel with the same
// e1000 NIC that boots, insmods the same netmap.ko then e1000.ko from the build, and powers off.
// Median of N runs each (default 3), and the ratio. Goal: try within 1.5x of the floor.
// Run after `npx tsc -p .`:  npx zx bench/try.mjs [--netmap-source DIR] [runs]
// (default: the test stand-in; DIR: e.g. an upstream netmap checkout exported into /tmp)
// Note: other work on the machine's cores slows TCG guests a lot; uptime is printed with the numbers.
import { fileURLToPath } from "node:url";

$.verbose = false;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(repo, "dist/toolkit/cli/main.js");
const runs = Number(process.argv.at(-1)) > 0 ? Number(process.argv.at(-1)) : 3;
const srcAt = process.argv.indexOf("--netmap-source");
if (!fs.existsSync(cli)) {
  console.error(`${cli} is missing: run \`npx tsc -p .\` first`);
  process.exit(2);
}
const { ensureKernelDriverSources, standinDir } = await import(
  path.join(repo, "dist/test/helpers/kernel-sources.js")
);
const { createExec } = await import(path.join(repo, "dist/toolkit/core/exec.js"));
const { bootGuest } = await import(path.join(repo, "dist/toolkit/guest/qemu.js"));

// Under the repo, not /tmp: the guest sees the host root but gets an empty /tmp.
const cacheDir = path.join(repo, ".cache", "bench-try");
const flags = [
  "--netmap-source",
  srcAt > 0 ? path.resolve(process.argv[srcAt + 1]) : standinDir,
  "--kernel-sources",
  ensureKernelDriverSources(),
  "--drivers",
  "e1000",
  "--cache-dir",
  cacheDir,
];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms) => `${(ms / 1000).toFixed(1)} s`;

// Warm the cache, and learn where the artifacts are (the floor loads the very same files). `build`
// targets the running kernel, so it is pointed at the guest kernel's build dir; the cache key has
// the release and its .config, not the dir, so try then hits this entry.
const guestRelease = fs
  .readdirSync("/boot")
  .map((n) => /^vmlinuz-(.+)$/.exec(n)?.[1])
  .filter((r) => r && fs.existsSync(`/lib/modules/${r}/build`))
  .sort()
  .at(-1);
const built = JSON.parse(
  (await $`node ${cli} build ${flags} --kernel-dir /lib/modules/${guestRelease}/build --json`).stdout,
);
const mod = (name) => path.join(built.artifactsDir, built.manifest.modules.find((m) => m.name === name).path);
const release = built.manifest.kernelRelease;
console.log(
  `build: ${built.cacheHit ? "cache hit" : "built"} for ${release}; load: ${(await $`uptime`).stdout.trim()}`,
);

const tryTimes = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  const r = await $`node ${cli} try ${flags} --json`.nothrow();
  const ms = performance.now() - t0;
  const report = JSON.parse(r.stdout);
  if (r.exitCode !== 0 || !report.build.cacheHit) {
    console.error(
      `try run ${i + 1} failed (exit ${r.exitCode}, cache hit ${report.build.cacheHit}): not a timing`,
    );
    console.error(JSON.stringify(report.steps, null, 1));
    process.exit(1);
  }
  const steps = report.steps
    .map((x) => `${x.id} ${x.durationMs === null ? "-" : s(x.durationMs)}`)
    .join(", ");
  console.log(`try   #${i + 1}: ${s(ms)}  (${report.accel.accel}; ${steps})`);
  tryTimes.push(ms);
}

const exec = createExec();
const floorTimes = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  const r = await bootGuest(exec, {
    kernel: `/boot/vmlinuz-${release}`,
    kernelRelease: release,
    nics: [{ model: "e1000", id: "n0" }],
    totalTimeoutMs: 900_000,
    command: ["sh", "-c", 'insmod "$1" && insmod "$2"', "sh", mod("netmap"), mod("e1000")],
  });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) {
    console.error(`floor run ${i + 1}: insmod failed (exit ${r.exitCode}): ${r.stderr}`);
    process.exit(1);
  }
  console.log(`floor #${i + 1}: ${s(ms)}  (${r.accel}; boot to payload ${s(r.bootMs ?? 0)})`);
  floorTimes.push(ms);
}

const t = median(tryTimes);
const f = median(floorTimes);
console.log(
  `\ntry (build cached) median ${s(t)}   floor median ${s(f)}   ratio ${(t / f).toFixed(2)}x (goal <= 1.5x)`,
);
console.log(`load after: ${(await $`uptime`).stdout.trim()}`);
