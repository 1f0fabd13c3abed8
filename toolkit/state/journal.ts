import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  truncateSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { fileKind, readBoundedText } from "../core/bounded-read.js";
import { UserError } from "../core/errors.js";
import { fsyncDir } from "./atomic-file.js";
import { issueText } from "./state-file.js";

/**
 * The write-ahead journal: one JSON-lines file per transaction, `<stateDir>/journal/<txid>.jsonl`.
 * Every change is journaled (and fsync'd) as `begin` BEFORE it is made and marked `done` after,
 * so after a crash the next run knows every step that may have happened and can undo it.
 *
 *   {"seq":0,"status":"open","txid":"20260101T101010123Z-up-4242","kind":"up","pid":4242,"at":"…","meta":{…}}
 *   {"seq":1,"status":"begin","op":"backup","args":{"path":"…","backupPath":"…","sha256":"…","mode":33188},"at":"…"}
 *   {"seq":1,"status":"done","at":"…"}
 *   {"seq":2,"status":"begin","op":"install","args":{"src":"…","dest":"…","sha256":"…"},"at":"…"}
 *   …
 *   {"status":"commit","at":"…"}            (or "rolled-back" once a failed/torn run was undone)
 *
 * Ops are plain data; the set is closed: undo-table.ts lists every op and its undo, and a journal
 * naming any other op is refused (exit 2) before recovery undoes anything.
 */

export type TransactionKind = "up" | "down";

export interface OpenEntry {
  seq: 0;
  status: "open";
  txid: string;
  kind: TransactionKind;
  pid: number;
  at: string;
  meta: Record<string, unknown>;
}
export interface BeginEntry {
  seq: number;
  status: "begin";
  op: string;
  args: Record<string, unknown>;
  at: string;
}
export interface DoneEntry {
  seq: number;
  status: "done" | "undone";
  at: string;
  result?: unknown;
}
export interface CloseEntry {
  status: "commit" | "rolled-back";
  at: string;
}
export type JournalEntry = OpenEntry | BeginEntry | DoneEntry | CloseEntry;

/** One journaled step as read back: its begin, and whether it finished and/or was undone. */
export interface JournalStep {
  seq: number;
  op: string;
  args: Record<string, unknown>;
  done: boolean;
  undone: boolean;
  result?: unknown;
}

export interface JournalState {
  file: string;
  txid: string;
  kind: TransactionKind;
  pid: number;
  meta: Record<string, unknown>;
  steps: JournalStep[];
  /** How the transaction ended; undefined means it is still pending (crashed or running). */
  closed: "commit" | "rolled-back" | undefined;
  /** The last line was cut short by a crash mid-write and was ignored. */
  torn: boolean;
}

export const journalDir = (stateDir: string): string => join(stateDir, "journal");

/**
 * Test-only crash hook: NETMAP_PROVISION_STOP_AT_STEP=N makes the process SIGKILL itself right
 * after the `begin` of step N is on disk, so tests can crash a run at every journaled step. Never
 * set it outside tests.
 */
export const stopAtStepEnv = "NETMAP_PROVISION_STOP_AT_STEP";

/** A journal holds a few dozen lines of a few hundred bytes; anything this large is not one. */
export const MAX_JOURNAL_BYTES = 16 * 1024 * 1024;

const JOURNAL_HINT =
  "inspect the journal by hand; move it out of the journal directory once the host is checked";

const at = z.string().max(64);
const seq = z.number().int().min(1).max(1_000_000);
const args = z.record(z.string(), z.unknown());
/** Each line, as netmap-provision writes it: a foreign or damaged line is refused, never guessed at. */
const entrySchema = z.union([
  z.object({
    seq: z.literal(0),
    status: z.literal("open"),
    txid: z.string().regex(/^[0-9A-Za-z-]{1,80}$/, "expected a transaction id"),
    kind: z.enum(["up", "down"]),
    pid: z.number().int().min(1),
    at,
    meta: args,
  }),
  z.object({ seq, status: z.literal("begin"), op: z.string().regex(/^[a-z][a-z0-9-]{0,40}$/), args, at }),
  z.object({ seq, status: z.enum(["done", "undone"]), at, result: z.unknown().optional() }),
  z.object({ status: z.enum(["commit", "rolled-back"]), at }),
]);

