import { accessSync, constants, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { isAbsolute, posix } from "node:path";
import { underRoot } from "../core/paths.js";

/**
 * Read-only file access to a host seen through a root prefix ("/" for the real host, a fixture
 * tree in tests). Every function takes and returns *host* paths; missing or unreadable files give
 * null/false instead of throwing, because host facts must degrade, not crash.
 */

/** The text of a host file, or null when it is missing or unreadable. */
export function readHostText(root: string, hostPath: string): string | null {
  try {
    return readFileSync(underRoot(root, hostPath), "utf8");
  } catch {
    return null;
  }
}

/** The bytes of a host file, or null when it is missing or unreadable. */
export function readHostBytes(root: string, hostPath: string): Buffer | null {
  try {
    return readFileSync(underRoot(root, hostPath));
  } catch {
    return null;
  }
}

/** The first line of a host file, trimmed (sysfs attributes), or null. */
export function readHostLine(root: string, hostPath: string): string | null {
  const t = readHostText(root, hostPath);
  return t === null ? null : (t.split("\n")[0] ?? "").trim();
}

export function hostExists(root: string, hostPath: string): boolean {
  try {
    statSync(underRoot(root, hostPath));
    return true;
  } catch {
    return false;
  }
}

/** True when the path exists as a symlink, even a dangling one. */
export function hostIsLink(root: string, hostPath: string): boolean {
  try {
    return lstatSync(underRoot(root, hostPath)).isSymbolicLink();
  } catch {
    return false;
  }
}

export function hostIsDir(root: string, hostPath: string): boolean {
  try {
    return statSync(underRoot(root, hostPath)).isDirectory();
  } catch {
    return false;
  }
}

/** An executable regular file (tool lookup on PATH). */
export function hostIsExecutable(root: string, hostPath: string): boolean {
  const p = underRoot(root, hostPath);
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
  try {
    return readdirSync(underRoot(root, hostPath)).sort();
  } catch {
    return [];
  }
}

/** The raw target of a symlink, or null when the path is not a symlink. */
export function readHostLink(root: string, hostPath: string): string | null {
  try {
    return readlinkSync(underRoot(root, hostPath));
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
