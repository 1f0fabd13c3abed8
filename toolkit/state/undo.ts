import { ForeignFileError, RollbackError } from "../core/errors.js";
import { type Exec, quoteArgv } from "../core/exec.js";
import {
  type JournalState,
  type JournalStep,
  markRolledBack,
  readJournal,
  resumeTransaction,
} from "./journal.js";
import { defaultStateDir } from "./lock.js";
import { checkJournalOps, undoEntryFor } from "./undo-table.js";

/**
 * Undoing a journal. Which handler undoes which op is the undo table's business (undo-table.ts);
 * a handler must check the actual state before acting: it is called for every step whose `begin`
 * is on disk, including steps that never happened (crash right after `begin`) and steps already
 * undone by an earlier, interrupted recovery.
 */
export interface UndoContext {
  exec: Exec;
  stateDir: string;
  /** Overwrite files whose content is neither what we wrote nor what was there before. */
  force: boolean;
  warn(message: string): void;
  /**
   * Run `fn` once, after every step is undone (e.g. depmod after all files are back). The step
   * that asked is marked undone only once `fn` has run.
   */
  defer(key: string, fn: () => Promise<void>): void;
}

export type UndoHandler = (
  args: Record<string, unknown>,
  ctx: UndoContext,
  step: JournalStep,
) => Promise<void> | void;

/** What a step was, for error messages: op and its main argument. */
export function describeStep(s: JournalStep): string {
  const a = s.args;
  const main = a.dest ?? a.path ?? a.module ?? a.kver ?? "";
  return `#${s.seq} ${s.op} ${String(main)}`.trim();
}

export interface UndoOptions {
  exec: Exec;
  stateDir: string;
  force?: boolean;
  warn?: (m: string) => void;
  /** Only these steps (default: all of them). */
  only?: (step: JournalStep) => boolean;
}

/** An undo that failed: a step's own, or a deferred action run for some steps. */
export interface UndoFailure {
  what: string;
  steps: JournalStep[];
  err: unknown;
}

/**
 * Undo every begun, not yet undone step of a journal in reverse order, marking each one undone,
 * then run the deferred actions. Keeps going past a failed undo (later ones are independent files)
 * and reports all failures in one RollbackError whose recovery is the journal's own advice: the
 * steps left, the files involved, and the `down` (or `down --force`) that would undo the rest.
 * A journal naming an op the undo table does not know is refused before anything is undone.
 */
export async function undoSteps(journal: JournalState, opts: UndoOptions): Promise<{ undone: number }> {
  checkJournalOps(journal);
  if (journal.kind !== "up")
    throw new Error(`undoSteps: the "${journal.kind}" transaction ${journal.txid} is finished, never undone`);
  const tx = resumeTransaction(journal, opts.stateDir);
  const deferred = new Map<string, { fn: () => Promise<void>; steps: JournalStep[] }>();
  /** Seq -> deferred actions of that step not run yet. */
  const waiting = new Map<number, number>();
  const failedSeqs = new Set<number>();
  const undoneNow = new Set<number>();
  let current: JournalStep | undefined;
  const ctx: UndoContext = {
    exec: opts.exec,
    stateDir: opts.stateDir,
    force: opts.force ?? false,
    warn: opts.warn ?? (() => {}),
    defer: (key, fn) => {
      let d = deferred.get(key);
      if (!d) {
        d = { fn, steps: [] };
        deferred.set(key, d);
      }
      if (current && !d.steps.includes(current)) {
        d.steps.push(current);
        waiting.set(current.seq, (waiting.get(current.seq) ?? 0) + 1);
      }
    },
  };
  const markUndone = (s: JournalStep) => {
    tx.undone(s.seq);
    undoneNow.add(s.seq);
  };
  const failures: UndoFailure[] = [];
  for (const step of [...journal.steps].reverse()) {
    if (step.undone || (opts.only && !opts.only(step))) continue;
    const entry = undoEntryFor(step.op);
    if (!entry) throw new Error(`undoSteps: no undo for op "${step.op}" after checkJournalOps`);
    current = step;
    try {
      await entry.undo(step.args, ctx, step);
      if (!waiting.has(step.seq)) markUndone(step);
    } catch (err) {
      failedSeqs.add(step.seq);
      failures.push({ what: describeStep(step), steps: [step], err });
    } finally {
      current = undefined;
    }
  }
  for (const [key, d] of deferred) {
    try {
      await d.fn();
      for (const s of d.steps) {
        const left = (waiting.get(s.seq) ?? 1) - 1;
        waiting.set(s.seq, left);
        if (left === 0 && !failedSeqs.has(s.seq)) markUndone(s);
      }
    } catch (err) {
      for (const s of d.steps) failedSeqs.add(s.seq);
      failures.push({ what: `${key} (for ${d.steps.map(describeStep).join(", ")})`, steps: d.steps, err });
    }
  }
  if (failures.length > 0)
    throw new RollbackError(
      `could not undo transaction ${journal.txid} completely:\n  ${failures
        .map((f) => `${f.what}: ${(f.err as Error).message}`)
        .join("\n  ")}`,
      rollbackAdvice(
        journal,
        journal.steps.filter((s) => !s.undone && !undoneNow.has(s.seq)),
        failures,
        opts,
      ),
    );
  return { undone: undoneNow.size };
}

