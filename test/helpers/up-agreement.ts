import type { StepDescription } from "../../toolkit/runner/step.js";
import { matches, shown } from "./agreement.js";

export { shown } from "./agreement.js";

/**
 * The plan-vs-run agreement for `up` (issue 12): `plan --json` printed before `up --json`, whose
 * `commands` lists what each step ran. Every command a transaction step ran must be planned for
 * that step, and every command planned for it must run. The build step runs the build pipeline:
 * what it ran must be among the build steps' planned commands (or a read-only probe); on a cache
 * hit it runs none of them, otherwise all.
 */

export interface Ran {
  step: string;
  argv: string[];
  cwd?: string;
}

const BUILD_STEP_IDS = new Set([
  "netmap-source",
  "kernel-sources",
  "sources",
  "ext-drivers",
  "configure",
  "make",
  "netmap-build",
  "manifest",
  "cache-store",
]);
const TRANSACTION_IDS = new Set(["install", "swap", "verify", "persist", "record"]);

/** Read-only probes the build makes about the host (compiler identity, kbuild's variables, `make -n`). */
export const BUILD_PROBES: Array<(argv: readonly string[]) => boolean> = [
  (a) => a[0] === "cc" && a[1] === "--version",
  (a) => a.includes("np-print-vars"),
  (a) => a[0] === "make" && a[1] === "-n",
];

/**
 * What disagrees, as lines to print; empty when plan and run agree. `buildCache` is the plan's
 * word on the netmap build: a planned hit must run no build command, a planned miss all of them.
 */
export function upDisagreements(
  steps: readonly StepDescription[],
  ran: readonly Ran[],
  buildCache?: { key: string | null; hit: boolean } | null,
): string[] {
  const out: string[] = [];
  const planned = (id: string) => steps.find((s) => s.id === id)?.commands ?? [];
  const buildPlanned = steps.filter((s) => BUILD_STEP_IDS.has(s.id)).flatMap((s) => s.commands);
  for (const e of ran) {
    if (e.step === "build") {
      if (BUILD_PROBES.some((p) => p(e.argv))) continue;
      if (!buildPlanned.some((p) => matches(p, e)))
        out.push(`build ran, not planned: ${shown(e.argv, e.cwd)}`);
    } else if (!planned(e.step).some((p) => matches(p, e)))
      out.push(`${e.step} ran, not planned for it: ${shown(e.argv, e.cwd)}`);
  }
  const builtHere = ran.some((e) => e.step === "build" && !BUILD_PROBES.some((p) => p(e.argv)));
  if (buildCache?.hit && builtHere) out.push(`the plan said cache hit ${buildCache.key}, but up built`);
  if (buildCache && !buildCache.hit && buildCache.key !== null && !builtHere && buildPlanned.length > 0)
    out.push(`the plan said the build runs (no cache entry ${buildCache.key}), but up built nothing`);
  if (builtHere)
    for (const p of buildPlanned)
      if (!ran.some((e) => e.step === "build" && matches(p, e)))
        out.push(`planned for the build, not run: ${shown(p.argv, p.cwd)}`);
  out.push(
    ...plannedNotRun(
      steps.filter((x) => TRANSACTION_IDS.has(x.id)),
      ran,
    ),
  );
  return out;
}

function plannedNotRun(steps: readonly StepDescription[], ran: readonly Ran[]): string[] {
  const out: string[] = [];
  for (const s of steps)
    for (const p of s.commands)
      if (!ran.some((e) => e.step === s.id && matches(p, e)))
        out.push(`planned for ${s.id}, not run: ${shown(p.argv, p.cwd)}`);
  return out;
}

/** `down --plan` against what `down --json` says its steps ran: every step, both ways. */
export function downDisagreements(steps: readonly StepDescription[], ran: readonly Ran[]): string[] {
  const out: string[] = [];
  for (const e of ran)
    if (!(steps.find((s) => s.id === e.step)?.commands ?? []).some((p) => matches(p, e)))
      out.push(`${e.step} ran, not planned for it: ${shown(e.argv, e.cwd)}`);
  return [...out, ...plannedNotRun(steps, ran)];
}
