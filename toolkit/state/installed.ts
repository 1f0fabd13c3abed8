import { existsSync, readFileSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import type { BackupRef } from "../modules/backup.js";
import { fsyncDir, writeFileAtomic } from "./atomic-file.js";

/**
 * One module the toolkit has in place. Paths are host paths (no sysroot prefix): the record
 * describes the host, the sysroot is given to whoever reads it. Backup copies are real paths.
 */
export interface InstalledModule {
  module: string;
  /** Where the patched file is (host path). */
  path: string;
  sha256: string;
  /**
   * The stock file this one replaced, with its verified backup. Its `path` (host path) is where the
   * original comes back to: it may differ from `path` (stock e1000.ko.xz, patched e1000.ko).
   */
  replacedOriginal?: BackupRef & {
    /** Where the 2012 procedure's rename put it (`<stock>-bak`), when the replace strategy moved it. */
    movedAside?: string;
  };
  /** Host path modprobe resolved this name to before the install (what it must resolve to after restore). */
  shadowed?: string;
}

/** A non-module file the toolkit wrote (modules-load.d, modprobe.d...). */
export interface InstalledFile {
  path: string;
  sha256: string;
  /** What was there before (backup `path` is the host path). */
  previous?: BackupRef;
  /**
   * "initramfs": a generated image. When something else regenerated it since (a kernel update),
   * `down` regenerates it again with `regenerate` instead of refusing or overwriting it.
   */
  kind?: "initramfs";
  regenerate?: string[];
}

/** `<stateDir>/installed.json`: what the toolkit currently has in place on this host. */
export interface InstalledRecord {
  kernelRelease: string;
  strategy: "updates" | "replace";
  modules: InstalledModule[];
  files: InstalledFile[];
  /** Directories the install created (host paths), removed again when empty. */
  createdDirs: string[];
  installedAt: string;
  recipe?: string;
}

export const installedPath = (stateDir: string): string => join(stateDir, "installed.json");

export function readInstalled(stateDir: string): InstalledRecord | undefined {
  const p = installedPath(stateDir);
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as InstalledRecord) : undefined;
}

/** Written to a temp file and renamed: a crash leaves the old record or the new one. */
export function serializeInstalled(rec: InstalledRecord): string {
  return `${JSON.stringify(rec, null, 2)}\n`;
}

export function writeInstalled(stateDir: string, rec: InstalledRecord): void {
  writeFileAtomic(installedPath(stateDir), serializeInstalled(rec));
}

export function removeInstalled(stateDir: string): void {
  const p = installedPath(stateDir);
  if (existsSync(p)) {
    unlinkSync(p);
    fsyncDir(dirname(p));
  }
}