const firstLine = (err: unknown): string => ((err as Error).message ?? String(err)).split("\n")[0] ?? "";

/**
 * What to do after a failed undo, from the journal: which steps are not undone and why, the files
 * involved, and what `down` (which resumes this very journal) would do with each step left. The
 * last line is the command; `--force` only when something else changed a file since.
 */
export function rollbackAdvice(
  journal: JournalState,
  left: JournalStep[],
  failures: UndoFailure[],
  opts: { stateDir: string; force?: boolean },
): string[] {
  const foreign = [
    ...new Set(failures.flatMap((f) => (f.err instanceof ForeignFileError ? [f.err.path] : []))),
  ];
  const force = foreign.length > 0 && !opts.force;
  const root = journal.meta.root;
  const argv = [
    "netmap-provision",
    "down",
    ...(force ? ["--force"] : []),
    ...(opts.stateDir !== defaultStateDir ? ["--state-dir", opts.stateDir] : []),
    ...(typeof root === "string" && root !== "/" ? ["--root", root] : []),
  ];
  const lines = [`# transaction ${journal.txid} is not completely undone; its journal is ${journal.file}`];
  for (const f of failures) {
    lines.push(`# not undone: ${f.what}: ${firstLine(f.err)}`);
    const files = [...new Set(f.steps.flatMap((s) => undoEntryFor(s.op)?.files(s.args) ?? []))];
    if (files.length > 0) lines.push(`#   files: ${files.join(", ")}`);
  }
  lines.push(
    `# \`${argv.slice(0, force ? 3 : 2).join(" ")}\` resumes that journal: it undoes the ${left.length} step(s) left, newest first, each looking at its files first:`,
  );
  for (const s of [...left].reverse())
    lines.push(`#   ${describeStep(s)}: ${undoEntryFor(s.op)?.does(s.args) ?? "?"}`);
  lines.push(
    force
      ? `# --force puts the originals back over ${foreign.join(", ")}, although something else changed them since: look at them first`
      : "# first fix what the errors above name (a program holding a module, a damaged backup), then run:",
  );
  lines.push(quoteArgv(argv));
  return lines;
}

/** Undo a whole transaction and mark it rolled back. */
export async function undoJournal(journal: JournalState, opts: UndoOptions): Promise<{ undone: number }> {
  const r = await undoSteps(journal, opts);
  markRolledBack(resumeTransaction(readJournal(journal.file), opts.stateDir));
  return r;
}
