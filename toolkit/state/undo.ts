import { RollbackError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import {
  type JournalState,
  type JournalStep,
  markRolledBack,
  readJournal,
  resumeTransaction,
} from "./journal.js";

/**
 * Undo handlers keyed by journal op. A handler must check the actual state before acting: it is
 * called for every step whose `begin` is on disk, including steps that never happened (crash right
 * after `begin`) and steps already undone by an earlier, interrupted recovery.
 */
export interface UndoContext {
  exec: Exec;
  stateDir: string;
  /** Overwrite files whose content is neither what we wrote nor what was there before. */
  force: boolean;
  warn(message: string): void;
  /** Run `fn` once, after every step is undone (e.g. depmod after all files are back). */
  defer(key: string, fn: () => Promise<void>): void;
}

export type UndoHandler = (
  args: Record<string, unknown>,
  ctx: UndoContext,
  step: JournalStep,
) => Promise<void> | void;

const handlers = new Map<string, UndoHandler>();

/** Register how to undo `op`. Modules that journal an op register its undo when they are loaded. */
export function registerUndo(op: string, handler: UndoHandler): void {
  handlers.set(op, handler);
}

export function undoHandlerFor(op: string): UndoHandler | undefined {
  return handlers.get(op);
}

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

/**
 * Undo every begun, not yet undone step of a journal in reverse order, marking each one undone,
 * then run the deferred actions. Keeps going past a failed undo (later ones are independent files)
 * and reports all failures in one RollbackError.
 */
export async function undoSteps(journal: JournalState, opts: UndoOptions): Promise<{ undone: number }> {
  const tx = resumeTransaction(journal, opts.stateDir);
  const deferred = new Map<string, () => Promise<void>>();
  const ctx: UndoContext = {
    exec: opts.exec,
    stateDir: opts.stateDir,
    force: opts.force ?? false,
    warn: opts.warn ?? (() => {}),
    defer: (key, fn) => {
      if (!deferred.has(key)) deferred.set(key, fn);
    },
  };
  const failures: string[] = [];
  let undone = 0;
  for (const step of [...journal.steps].reverse()) {
    if (step.undone || (opts.only && !opts.only(step))) continue;
    const handler = handlers.get(step.op);
    if (!handler) {
      failures.push(`${describeStep(step)}: no undo handler registered for op "${step.op}"`);
      continue;
    }
    try {
      await handler(step.args, ctx, step);
      tx.undone(step.seq);
      undone++;
    } catch (err) {
      failures.push(`${describeStep(step)}: ${(err as Error).message}`);
    }
  }
  for (const [key, fn] of deferred) {
    try {
      await fn();
    } catch (err) {
      failures.push(`${key}: ${(err as Error).message}`);
    }
  }
  if (failures.length > 0)
    throw new RollbackError(
      `could not undo transaction ${journal.txid} completely:\n  ${failures.join("\n  ")}`,
      [`inspect ${journal.file}`, "fix the files named above, then run `netmap-provision down --force`"],
    );
  return { undone };
}

/** Undo a whole transaction and mark it rolled back. */
export async function undoJournal(journal: JournalState, opts: UndoOptions): Promise<{ undone: number }> {
  const r = await undoSteps(journal, opts);
  markRolledBack(resumeTransaction(readJournal(journal.file), opts.stateDir));
  return r;
}