/** Parse a journal; a torn last line (crash mid-write) is skipped, a corrupt middle line is an error. */
export function readJournal(file: string): JournalState {
  let text: string;
  try {
    text = readBoundedText(file, { what: "journal", maxBytes: MAX_JOURNAL_BYTES, hint: JOURNAL_HINT });
  } catch (e) {
    throw new UserError((e as Error).message, JOURNAL_HINT, e);
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const entries: JournalEntry[] = [];
  let torn = false;
  lines.forEach((line, i) => {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      if (i === lines.length - 1) torn = true;
      else
        throw new UserError(
          `journal ${file} line ${i + 1} is corrupt: ${(err as Error).message}`,
          JOURNAL_HINT,
        );
      return;
    }
    const r = entrySchema.safeParse(raw);
    if (!r.success)
      throw new UserError(
        `journal ${file} line ${i + 1} is not an entry netmap-provision writes: ${issueText(r.error)}`,
        JOURNAL_HINT,
      );
    entries.push(r.data as JournalEntry);
  });
  const open = entries[0];
  if (open?.status !== "open")
    throw new UserError(`journal ${file} has no opening entry`, "move it out of the journal directory");
  if (entries.slice(1).some((e) => e.status === "open"))
    throw new UserError(`journal ${file} has more than one opening entry`, JOURNAL_HINT);
  const steps = new Map<number, JournalStep>();
  let closed: JournalState["closed"];
  for (const e of entries.slice(1)) {
    if (e.status === "begin")
      steps.set(e.seq, { seq: e.seq, op: e.op, args: e.args, done: false, undone: false });
    else if (e.status === "done" || e.status === "undone") {
      const s = steps.get(e.seq);
      if (!s) continue;
      if (e.status === "done") {
        s.done = true;
        if (e.result !== undefined) s.result = e.result;
      } else s.undone = true;
    } else if (e.status === "commit" || e.status === "rolled-back") closed = e.status;
  }
  return {
    file,
    txid: open.txid,
    kind: open.kind,
    pid: open.pid,
    meta: open.meta ?? {},
    steps: [...steps.values()].sort((a, b) => a.seq - b.seq),
    closed,
    torn,
  };
}

/** All journals, oldest first (txids start with a UTC timestamp, so name order is time order). */
export function listJournals(stateDir: string): string[] {
  const dir = journalDir(stateDir);
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new UserError(`cannot read the journal directory ${dir}: ${(e as Error).message}`, JOURNAL_HINT, e);
  }
  if (!st.isDirectory())
    throw new UserError(
      `the journal directory ${dir} is ${fileKind(st)}, not a directory`,
      `netmap-provision keeps its journals there: move ${dir} aside and run \`netmap-provision status\``,
    );
  return readdirSync(dir)
    .filter((n) => n.endsWith(".jsonl"))
    .sort()
    .map((n) => join(dir, n));
}

/** The newest transaction that neither committed nor was rolled back, if any. */
export function pendingTransaction(stateDir: string): JournalState | undefined {
  const pending = listJournals(stateDir)
    .map(readJournal)
    .filter((j) => j.closed === undefined);
  return pending.at(-1);
}

export interface Transaction {
  readonly txid: string;
  readonly kind: TransactionKind;
  readonly file: string;
  readonly stateDir: string;
  readonly meta: Record<string, unknown>;
  /** Journal (and fsync) the intent to make a change; returns the step's seq. */
  begin(op: string, args: Record<string, unknown>): number;
  /** Journal that step `seq` finished. */
  done(seq: number, result?: unknown): void;
  /** Journal that step `seq` was undone. */
  undone(seq: number): void;
  /** begin, run `fn`, done: the usual way to make one change. */
  step<T>(op: string, args: Record<string, unknown>, fn: () => T | Promise<T>): Promise<T>;
  /** Seqs begun through this handle, in order. */
  readonly begun: readonly number[];
}

