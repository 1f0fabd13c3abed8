import type { Exec } from "../core/exec.js";

/**
 * Steps are data: each says what it would run and touch (`describe`, pure, for `plan`), what it
 * does (`run`) and how to take it back (`undo`). The pipeline turns a list of steps into listr2
 * tasks; nothing else writes tasks inline.
 */

/** A command a step will run: an argv, never a shell string. */
export interface PlannedCommand {
  argv: string[];
  cwd?: string;
  /** Changes the host (dry-run skips it; read-only probes still run). */
  mutates: boolean;
}

/** A file a step will create, move, replace, back up or delete. */
export interface FileChange {
  action: "create" | "replace" | "move" | "delete" | "backup" | "copy";
  path: string;
  to?: string;
}

/** The printable part of a step: what `plan` shows and `--json` emits. */
export interface StepDescription {
  id: string;
  title: string;
  mutates: boolean;
  dependsOn: string[];
  commands: PlannedCommand[];
  files: FileChange[];
  /** Evidence this step looks for (dmesg lines, files, resolution checks). */
  checks: string[];
  /** Set when the step cannot run on this host: what blocks it and what to do. */
  blocked?: { reason: string; fix: string };
  notes?: string[];
}

/** What a running step may report to its live view. */
export interface StepReporter {
  /** One line of progress ("compiled 12/40 objects"). */
  progress(text: string): void;
  /** Full output goes here (the step's log file). */
  readonly logFile: string | undefined;
}

export interface StepContext {
  exec: Exec;
  dryRun: boolean;
  /** Per-run bag for steps to hand results to later steps (typed by each pipeline). */
  data: Record<string, unknown>;
}

export interface Step<C extends StepContext = StepContext> {
  describe(): StepDescription;
  run(ctx: C, report: StepReporter): Promise<void>;
  /** Take back what run() did; must be harmless when run() never got that far. */
  undo?(ctx: C, report: StepReporter): Promise<void>;
}
