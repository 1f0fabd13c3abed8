import { UserError } from "../core/errors.js";
import { undoBackup } from "../modules/backup.js";
import { depmodArgv, undoDepmod } from "../modules/depmod.js";
import { undoInstall, undoMkdir, undoMoveAside } from "../modules/file-ops.js";
import { undoRegenerateInitramfs } from "../modules/persist.js";
import { undoWriteFile } from "../modules/write-file.js";
import { undoLoad, undoUnload } from "../swap/module-ops.js";
import type { JournalState, TransactionKind } from "./journal.js";
import type { UndoHandler } from "./undo.js";

/**
 * The undo table: every op an `up` journal may hold, the handler that undoes it, and what that
 * undo does to which files (the advice printed when an undo fails). Every replay of a journal
 * (down, up's recovery of an interrupted transaction, a failed install, a failed up's rollback)
 * goes through undoSteps (undo.ts), which looks ops up here and nowhere else: there is no
 * registration when a module is imported, so what a process can undo does not depend on what it
 * happened to import.
 *
 * A `down` journal is never undone: an interrupted down is finished by running the restore again
 * from installed.json (idempotent), so its ops are only listed, for the check that a journal names
 * nothing netmap-provision never journals.
 */
export interface UndoEntry {
  undo: UndoHandler;
  /** The files (real paths) the step may have changed, or that its undo reads. */
  files(args: Record<string, unknown>): string[];
  /** What undoing the step does, in a few words (advice when an undo fails). */
  does(args: Record<string, unknown>): string;
}

interface BackupArgs {
  path?: unknown;
  backupPath?: unknown;
  sha256?: unknown;
}
const str = (v: unknown): string => String(v);
const backupOf = (v: unknown): BackupArgs | undefined =>
  typeof v === "object" && v !== null ? (v as BackupArgs) : undefined;
const short = (sha: unknown): string => (typeof sha === "string" ? sha.slice(0, 12) : "?");
const putBack = (b: BackupArgs, at: unknown): string =>
  `put the backup ${str(b.backupPath)} (sha256 ${short(b.sha256)}…) back at ${str(at)}`;
const present = (...paths: unknown[]): string[] =>
  paths.filter((p): p is string => typeof p === "string" && p.length > 0);

export const undoTable = {
  mkdir: {
    undo: undoMkdir,
    files: (a) => present(a.path),
    does: (a) => `remove the directory ${str(a.path)} if it is empty`,
  },
  backup: {
    undo: undoBackup,
    files: (a) => present(a.backupPath),
    does: (a) => `nothing (the backup ${str(a.backupPath)} is kept)`,
  },
  install: {
    undo: undoInstall,
    files: (a) => present(a.dest, backupOf(a.replaced)?.backupPath),
    does: (a) => {
      const r = backupOf(a.replaced);
      return r ? putBack(r, a.dest) : `remove ${str(a.dest)}`;
    },
  },
  "move-aside": {
    undo: undoMoveAside,
    files: (a) => present(a.path, a.to),
    does: (a) => `rename ${str(a.to)} back to ${str(a.path)}`,
  },
  "write-file": {
    undo: undoWriteFile,
    files: (a) => present(a.path, backupOf(a.previous)?.backupPath),
    does: (a) => {
      const p = backupOf(a.previous);
      return p ? putBack(p, a.path) : `remove ${str(a.path)}`;
    },
  },
  "regenerate-initramfs": {
    undo: undoRegenerateInitramfs,
    files: (a) => present(a.path, backupOf(a.previous)?.backupPath),
    does: (a) => putBack(backupOf(a.previous) ?? {}, a.path),
  },
  depmod: {
    undo: undoDepmod,
    files: () => [],
    does: (a) => `run \`${depmodArgv(str(a.root), str(a.kver)).join(" ")}\` again once the files are back`,
  },
  load: {
    undo: undoLoad,
    files: () => [],
    does: (a) => `rmmod ${str(a.module)} if it is loaded`,
  },
  unload: {
    undo: undoUnload,
    files: () => [],
    does: (a) => {
      const ifs = Array.isArray(a.interfaces)
        ? a.interfaces.map((i: { ifname?: unknown }) => str(i?.ifname)).join(", ")
        : "";
      return `depmod, then modprobe ${str(a.module)} (the stock module, once its file is back)${ifs ? ` and put back the addresses and routes of ${ifs}` : ""}`;
    },
  },
} satisfies Record<string, UndoEntry>;

export type UndoOp = keyof typeof undoTable;

/** The ops a `down` journals; never undone (see above). */
export const downOps: ReadonlySet<string> = new Set([
  "remove",
  "put-back",
  "rmdir",
  "depmod",
  "regenerate-initramfs-again",
  "forget-install",
]);

export const isUndoOp = (op: string): op is UndoOp => Object.hasOwn(undoTable, op);

/** The entry for `op` (undefined for an op no up journals). */
export const undoEntryFor = (op: string): UndoEntry | undefined => (isUndoOp(op) ? undoTable[op] : undefined);

/** Whether a transaction of `kind` journals `op`. */
export const journalsOp = (kind: TransactionKind, op: string): boolean =>
  kind === "up" ? isUndoOp(op) : downOps.has(op);

/**
 * Refuse (exit 2: a journal is input read back from disk) a journal naming an op its kind of
 * transaction never journals, before any of it is undone or finished: an op with no undo must not
 * be skipped, nor guessed at.
 */
export function checkJournalOps(j: JournalState): void {
  const unknown = j.steps.filter((s) => !journalsOp(j.kind, s.op));
  if (unknown.length === 0) return;
  throw new UserError(
    `the journal ${j.file} holds ${unknown
      .map((s) => `op "${s.op}" (step #${s.seq})`)
      .join(
        ", ",
      )}, which netmap-provision never journals in ${j.kind === "up" ? "an" : "a"} "${j.kind}" transaction, so nothing in it is undone`,
    `inspect ${j.file} by hand; move it out of the journal directory once the host is checked`,
  );
}