function appendLine(file: string, entry: JournalEntry): void {
  const fd = openSync(file, "a");
  try {
    writeSync(fd, `${JSON.stringify(entry)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function newTxid(kind: TransactionKind): string {
  const stamp = new Date().toISOString().replaceAll(/[-:]/g, "").replace(".", "");
  return `${stamp}-${kind}-${process.pid}`;
}

function transactionHandle(
  file: string,
  stateDir: string,
  head: { txid: string; kind: TransactionKind; meta: Record<string, unknown> },
  firstSeq: number,
): Transaction {
  let next = firstSeq;
  const begun: number[] = [];
  const stopAt = Number(process.env[stopAtStepEnv] ?? "0");
  const tx: Transaction = {
    ...head,
    file,
    stateDir,
    begun,
    begin(op, args) {
      const seq = next++;
      appendLine(file, { seq, status: "begin", op, args, at: new Date().toISOString() });
      begun.push(seq);
      if (stopAt > 0 && seq === stopAt) process.kill(process.pid, "SIGKILL");
      return seq;
    },
    done(seq, result) {
      const e: DoneEntry = { seq, status: "done", at: new Date().toISOString() };
      if (result !== undefined) e.result = result;
      appendLine(file, e);
    },
    undone(seq) {
      appendLine(file, { seq, status: "undone", at: new Date().toISOString() });
    },
    async step(op, args, fn) {
      const seq = tx.begin(op, args);
      const r = await fn();
      tx.done(seq);
      return r;
    },
  };
  return tx;
}

/**
 * Start a transaction. Refuses while another one is pending: that one must be recovered first
 * (`recoverPending`), or its undo information would be buried under a new journal.
 */
export function openTransaction(
  stateDir: string,
  kind: TransactionKind,
  meta: Record<string, unknown> = {},
): Transaction {
  const pending = pendingTransaction(stateDir);
  if (pending)
    throw new UserError(
      `an unfinished "${pending.kind}" transaction ${pending.txid} (pid ${pending.pid}) is in ${pending.file}`,
      "run `netmap-provision down` to undo it (or `up` to redo), then try again",
    );
  const dir = journalDir(stateDir);
  mkdirSync(dir, { recursive: true });
  let txid = newTxid(kind);
  // Two transactions in the same millisecond (tests) get a suffix rather than sharing a file.
  for (let n = 2; existsSync(join(dir, `${txid}.jsonl`)); n++) txid = `${newTxid(kind)}-${n}`;
  const file = join(dir, `${txid}.jsonl`);
  appendLine(file, {
    seq: 0,
    status: "open",
    txid,
    kind,
    pid: process.pid,
    at: new Date().toISOString(),
    meta,
  });
  fsyncDir(dir);
  return transactionHandle(file, stateDir, { txid, kind, meta }, 1);
}

/**
 * Re-open a pending journal to append to it (recovery marks steps undone). A torn last line is cut
 * off first so the next entry starts on a line of its own.
 */
export function resumeTransaction(state: JournalState, stateDir: string): Transaction {
  if (state.torn) {
    const text = readBoundedText(state.file, { what: "journal", maxBytes: MAX_JOURNAL_BYTES });
    truncateSync(state.file, Buffer.byteLength(text.slice(0, text.lastIndexOf("\n") + 1)));
  }
  const maxSeq = state.steps.reduce((m, s) => Math.max(m, s.seq), 0);
  return transactionHandle(state.file, stateDir, state, maxSeq + 1);
}

/** Mark the transaction finished for good: recovery will leave it alone. */
export function commit(tx: Transaction): void {
  appendLine(tx.file, { status: "commit", at: new Date().toISOString() });
}

/** Mark the transaction undone: every step it began has been reverted. */
export function markRolledBack(tx: Transaction): void {
  appendLine(tx.file, { status: "rolled-back", at: new Date().toISOString() });
}
