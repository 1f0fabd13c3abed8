import { existsSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { ForeignFileError } from "../core/errors.js";
import {
  fsyncDir,
  removeStrayTemp,
  sha256Bytes,
  sha256IfExists,
  writeFileAtomic,
} from "../state/atomic-file.js";
import { type InstalledRecord, installedPath, serializeInstalled } from "../state/installed.js";
import type { Transaction } from "../state/journal.js";
import type { UndoContext } from "../state/undo.js";
import { type BackupRef, backupFile, restoreFromBackup } from "./backup.js";

/**
 * Write a small file (modules-load.d entry, modprobe.d blacklist, installed.json) atomically, with
 * whatever was there backed up first (op "write-file" {path, sha256, previous?}).
 */
export async function writeFileJournaled(opts: {
  tx: Transaction;
  stateDir: string;
  kver: string;
  path: string;
  content: string | Uint8Array;
  mode?: number;
}): Promise<{ sha256: string; previous?: BackupRef }> {
  const sha256 = sha256Bytes(opts.content);
  const previous = existsSync(opts.path)
    ? await backupFile({ stateDir: opts.stateDir, kver: opts.kver, path: opts.path, tx: opts.tx })
    : undefined;
  const args: Record<string, unknown> = { path: opts.path, sha256 };
  if (previous) args.previous = previous;
  await opts.tx.step("write-file", args, () => writeFileAtomic(opts.path, opts.content, opts.mode ?? 0o644));
  return previous ? { sha256, previous } : { sha256 };
}

/** installed.json, written as part of the transaction (undoing it puts the previous record back). */
export async function writeInstalledJournaled(
  tx: Transaction,
  stateDir: string,
  kver: string,
  record: InstalledRecord,
): Promise<void> {
  await writeFileJournaled({
    tx,
    stateDir,
    kver,
    path: installedPath(stateDir),
    content: serializeInstalled(record),
  });
}

/** Undo of "write-file" (undo-table.ts): the previous content back from its backup, or the file removed. */
export function undoWriteFile(args: Record<string, unknown>, ctx: UndoContext): void {
  const path = String(args.path);
  const previous = args.previous as BackupRef | undefined;
  removeStrayTemp(path);
  const cur = sha256IfExists(path);
  if (cur === previous?.sha256) return; // never written, or already undone
  if (cur !== args.sha256 && !ctx.force)
    throw new ForeignFileError(
      path,
      `${path} was changed by something else after netmap-provision wrote it`,
      "look at it; rerun with --force to put the previous content back anyway",
    );
  if (previous) restoreFromBackup(previous, path);
  else {
    unlinkSync(path);
    fsyncDir(dirname(path));
  }
}
