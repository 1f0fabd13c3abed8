import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { ForeignFileError, StepError } from "../core/errors.js";
import {
  copyFileAtomic,
  fsyncDir,
  removeStrayTemp,
  sha256File,
  sha256IfExists,
} from "../state/atomic-file.js";
import type { Transaction } from "../state/journal.js";
import type { UndoContext } from "../state/undo.js";
import { type BackupRef, restoreFromBackup } from "./backup.js";

/**
 * Journaled changes to the module tree, each with an undo that looks at what is actually on disk
 * (so undoing a step that never happened, or happened twice, is harmless). Paths are real paths.
 */

function foreign(path: string, what: string): ForeignFileError {
  return new ForeignFileError(
    path,
    `${path} holds neither ${what}: something else changed it since`,
    "look at the file; rerun with --force to overwrite it with the original anyway",
  );
}

/** Create `dir` and any missing parents, journaling each directory created (op "mkdir"). */
export async function makeDirs(tx: Transaction, dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) missing.unshift(d);
  for (const d of missing) await tx.step("mkdir", { path: d }, () => mkdirSync(d));
  return missing;
}

/** Remove a directory if it exists and is empty; say so when it is not. */
export function removeDirIfEmpty(path: string, warn?: (m: string) => void): void {
  if (!existsSync(path)) return;
  if (readdirSync(path).length > 0) {
    warn?.(`left ${path} in place: it is not empty`);
    return;
  }
  rmdirSync(path);
}

/** Undo of "mkdir" (undo-table.ts): remove the directory if it is still there and empty. */
export function undoMkdir(args: Record<string, unknown>, ctx: UndoContext): void {
  removeDirIfEmpty(String(args.path), ctx.warn);
}

/**
 * Put `src` at `dest` (temp + rename, mode 0644) and verify it (op "install"). `replaced` is the
 * backup of whatever was at `dest` before, which the undo puts back.
 */
export async function installFile(
  tx: Transaction,
  a: { src: string; dest: string; sha256: string; replaced?: BackupRef },
): Promise<void> {
  const args: Record<string, unknown> = { src: a.src, dest: a.dest, sha256: a.sha256 };
  if (a.replaced) args.replaced = a.replaced;
  await tx.step("install", args, () => {
    copyFileAtomic(a.src, a.dest);
    chmodSync(a.dest, 0o644);
    const got = sha256File(a.dest);
    if (got !== a.sha256)
      throw new StepError(
        "install",
        `${a.dest} has sha256 ${got} after copying, expected ${a.sha256}`,
        "check the disk",
      );
  });
}

/** Undo of "install" (undo-table.ts): the replaced file back from its backup, or the new one removed. */
export function undoInstall(args: Record<string, unknown>, ctx: UndoContext): void {
  const dest = String(args.dest);
  const replaced = args.replaced as BackupRef | undefined;
  removeStrayTemp(dest);
  const cur = sha256IfExists(dest);
  if (replaced && cur === replaced.sha256) return; // never installed, or already undone
  if (!replaced && cur === undefined) return;
  if (cur !== undefined && cur !== args.sha256 && !ctx.force)
    throw foreign(dest, replaced ? "the installed file nor the one it replaced" : "the installed file");
  if (replaced) restoreFromBackup(replaced, dest);
  else {
    unlinkSync(dest);
    fsyncDir(dirname(dest));
  }
}

/**
 * Rename `path` to `to` (op "move-aside"), as the 2012 procedure did with e1000.ko -> e1000.ko-bak
 * so the stock module is no longer found. Refuses when `to` exists: that is someone's earlier copy.
 */
export async function moveAside(tx: Transaction, path: string, to: string): Promise<void> {
  if (existsSync(to))
    throw new StepError(
      "move-aside",
      `${to} already exists, so ${path} cannot be moved aside to it`,
      `a previous manual install probably left it: compare it with ${path} and remove one of them`,
    );
  await tx.step("move-aside", { path, to }, () => {
    renameSync(path, to);
    fsyncDir(dirname(path));
  });
}

/** Undo of "move-aside" (undo-table.ts): the very same file renamed back. */
export function undoMoveAside(args: Record<string, unknown>, ctx: UndoContext): void {
  const path = String(args.path);
  const to = String(args.to);
  if (!existsSync(to)) return; // never moved, or already moved back
  if (existsSync(path)) {
    if (sha256File(path) === sha256File(to)) {
      unlinkSync(to);
      return;
    }
    if (!ctx.force) throw foreign(path, `the file moved aside to ${to}`);
  }
  renameSync(to, path);
  fsyncDir(dirname(path));
}
