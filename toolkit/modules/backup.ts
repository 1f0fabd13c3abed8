import { chmodSync, chownSync, existsSync, mkdirSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { StepError } from "../core/errors.js";
import { copyFileAtomic, readJsonRecord, sha256File, writeFileAtomic } from "../state/atomic-file.js";
import type { Transaction } from "../state/journal.js";

/**
 * A verified copy of a file taken before anything touches it, with everything needed to put back
 * the same bytes with the same metadata. Paths are real paths (already under any sysroot).
 */
export interface BackupRef {
  /** Where the file lived. */
  path: string;
  /** The copy: `<stateDir>/backups/<kver>/<sha256><ext>`. */
  backupPath: string;
  sha256: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  size: number;
}

/** Keep the module suffix (.ko, .ko.xz, .ko.zst, .ko.gz) so the copy is recognisable on disk. */
export function moduleSuffix(path: string): string {
  return /\.ko(\.xz|\.zst|\.gz)?$/.exec(path)?.[0] ?? "";
}

export const backupDir = (stateDir: string, kver: string): string => join(stateDir, "backups", kver);

/**
 * Back up `path` into the content-addressed store. Idempotent: when a verified copy with the same
 * sha256 is already there it is reused (only the metadata is refreshed). The copy is journaled
 * (op "backup") when a transaction is given, and its sha256 is checked after writing.
 */
export async function backupFile(opts: {
  stateDir: string;
  kver: string;
  path: string;
  tx?: Transaction;
}): Promise<BackupRef> {
  const st = statSync(opts.path);
  const sha256 = sha256File(opts.path);
  const dir = backupDir(opts.stateDir, opts.kver);
  const backupPath = join(dir, `${sha256}${moduleSuffix(opts.path)}`);
  const ref: BackupRef = {
    path: opts.path,
    backupPath,
    sha256,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtimeMs: st.mtimeMs,
    size: st.size,
  };
  if (existsSync(backupPath) && sha256File(backupPath) === sha256) {
    writeMeta(ref);
    return ref;
  }
  const copy = () => {
    mkdirSync(dir, { recursive: true });
    copyFileAtomic(opts.path, backupPath);
    const got = sha256File(backupPath);
    if (got !== sha256)
      throw new StepError(
        "backup",
        `the backup of ${opts.path} does not match the original (sha256 ${got} != ${sha256})`,
        `check the disk holding ${dir}; nothing was changed on the host`,
      );
    writeMeta(ref);
  };
  if (opts.tx) await opts.tx.step("backup", { ...ref }, copy);
  else copy();
  return ref;
}

/** Metadata next to the copy (`<copy>.json`), so a backup is understandable without the journal. */
function writeMeta(ref: BackupRef): void {
  writeFileAtomic(
    `${ref.backupPath}.json`,
    `${JSON.stringify({ ...ref, recordedAt: new Date().toISOString() }, null, 2)}\n`,
  );
}

export function readBackupMeta(backupPath: string): BackupRef | undefined {
  const meta = `${backupPath}.json`;
  return readJsonRecord<BackupRef>(meta);
}

/**
 * Put the backed-up bytes back at `dest` (default: where they came from) with the recorded mode,
 * owner and mtime, and prove it by sha256.
 */
export function restoreFromBackup(ref: BackupRef, dest: string = ref.path): void {
  if (!existsSync(ref.backupPath))
    throw new StepError(
      "restore",
      `the backup ${ref.backupPath} of ${ref.path} is missing`,
      "restore it from another copy of the same kernel package",
    );
  if (sha256File(ref.backupPath) !== ref.sha256)
    throw new StepError(
      "restore",
      `the backup ${ref.backupPath} is damaged (sha256 differs from ${ref.sha256})`,
      "reinstall the kernel package to get the original module back",
    );
  copyFileAtomic(ref.backupPath, dest);
  applyMetadata(ref, dest);
  const got = sha256File(dest);
  if (got !== ref.sha256)
    throw new StepError(
      "restore",
      `restored ${dest} but its sha256 is ${got}, expected ${ref.sha256}`,
      "check the filesystem",
    );
}

/** Mode, owner (when we may) and mtime as recorded. */
export function applyMetadata(ref: BackupRef, dest: string): void {
  chmodSync(dest, ref.mode);
  try {
    chownSync(dest, ref.uid, ref.gid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") throw err;
  }
  utimesSync(dest, new Date(), new Date(ref.mtimeMs));
}

/**
 * Undo of "backup" (undo-table.ts): nothing. Backups are content-addressed copies outside the module
 * tree: leaving one behind is harmless and an older installed.json may still point at it.
 */
export function undoBackup(): void {}
