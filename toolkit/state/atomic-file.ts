import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileKind, readBoundedFile } from "../core/bounded-read.js";
import { UserError } from "../core/errors.js";

/**
 * File primitives that never leave a half-written file at the final name: write a temp file in the
 * same directory, fsync it, rename it over the target, fsync the directory. A crash leaves either
 * the old bytes or the new ones (plus at worst a stray temp file that the undo handlers remove).
 */

export function sha256Bytes(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * sha256 of a regular file, read in chunks (initramfs images are large). The paths hashed come
 * from records (installed.json, journals): a FIFO or device there must not block or never end.
 */
export function sha256File(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      throw new UserError(
        `${path} is ${fileKind(st)}, not a regular file`,
        "netmap-provision only installs, backs up and restores regular files: look at what put it there",
      );
    const h = createHash("sha256");
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    return h.digest("hex");
  } finally {
    closeSync(fd);
  }
}

/** sha256 of a file, or undefined when it does not exist. */
export function sha256IfExists(path: string): string | undefined {
  return existsSync(path) ? sha256File(path) : undefined;
}

/** The temp name used next to `target`; deterministic per process so leftovers can be found. */
export function tempNameFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.netmap-provision-tmp`);
}

/** fsync a directory so a rename or unlink in it survives a power cut. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r+");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomic(target: string, data: Uint8Array | string, mode?: number): void {
  const tmp = tempNameFor(target);
  writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
  fsyncPath(tmp);
  renameSync(tmp, target);
  fsyncDir(dirname(target));
}

export function copyFileAtomic(src: string, target: string): void {
  const tmp = tempNameFor(target);
  copyFileSync(src, tmp);
  fsyncPath(tmp);
  renameSync(tmp, target);
  fsyncDir(dirname(target));
}

/** Remove the temp file a crash may have left next to `target`. */
export function removeStrayTemp(target: string): void {
  const tmp = tempNameFor(target);
  if (existsSync(tmp)) unlinkSync(tmp);
}

/**
 * A small JSON record the toolkit wrote (deadman.json, load.json), or undefined when it is absent
 * or unreadable: these records are hints, and a missing one only means "nothing to go on".
 */
export function readJsonRecord<T>(path: string): T | undefined {
  try {
    return JSON.parse(readBoundedFile(path, { what: "record", maxBytes: 1024 * 1024 }).toString("utf8")) as T;
  } catch {
    return undefined;
  }
}
