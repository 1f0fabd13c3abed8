import { availableParallelism } from "node:os";
import { StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import {
  classifyBuildFailure,
  createMakeProgress,
  type MakeProgress,
  primaryBuildFailure,
} from "../parse/make-progress.js";

/**
 * Run netmap's make with a live "compiled N/M objects" count, the full output in the step's log,
 * and a failure turned into the line that explains it plus what to do.
 */

export interface MakeInput {
  /** Where to run make (the configure build dir, or LINUX/ of a legacy tree). */
  dir: string;
  exec: Exec;
  jobs?: number;
  /** Extra make arguments (legacy: KSRC=<tree>). */
  args?: readonly string[];
  /** Objects the build should compile, when known (see expectedObjects): progress then reads N/M. */
  expected?: number;
  logFile?: string;
  onProgress?: (text: string) => void;
}

export interface MakeOutcome {
  compiled: number;
  durationMs: number;
}

/** Cores to use: all of them (netmap's objects are independent). */
export const defaultJobs = (): number => availableParallelism();

/** "compiled 12/40 objects", or "compiled 12 objects" when the estimate was too low or unknown. */
export function progressText(p: MakeProgress): string {
  const count =
    p.expected !== undefined && p.compiled <= p.expected ? `${p.compiled}/${p.expected}` : `${p.compiled}`;
  const phase = p.phase === "compile" || p.phase === "starting" ? "" : `, ${p.phase}`;
  return `compiled ${count} objects${phase}`;
}

/** `make -j<jobs> [args...] [target]`: the one place a netmap make argv is made (run and plan). */
export const makeArgv = (jobs: number, args: readonly string[] = [], target?: string): string[] => [
  "make",
  `-j${jobs}`,
  ...args,
  ...(target ? [target] : []),
];

/**
 * The legacy (v11.0) make arguments: KSRC= the kernel build dir, and SRC= the full sources when
 * the build has them (the patched drivers are copied from there).
 */
export const legacyMakeArgs = (ksrc: string, kernelSources: string | undefined): string[] => [
  `KSRC=${ksrc}`,
  ...(kernelSources ? [`SRC=${kernelSources}`] : []),
];

/** Run `make -j<jobs> [args...] [target]` in `dir`; StepError with the classified cause on failure. */
export async function runMake(i: MakeInput, target?: string): Promise<MakeOutcome> {
  const progress = createMakeProgress(i.expected);
  const lines: string[] = [];
  const argv = makeArgv(i.jobs ?? defaultJobs(), i.args ?? [], target);
  let last = "";
  const r = await i.exec.run(argv, {
    cwd: i.dir,
    reject: false,
    logFile: i.logFile,
    onLine: (line) => {
      lines.push(line);
      const text = progressText(progress.feed(line));
      if (text !== last) i.onProgress?.(text);
      last = text;
    },
  });
  if (r.exitCode !== 0) {
    const findings = classifyBuildFailure(lines.join("\n"));
    const cause = primaryBuildFailure(findings);
    const logHint = i.logFile ? ` (full log: ${i.logFile})` : "";
    throw new StepError(
      "make",
      `\`${argv.join(" ")}\` failed in ${i.dir}${cause ? `: ${cause.line}` : ` with exit code ${r.exitCode}`}`,
      `${cause?.hint ?? "read the build log"}${logHint}`,
    );
  }
  return { compiled: progress.snapshot().compiled, durationMs: r.durationMs };
}

/** netmap v11.0 and older: `make KSRC=<tree>` in LINUX/, then `make KSRC=<tree> apps`. */
export async function runLegacyMake(
  i: MakeInput & { ksrc: string; kernelSources?: string; apps: boolean },
): Promise<MakeOutcome> {
  const args = legacyMakeArgs(i.ksrc, i.kernelSources);
  const mods = await runMake({ ...i, args });
  if (!i.apps) return mods;
  const apps = await runMake({ ...i, args, expected: undefined }, "apps");
  return { compiled: mods.compiled + apps.compiled, durationMs: mods.durationMs + apps.durationMs };
}
