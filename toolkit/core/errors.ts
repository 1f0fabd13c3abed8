import { redactSecrets } from "./redact.js";
import { escapeControl } from "./terminal-text.js";

/**
 * Error kinds and exit codes. Every failure the user sees is one of these, so the exit code tells
 * "you misused the tool" from "the job failed" from "the job failed and could not be undone".
 */

/** Documented exit codes (README "Exit codes"). */
export const ExitCode = {
  ok: 0,
  /** A step failed; anything it changed was undone. */
  failed: 1,
  /** Bad input (recipe, flags, arguments): nothing was changed. */
  usage: 2,
  /** A step failed and undoing it failed too: manual recovery commands were printed. */
  rollbackFailed: 3,
  /** Preconditions not met (doctor/plan found a blocker): nothing was changed. */
  blocked: 4,
  /** A guest or a step ran out of time. */
  timeout: 5,
  /** Another netmap-provision run holds the state dir (its lock): nothing was changed; retry once it ends. */
  busy: 6,
  /** A bug in netmap-provision itself. */
  internal: 70,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: a message, a hint saying what to do next, and the exit code it maps to. */
export class ProvisionError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: ExitCodeValue;
  constructor(message: string, opts: { hint?: string; exitCode: ExitCodeValue; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode;
  }
}

/** The user's input is wrong (recipe, flag, argument). Nothing was changed on the host. */
export class UserError extends ProvisionError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { hint, exitCode: ExitCode.usage, cause });
  }
}

/** One recipe problem with its location, as the recipe loader reports it. */
export interface RecipeIssue {
  file: string;
  line: number;
  col: number;
  message: string;
  hint?: string;
}

/** A recipe did not validate; carries every issue found, each with file:line:col. */
export class RecipeError extends UserError {
  readonly issues: RecipeIssue[];
  constructor(issues: RecipeIssue[]) {
    const first = issues[0];
    super(
      issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.message}`).join("\n"),
      first?.hint ?? "fix the recipe and run `netmap-provision recipe validate` again",
    );
    this.issues = issues;
  }
}

/** The host is not ready (missing sources, tools, Secure Boot...): nothing was changed. */
export class BlockedError extends ProvisionError {
  constructor(message: string, hint?: string) {
    super(message, { hint, exitCode: ExitCode.blocked });
  }
}

/** A step of the pipeline failed; `cause` carries the process error when there is one. */
export class StepError extends ProvisionError {
  readonly step: string;
  constructor(step: string, message: string, hint?: string, cause?: unknown) {
    super(message, { hint, exitCode: ExitCode.failed, cause });
    this.step = step;
  }
}

/**
 * Undo found a file holding neither what netmap-provision wrote nor what was there before:
 * something else changed it since, so it is left alone unless `--force` says to overwrite it.
 */
export class ForeignFileError extends StepError {
  readonly path: string;
  constructor(path: string, message: string, hint: string) {
    super("undo", message, hint);
    this.path = path;
  }
}

/** Something timed out (a guest boot, a module unload). */
export class TimeoutError extends ProvisionError {
  constructor(message: string, hint?: string) {
    super(message, { hint, exitCode: ExitCode.timeout });
  }
}

/**
 * Another run is busy with the same state dir (it holds the lock, or its transaction is still
 * running): nothing was changed, and the same command will work once that run ends. Callers that
 * wait for the other run (the dead-man timer) test for this kind, never for a message.
 */
export class BusyError extends ProvisionError {
  constructor(message: string, hint?: string) {
    super(message, { hint, exitCode: ExitCode.busy });
  }
}

/** Undo failed: the host is in a mixed state; `recovery` lists the commands to run by hand. */
export class RollbackError extends ProvisionError {
  readonly recovery: string[];
  constructor(message: string, recovery: string[], cause?: unknown) {
    super(message, {
      hint: `run these by hand to recover:\n  ${recovery.join("\n  ")}`,
      exitCode: ExitCode.rollbackFailed,
      cause,
    });
    this.recovery = recovery;
  }
}

/**
 * Format any error for the terminal: what happened, then what to do next. Messages quote outside
 * text (recipe values, file contents, interface names): control characters are shown escaped,
 * and a URL's password never (redact.ts).
 */
export function formatError(err: unknown): { text: string; exitCode: ExitCodeValue } {
  if (err instanceof ProvisionError) {
    const lines = [`error: ${err.message}`];
    if (err.cause instanceof Error && "shortMessage" in err.cause) {
      lines.push(`  caused by: ${String((err.cause as { shortMessage: unknown }).shortMessage)}`);
    }
    if (err.hint) lines.push(`hint: ${err.hint}`);
    return { text: escapeControl(redactSecrets(lines.join("\n"))), exitCode: err.exitCode };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    text: escapeControl(
      redactSecrets(`internal error (a bug in netmap-provision, please report it): ${e.stack ?? e.message}`),
    ),
    exitCode: ExitCode.internal,
  };
}
