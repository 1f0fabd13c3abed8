import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Listr } from "listr2";
import { ProvisionError, RollbackError, StepError } from "../core/errors.js";
import { ExecFailure } from "../core/exec.js";
import { redactSecrets } from "../core/redact.js";
import { escapeControl } from "../core/terminal-text.js";
import type { Step, StepContext, StepReporter } from "./step.js";

/**
 * listr2 writes titles and progress straight to the terminal, past the CLI's writers: a title
 * made from a recipe value (a URL, an interface name) is escaped and redacted here.
 */
const shown = (text: string): string => escapeControl(redactSecrets(text));

/** Outcome of one step, as the run record and the report show it. */
export interface StepOutcome {
  id: string;
  title: string;
  status: "passed" | "failed" | "skipped" | "undone" | "undo-failed";
  durationMs: number;
  message?: string;
  logFile?: string;
}

export interface RunResult {
  ok: boolean;
  outcomes: StepOutcome[];
  error?: unknown;
}

export interface RunOptions {
  /** Folder for one log file per step; none when undefined. */
  logDir?: string;
  /** "auto": listr2's default renderer on a TTY, plain lines otherwise; "silent" for tests and --json. */
  renderer?: "auto" | "plain" | "silent";
  /** Undo the passed steps in reverse order when a step fails (default true). */
  rollbackOnFailure?: boolean;
}

/**
 * Run steps in order as listr2 tasks. A step whose dependency failed or was skipped is skipped
 * and says why. On failure the steps that passed are undone in reverse order (an explicit undo
 * stack, never a process exit hook); an undo that fails turns the result into a RollbackError
 * whose recovery is what that undo said (a journal's RollbackError carries the real advice).
 */
export async function runSteps<C extends StepContext>(
  steps: Step<C>[],
  ctx: C,
  opts: RunOptions = {},
): Promise<RunResult> {
  const outcomes = new Map<string, StepOutcome>();
  const undoStack: Step<C>[] = [];
  let firstError: unknown;
  if (opts.logDir) mkdirSync(opts.logDir, { recursive: true });

  const reporterFor = (id: string, task: { output: string } | undefined): StepReporter => {
    const logFile = opts.logDir ? join(opts.logDir, `${id}.log`) : undefined;
    return {
      logFile,
      progress(text) {
        if (task) task.output = shown(text);
        if (logFile) appendFileSync(logFile, `# ${text}\n`);
      },
    };
  };

  const tasks = steps.map((step) => {
    const d = step.describe();
    return {
      title: shown(d.title),
      skip: () => {
        const bad = d.dependsOn.find((dep) => {
          const o = outcomes.get(dep);
          return o !== undefined && o.status !== "passed";
        });
        if (bad === undefined) return false;
        outcomes.set(d.id, {
          id: d.id,
          title: d.title,
          status: "skipped",
          durationMs: 0,
          message: `skipped: ${bad} did not pass`,
        });
        return shown(`${d.title}: skipped, ${bad} did not pass`);
      },
      task: async (_: unknown, task: { output: string }) => {
        const started = performance.now();
        const reporter = reporterFor(d.id, task);
        try {
          await step.run(ctx, reporter);
          undoStack.push(step);
          outcomes.set(d.id, {
            id: d.id,
            title: d.title,
            status: "passed",
            durationMs: Math.round(performance.now() - started),
            logFile: reporter.logFile,
          });
        } catch (err) {
          const wrapped = wrapStepError(d.id, d.title, err);
          firstError ??= wrapped;
          outcomes.set(d.id, {
            id: d.id,
            title: d.title,
            status: "failed",
            durationMs: Math.round(performance.now() - started),
            message: wrapped.message,
            logFile: reporter.logFile,
          });
          throw wrapped;
        }
      },
    };
  });

  const renderer = opts.renderer ?? "auto";
  const list = new Listr(tasks, {
    concurrent: false,
    exitOnError: false,
    registerSignalListeners: false,
    renderer: renderer === "silent" ? "silent" : renderer === "plain" ? "simple" : "default",
    fallbackRenderer: "simple",
    rendererOptions: { collapseErrors: false },
  });
  try {
    await list.run();
  } catch {
    // Errors are collected per step above; listr2 rethrows only with exitOnError.
  }

  if (firstError === undefined) return { ok: true, outcomes: steps.map((s) => mustOutcome(outcomes, s)) };

  if (opts.rollbackOnFailure ?? true) {
    const recovery: string[] = [];
    for (const step of undoStack.reverse()) {
      const d = step.describe();
      if (!step.undo) continue;
      try {
        await step.undo(ctx, reporterFor(`${d.id}.undo`, undefined));
        const o = outcomes.get(d.id);
        if (o) o.status = "undone";
      } catch (err) {
        const o = outcomes.get(d.id);
        if (o) {
          o.status = "undo-failed";
          o.message = err instanceof Error ? err.message : String(err);
        }
        // The undo's own advice (a journal's: the steps left, their files, the `down` that resumes
        // it), never the step's forward commands: running depmod or modinfo again recovers nothing.
        recovery.push(`# undo of "${d.title}" failed: ${firstLine(o?.message ?? "")}`);
        if (err instanceof RollbackError) recovery.push(...err.recovery);
        else {
          const files = d.files.map((f) => f.path);
          if (files.length > 0) recovery.push(`# the step changes ${files.join(", ")}: check them by hand`);
        }
      }
    }
    if (recovery.length > 0) {
      firstError = new RollbackError(
        `${(firstError as Error).message}; and undoing the steps before it failed`,
        recovery,
        firstError,
      );
    }
  }
  return { ok: false, outcomes: steps.map((s) => mustOutcome(outcomes, s)), error: firstError };
}

const firstLine = (text: string): string => text.split("\n")[0] ?? "";

function mustOutcome<C extends StepContext>(outcomes: Map<string, StepOutcome>, s: Step<C>): StepOutcome {
  const d = s.describe();
  return (
    outcomes.get(d.id) ?? {
      id: d.id,
      title: d.title,
      status: "skipped",
      durationMs: 0,
      message: "not reached",
    }
  );
}

/** Keep our own errors as they are; wrap a process failure so its short message is shown. */
function wrapStepError(id: string, title: string, err: unknown): ProvisionError {
  if (err instanceof ProvisionError) return err;
  if (err instanceof ExecFailure) return new StepError(id, `${title}: ${err.shortMessage}`, undefined, err);
  const e = err instanceof Error ? err : new Error(String(err));
  return new StepError(id, `${title}: ${e.message}`, undefined, e);
}
