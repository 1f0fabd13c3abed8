import { existsSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { isKernelRelease } from "../host/release-name.js";
import type { BackupRef } from "../modules/backup.js";
import { fsyncDir, writeFileAtomic } from "./atomic-file.js";
import { installedPathProblems } from "./installed-policy.js";
import { readStateJson, StateFileError } from "./state-file.js";

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
  /**
   * Which of `modules` is netmap itself ("netmap", "netmap_lin" for the legacy layout): `down`
   * unloads it after the drivers and never reloads it as a stock driver. Absent in records written
   * before it existed, which only ever held netmap.ko.
   */
  netmapModule?: string;
  modules: InstalledModule[];
  files: InstalledFile[];
  /** Directories the install created (host paths), removed again when empty. */
  createdDirs: string[];
  installedAt: string;
  recipe?: string;
}

export const installedPath = (stateDir: string): string => join(stateDir, "installed.json");

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected a sha256 (64 lowercase hex digits)");
/** An absolute, normalized path: no `..`, no `.`, no `//`, no NUL (where it points is installed-policy.ts). */
const absPath = z
  .string()
  .max(4096)
  .refine(
    (p) =>
      p.startsWith("/") &&
      !p.includes("\0") &&
      !p.split("/").some((seg, i) => seg === ".." || seg === "." || (seg === "" && i > 0)),
    "expected an absolute path without `..`, `.` or `//`",
  );
const backupRef = z.object({
  path: absPath,
  backupPath: absPath,
  sha256,
  mode: z.number().int().min(0).max(0o7777),
  uid: z.number().int().min(0),
  gid: z.number().int().min(0),
  mtimeMs: z.number().finite(),
  size: z.number().int().min(0),
});
const installedModule = z.object({
  module: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "expected a module name"),
  path: absPath,
  sha256,
  replacedOriginal: backupRef.extend({ movedAside: absPath.optional() }).optional(),
  shadowed: absPath.optional(),
});
const installedFile = z.object({
  path: absPath,
  sha256,
  previous: backupRef.optional(),
  kind: z.literal("initramfs").optional(),
  regenerate: z.array(z.string().max(4096)).max(16).optional(),
});
/** What installed.json must look like: anything else was damaged or forged. */
export const installedSchema = z.object({
  kernelRelease: z.string().refine(isKernelRelease, "expected a kernel release such as 6.1.0-56-amd64"),
  strategy: z.enum(["updates", "replace"]),
  netmapModule: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, "expected a module name")
    .optional(),
  modules: z.array(installedModule).max(512),
  files: z.array(installedFile).max(64),
  createdDirs: z.array(absPath).max(512),
  installedAt: z.string().max(64),
  recipe: z.string().max(4096).optional(),
});
// The schema and the interfaces describe the same record (a compile-time check).
const _sameShape: z.ZodType<InstalledRecord> = installedSchema;
void _sameShape;

export const installedHint = (stateDir: string): string =>
  `${installedPath(stateDir)} records what netmap-provision changed on this host, so down cannot work without it: restore it from a copy if you have one; otherwise move it aside (keep it), check the modules it names by hand (the originals are in ${join(stateDir, "backups")}) and run \`netmap-provision status\``;

/**
 * The record, or undefined when there is none. Every reader (up, down, status) goes through here:
 * a record that is not a regular file, too large, not JSON, of another shape, or naming a path
 * outside the trees netmap-provision installs into is a StateFileError (exit 2) naming the file.
 */
export function readInstalled(stateDir: string): InstalledRecord | undefined {
  const p = installedPath(stateDir);
  const hint = installedHint(stateDir);
  const rec = readStateJson(p, installedSchema, { hint });
  if (rec === undefined) return undefined;
  const problems = installedPathProblems(rec, stateDir);
  if (problems.length > 0)
    throw new StateFileError(
      p,
      `it names paths netmap-provision never installs to, so nothing in it is used:\n  ${problems.join("\n  ")}`,
      hint,
    );
  return rec;
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
