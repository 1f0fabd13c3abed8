import { type ProvisionError, RollbackError } from "../core/errors.js";
import type { RanCommand } from "../core/exec.js";
import type { PersistResult } from "../modules/persist.js";
import type { StepOutcome } from "../runner/runner.js";
import type { VerifyReport } from "../verify/verify-report.js";
import type { UpKernelReport } from "./kernel-phase.js";

/** One step as the reports show it (the runner's outcome without the log path). */
export type ReportStep = Pick<StepOutcome, "id" | "title" | "status" | "durationMs" | "message">;

export interface ReportError {
  message: string;
  hint?: string;
  exitCode: number;
  /** Exit 3: what to do by hand (the journal's advice: steps left, files, the `down` to run). */
  recovery?: string[];
}

/** `up --json` (contract shared with `try`). */
export interface UpReport {
  ok: boolean;
  /** False when everything was already in place and was only verified. */
  changed: boolean;
  transaction: string | null;
  /** An interrupted transaction found at start: finished (a down) or rolled back (an up). */
  resumed?: "finished" | "rolled-back";
  steps: ReportStep[];
  verify: VerifyReport | null;
  /** Armed when the management interface was swapped with --allow-management. */
  deadman?: { pid: number; timeoutSec: number; deadline: string };
  /** modules.persist: the modules-load.d entry and the regenerated initramfs, with what it holds. */
  persist?: PersistResult;
  /** A kernel.build recipe: where its kernel stands (toolkit/up/kernel-phase.ts). */
  kernel?: UpKernelReport;
  /** Every command the build and transaction steps ran, in order, with the step that ran it. */
  commands: RanCommand[];
  warnings: string[];
  error?: ReportError;
}

/** `down --json`. */
export interface DownReport {
  ok: boolean;
  steps: ReportStep[];
  restored: Array<{ path: string; sha256: string; matches: boolean }>;
  stockBound: Array<{ ifname: string; driver: string | null }>;
  devNetmapGone: boolean;
  resumed?: "finished" | "rolled-back";
  /** Every command down's steps ran, in order, with the step that ran it. */
  commands: RanCommand[];
  warnings: string[];
  error?: ReportError;
}

/** A down report before anything ran (down fills it; `down --plan` describes with one). */
export const emptyDownReport = (): DownReport => ({
  ok: false,
  steps: [],
  restored: [],
  stockBound: [],
  devNetmapGone: false,
  commands: [],
  warnings: [],
});

export const reportStep = (o: StepOutcome): ReportStep => {
  const s: ReportStep = { id: o.id, title: o.title, status: o.status, durationMs: o.durationMs };
  if (o.message !== undefined) s.message = o.message;
  return s;
};

export function reportError(err: ProvisionError): ReportError {
  const e: ReportError = { message: err.message, exitCode: err.exitCode };
  if (err.hint) e.hint = err.hint;
  if (err instanceof RollbackError) e.recovery = err.recovery;
  return e;
}
