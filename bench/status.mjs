#!/usr/bin/env zx
// Times `status --json` (a fresh node process each run, as a user would see it) against the real
// host and a fixture host tree; prints median and p90 in ms. Goal: well under a second.
// Run after `npx tsc -p .`:  npx zx bench/status.mjs [runs]
import { fileURLToPath } from "node:url";

$.verbose = false;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(repo, "dist/toolkit/cli/main.js");
const runs = Number(process.argv.at(-1)) > 0 ? Number(process.argv.at(-1)) : 20;
if (!fs.existsSync(cli)) {
  console.error(`${cli} is missing: run \`npx tsc -p .\` first`);
  process.exit(2);
}

const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function bench(label, argv, check = (stdout) => JSON.parse(stdout)) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const out = await $`node ${argv}`;
    times.push(performance.now() - t0);
    check(out.stdout); // a run that prints no valid JSON is a failure, not a timing
  }
  times.sort((a, b) => a - b);
  const f = (x) => x.toFixed(1).padStart(7);
  console.log(
    `${label.padEnd(34)} median ${f(percentile(times, 50))} ms   p90 ${f(percentile(times, 90))} ms   (${runs} runs)`,
  );
}

// Baselines: node itself, and the CLI doing nothing (loading every command module).
await bench("baseline: node -e 0", ["-e", "0"], () => {});
await bench("baseline: cli --version", [cli, "--version"], () => {});
await bench("status --json, real host", [cli, "status", "--json"]);
await bench("status --json, hosts/netmap-loaded", [
  cli,
  "status",
  "--json",
  "--root",
  path.join(repo, "test/fixtures/hosts/netmap-loaded"),
]);
console.log(
  `load average: ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")} on ${os.cpus().length} CPUs`,
);
