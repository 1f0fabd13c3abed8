import { accessSync, constants, lstatSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { isAbsolute, posix } from "node:path";
import { readBoundedFile } from "../core/bounded-read.js";
import { UserError } from "../core/errors.js";
import { underRoot } from "../core/paths.js";

/**
 * Read-only file access to a host seen through a root prefix ("/" for the real host, a fixture
 * tree in tests). Every function takes and returns *host* paths; missing or unreadable files give
 * null/false instead of throwing, because host facts must degrade, not crash.
 *
 * Host files are outside input: a path with a `..` part (built from a value read on the host,
 * such as an osrelease of `../../../../etc`) is never followed out of the root, and every read is
 * of a regular file with a size cap (a FIFO or /dev/zero planted in a host tree cannot block or
 * exhaust a command).
 */

/** Host files the toolkit reads are small (sysfs attributes, /proc, configs, modules.dep). */
export const MAX_HOST_FILE_BYTES = 16 * 1024 * 1024;

/** The real path of a host path, or null when the path could leave the root (a `..` part, a NUL). */
export function hostReal(root: string, hostPath: string): string | null {
  if (hostPath.includes("\0") || hostPath.split("/").includes("..")) return null;
  return underRoot(root, hostPath);
}

/** The bytes of a host file, or why it could not be read (missing, not a regular file, too large). */
export function readHostFile(
  root: string,
  hostPath: string,
  maxBytes: number = MAX_HOST_FILE_BYTES,
): { bytes: Buffer } | { problem: string; missing: boolean } {
  const real = hostReal(root, hostPath);
  if (real === null) return { problem: `${hostPath}: a path with ".." is not read`, missing: false };
  try {
    return { bytes: readBoundedFile(real, { what: "host file", maxBytes }) };
  } catch (e) {
    const code = ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    const missing = code === "ENOENT" || code === "ENOTDIR";
    // Named by its host path: that is the file the user can look at in the host tree.
    return { problem: e instanceof UserError ? e.message.replace(real, hostPath) : String(e), missing };
  }
}

/** The text of a host file, or null when it is missing or unreadable. */
export function readHostText(root: string, hostPath: string, maxBytes?: number): string | null {
  const r = readHostFile(root, hostPath, maxBytes);
  return "bytes" in r ? r.bytes.toString("utf8") : null;
}

/** The bytes of a host file, or null when it is missing or unreadable. */
export function readHostBytes(root: string, hostPath: string, maxBytes?: number): Buffer | null {
  const r = readHostFile(root, hostPath, maxBytes);
  return "bytes" in r ? r.bytes : null;
}

/** The first line of a host file, trimmed (sysfs attributes), or null. */
export function readHostLine(root: string, hostPath: string): string | null {
  const t = readHostText(root, hostPath);
  return t === null ? null : (t.split("\n")[0] ?? "").trim();
}

export function hostExists(root: string, hostPath: string): boolean {
  const real = hostReal(root, hostPath);
  if (real === null) return false;
  try {
    statSync(real);
    return true;
  } catch {
    return false;
  }
}

/** True when the path exists as a symlink, even a dangling one. */
export function hostIsLink(root: string, hostPath: string): boolean {
  const real = hostReal(root, hostPath);
  if (real === null) return false;
  try {
    return lstatSync(real).isSymbolicLink();
  } catch {
    return false;
  }
}

export function hostIsDir(root: string, hostPath: string): boolean {
  const real = hostReal(root, hostPath);
  if (real === null) return false;
  try {
    return statSync(real).isDirectory();
  } catch {
    return false;
  }
}

/** An executable regular file (tool lookup on PATH). */
export function hostIsExecutable(root: string, hostPath: string): boolean {
  const p = hostReal(root, hostPath);
  if (p === null) return false;
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Directory entries (names), or [] when the directory is missing. */
export function listHostDir(root: string, hostPath: string): string[] {
  const real = hostReal(root, hostPath);
  if (real === null) return [];
  try {
    return readdirSync(real).sort();
  } catch {
    return [];
  }
}

/** The raw target of a symlink, or null when the path is not a symlink. */
export function readHostLink(root: string, hostPath: string): string | null {
  const real = hostReal(root, hostPath);
  if (real === null) return null;
  try {
    return readlinkSync(real);
  } catch {
    return null;
  }
}

/**
 * Resolve symlinks in a host path without leaving the root: an absolute link target such as
 * /lib/modules/<kver>/build -> /usr/src/linux-headers-<kver> must land inside the fixture tree,
 * which realpath() under a prefix would not do. Returns the resolved host path, or null for a
 * dangling link or a loop.
 */
export function resolveHostPath(root: string, hostPath: string): string | null {
  const parts = posix.normalize(hostPath).split("/").filter(Boolean);
  let resolved = "/";
  let hops = 0;
  while (parts.length > 0) {
    const part = parts.shift() as string;
    if (part === "..") {
      resolved = posix.dirname(resolved);
      continue;
    }
    const candidate = posix.join(resolved, part);
    const target = readHostLink(root, candidate);
    if (target === null) {
      if (!hostExists(root, candidate)) return null;
      resolved = candidate;
      continue;
    }
    if (++hops > 40) return null;
    // Re-walk the link target, then the rest of the original path.
    parts.unshift(...target.split("/").filter(Boolean));
    resolved = isAbsolute(target) ? "/" : resolved;
  }
  return resolved;
}

/** Host path of the directory holding a path (posix semantics, independent of the root). */
export const hostDirname = (hostPath: string): string => posix.dirname(hostPath);

/** Join host path parts (posix). */
export const hostJoin = (...parts: string[]): string => posix.join(...parts);
