#!/usr/bin/env zx
// Times, on the netmap stand-in: the manual procedure (configure + make -j<jobs> by hand in a
// temp dir), the toolkit's `build` with an empty cache (cold), and again (warm: cache hit).
// Goal: cold within 10% of manual, warm under 2 s.
// Run after `npx tsc -p .`:  npx zx bench/build.mjs [--jobs 2] [--rounds 3]
// Kernel: the installed Debian kernel's headers; sources: the tests' unpack under .cache/ (or $KSRC).
import { fileURLToPath } from "node:url";
import { installedDebianKernel } from "./installed-kernel.mjs";

$.verbose = false;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(repo, "dist/toolkit/cli/main.js");
const standin = path.join(repo, "test/fixtures/netmap-standin");
const numArg = (flag, dflt) => {
  const i = process.argv.indexOf(flag);
  return i > 0 && Number(process.argv[i + 1]) > 0 ? Number(process.argv[i + 1]) : dflt;
};
const jobs = numArg("--jobs", 2);
const rounds = numArg("--rounds", 3);
if (!fs.existsSync(cli)) {
  console.error(`${cli} is missing: run \`npx tsc -p .\` first`);
  process.exit(2);
}

const { unpackedDriverSources } = await import(path.join(repo, "dist/test/helpers/kernel-sources.js"));
// The installed Debian kernel (whatever ABI release apt installed), found as the tests find it.
const debian = await installedDebianKernel(repo);
const release = debian.release;
const kdir = debian.buildDir;
const candidates = [
  process.env.KSRC,
  unpackedDriverSources(debian.sourceTarball),
  path.join(repo, ".cache/build-test-ksrc/kernel-sources", debian.version),
].filter(Boolean);
const ksrc = candidates.find((d) => fs.existsSync(path.join(d, "drivers/net")));
if (!ksrc) {
  console.error(
    `no unpacked ${debian.sourcePackage}: run the build tests once (npx ava dist/test/build/) or set KSRC=<tree>`,
  );
  process.exit(2);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "np-bench-build-"));
const recipe = path.join(work, "bench.yaml");
fs.writeFileSync(
  recipe,
  `name: bench-build
kernel:
  version: running
  buildDir: ${kdir}
  sources: { kind: local, path: ${ksrc} }
netmap:
  source: { kind: local, path: ${standin} }
  apps: [pkt-gen]
drivers: [e1000]
`,
);

async function timed(fn) {
  const t0 = performance.now();
  const r = await fn();
  return { s: (performance.now() - t0) / 1000, r };
}

// Manual: what a user types, in a fresh build dir.
async function manualBuild(round) {
  const dir = path.join(work, `manual-${round}`);
  fs.mkdirpSync(dir);
  const t = await timed(() =>
    within(async () => {
      cd(dir);
      await $`${standin}/configure --kernel-dir=${kdir} --kernel-sources=${ksrc} --drivers=e1000 --apps=pkt-gen`;
      await $`make -j${jobs}`;
    }),
  );
  if (!fs.existsSync(path.join(dir, "e1000/e1000.ko")))
    throw new Error("the manual build produced no e1000.ko");
  return t.s;
}

const build = (cacheDir) =>
  $`node ${cli} build --recipe ${recipe} --cache-dir ${cacheDir} --offline --jobs ${jobs} --json`.then((o) =>
    JSON.parse(o.stdout),
  );

// Interleaved rounds, medians reported: other work on the machine shifts single figures a lot.
const times = { manual: [], cold: [], warm: [] };
for (let round = 0; round < rounds; round++) {
  const cacheDir = path.join(work, `cache-${round}`);
  times.manual.push(await manualBuild(round));
  const cold = await timed(() => build(cacheDir));
  const warm = await timed(() => build(cacheDir));
  if (cold.r.cacheHit || !warm.r.cacheHit) throw new Error("expected a cold miss then a warm hit");
  times.cold.push(cold.s);
  times.warm.push(warm.s);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const [manual, cold, warm] = [median(times.manual), median(times.cold), median(times.warm)];
const f = (s) => `${s.toFixed(2).padStart(7)} s`;
const all = (xs) => xs.map((x) => x.toFixed(1)).join(", ");
console.log(
  `netmap stand-in, ${release}, make -j${jobs}, ${rounds} round(s), load average ${os.loadavg()[0].toFixed(1)}`,
);
console.log(`manual (configure + make)      ${f(manual)}   [${all(times.manual)}]`);
console.log(
  `toolkit cold (empty cache)     ${f(cold)}   [${all(times.cold)}]   ratio to manual ${(cold / manual).toFixed(3)}`,
);
console.log(
  `toolkit warm (cache hit)       ${f(warm)}   [${all(times.warm)}]   ratio to manual ${(warm / manual).toFixed(3)}`,
);
console.log(
  `goals: cold within 10% of manual: ${cold <= manual * 1.1 ? "yes" : "NO"}; warm under 2 s: ${warm < 2 ? "yes" : "NO"}`,
);
fs.rmSync(work, { recursive: true, force: true });
