import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { gunzipSync } from "node:zlib";
import { UserError } from "./errors.js";

/**
 * Every file the toolkit reads comes from outside (recipes, catalogs, state, host trees, bundles),
 * so it is read here: only a regular file, with a size cap. The fd is opened with O_NONBLOCK so a
 * FIFO can neither block the open nor the read, and the type is checked with fstat on that fd (no
 * race with a rename between a stat and the open). /proc and /sys files are regular files that
 * report size 0, so the cap is enforced by reading at most maxBytes+1 bytes, not by st.size alone.
 */
export interface BoundedReadOptions {
  /** What the file is, for messages: "recipe", "installed.json", "host file"... */
  what: string;
  maxBytes: number;
  /** What to do when it is refused (default: a generic "pass a regular file" hint). */
  hint?: string;
}

/** How a non-regular file is named in messages. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  if (st.isSymbolicLink()) return "a symbolic link";
  return st.isFile() ? "a regular file" : "not a regular file";
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function humanSize(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${Math.ceil(n / 1024)} KiB`;
  return `${n} bytes`;
}

function openError(path: string, o: BoundedReadOptions, e: unknown): UserError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return new UserError(`${o.what} ${path} not found`, o.hint ?? "check the path", e);
  // Opening a socket gives ENXIO; a directory can be opened read-only and is caught by fstat.
  if (code === "ENXIO")
    return new UserError(
      `${o.what} ${path} is a socket or device, not a regular file`,
      o.hint ?? "pass a regular file",
    );
  return new UserError(
    `cannot read ${o.what} ${path}: ${(e as Error).message}`,
    o.hint ?? "check that the file exists and is readable",
    e,
  );
}

/** The bytes of a regular file of at most o.maxBytes; anything else is a UserError (exit 2). */
export function readBoundedFile(path: string, o: BoundedReadOptions): Buffer {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw openError(path, o, e);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      throw new UserError(
        `${o.what} ${path} is ${fileKind(st)}, not a regular file`,
        o.hint ?? "pass a regular file",
      );
    const tooBig = (size: number) =>
      new UserError(
        `${o.what} ${path} is ${size > o.maxBytes ? `over ${humanSize(o.maxBytes)}` : humanSize(size)}; the limit is ${humanSize(o.maxBytes)}`,
        o.hint ?? `a ${o.what} is never that large: check that this is the right file`,
      );
    // Refuse before reading when the size is known: nothing large is ever read into memory.
    if (st.size > o.maxBytes) throw tooBig(st.size);
    const chunks: Buffer[] = [];
    let total = 0;
    const limit = o.maxBytes + 1;
    while (total < limit) {
      const buf = Buffer.allocUnsafe(Math.min(64 * 1024, limit - total));
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EAGAIN")
          throw new UserError(
            `${o.what} ${path} is not ready to read (it would block)`,
            o.hint ?? "pass a regular file",
          );
        throw openError(path, o, e);
      }
      if (n === 0) break;
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
      total += n;
    }
    if (total > o.maxBytes) throw tooBig(total);
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** readBoundedFile decoded as UTF-8. */
export function readBoundedText(path: string, o: BoundedReadOptions): string {
  return readBoundedFile(path, o).toString("utf8");
}

/** readBoundedFile, or undefined when the file does not exist (any other problem still throws). */
export function readBoundedFileIfExists(path: string, o: BoundedReadOptions): Buffer | undefined {
  try {
    return readBoundedFile(path, o);
  } catch (e) {
    if (e instanceof UserError && (e.cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT")
      return undefined;
    throw e;
  }
}

/** readBoundedText, or undefined when the file does not exist. */
export function readBoundedTextIfExists(path: string, o: BoundedReadOptions): string | undefined {
  return readBoundedFileIfExists(path, o)?.toString("utf8");
}

/**
 * Gunzip with an output cap: zlib stops as soon as the output passes maxOut, so a gzip bomb costs
 * at most maxOut bytes of memory, never the size it claims. `what` names the data in messages.
 */
export function gunzipBounded(buf: Buffer, maxOut: number, what: string): Buffer {
  try {
    return gunzipSync(buf, { maxOutputLength: maxOut });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ERR_BUFFER_TOO_LARGE" || e instanceof RangeError)
      throw new UserError(
        `${what} decompresses to more than ${humanSize(maxOut)}`,
        "this is not the file it claims to be (a gzip bomb?): replace it with the real one",
      );
    throw new UserError(
      `${what} is not valid gzip data: ${(e as Error).message}`,
      "replace it with the real file",
      e,
    );
  }
}
