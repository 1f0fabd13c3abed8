import {
  closeSync,
  constants,
  createReadStream,
  fstatSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  rmSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { createGunzip } from "node:zlib";
import { BlockedError, StepError, UserError } from "./errors.js";
import type { Exec } from "./exec.js";
import { escapeControl } from "./terminal-text.js";

/**
 * Every archive the toolkit reads (build bundles, sources bundles, netmap and kernel source
 * tarballs) comes from outside and is unpacked by root, so it goes through here. The tar headers
 * are read first, in this module, from the decompressed stream (ustar, GNU long names, pax), and
 * the archive is refused before anything is extracted when a member could land outside the
 * destination or would be something no source tree holds: an absolute path or a `..` segment, a
 * symlink leaving the tree, a hardlink to anything but an earlier regular member, a device, FIFO,
 * setuid/setgid/sticky bit, a sparse or unknown member, or more bytes or members than the caller
 * allows. Decompression is capped (a gzip bomb stops after the cap, not at its claimed size).
 * Only then GNU tar extracts (argv, --force-local, no owners, no permissions bits from the
 * archive) into a fresh private dir, and the tree is walked once more. Any failure removes it.
 */

export interface ArchiveLimits {
  /** Total size of the regular members. */
  maxBytes: number;
  maxMembers: number;
  /**
   * Refuse when the data decompresses to more than this many times the file's size (and past
   * 32 MiB): source trees compress 4-10:1, a bomb of zeros 1000:1.
   */
  maxRatio?: number;
}

export interface ArchiveContext {
  /** What the archive is, for messages ("build bundle", "kernel source tarball"). */
  what: string;
  /** What to do when it is refused. */
  hint: string;
  limits: ArchiveLimits;
  /** Strip this many leading components (tar --strip-components), checked as tar applies it. */
  stripComponents?: number;
  /** Symlink and hardlink members (default allowed, confined to the tree). */
  allowLinks?: boolean;
}

export type MemberKind = "file" | "dir" | "symlink" | "hardlink";

export interface ArchiveMember {
  /** Normalised relative path as it lands in the destination (after stripping). */
  path: string;
  kind: MemberKind;
  size: number;
  mode: number;
  /** Symlink target (as written) or hardlink target (a member path). */
  target?: string;
}

export interface ArchiveListing {
  file: string;
  compression: Compression;
  members: ArchiveMember[];
  totalBytes: number;
}

export type Compression = "gzip" | "xz" | "zstd" | "bzip2" | "none";

const MiB = 1024 * 1024;
const RATIO_FLOOR = 32 * MiB;
const DEFAULT_RATIO = 100;
/** A GNU long name/link or a pax header is never larger than this. */
const MAX_META = 64 * 1024;

/** A member name for messages: the bytes as UTF-8, control characters shown escaped. */
function shown(raw: string): string {
  return escapeControl(Buffer.from(raw, "latin1").toString("utf8"));
}

function humanSize(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${n} bytes`;
}

class Refused extends UserError {}

function refuse(file: string, c: ArchiveContext, what: string): UserError {
  return new Refused(`${c.what} ${file}: ${what}; nothing was extracted`, c.hint);
}

/** Open the archive as a regular file (a FIFO or device would block or never end). */
function openArchive(file: string, c: ArchiveContext): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UserError(`${c.what} ${file} does not exist`, c.hint);
    throw new UserError(`cannot read ${c.what} ${file}: ${(e as Error).message}`, c.hint, e);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new UserError(`${c.what} ${file} is not a regular file`, c.hint);
  }
  return { fd, size: st.size };
}

export function detectCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return "xz";
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return "zstd";
  if (head.subarray(0, 3).toString("latin1") === "BZh") return "bzip2";
  return "none";
}

/**
 * The compression `plan` names for an archive that may not be here yet: the file's magic when it
 * can be read (as the unpack detects it), else its name (a download not fetched yet).
 */
export function compressionOf(file: string): Compression {
  try {
    const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    try {
      if (fstatSync(fd).isFile()) {
        const head = Buffer.alloc(6);
        readSync(fd, head, 0, 6, 0);
        return detectCompression(head);
      }
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not here yet: judged by its name below.
  }
  if (/\.(tgz|tar\.gz|gz)$/.test(file)) return "gzip";
  if (/\.(txz|tar\.xz|xz)$/.test(file)) return "xz";
  if (/\.(tar\.zst|zst)$/.test(file)) return "zstd";
  if (/\.(tbz2?|tar\.bz2|bz2)$/.test(file)) return "bzip2";
  return "none";
}

const TOOLS: Record<Exclude<Compression, "gzip" | "none">, { bin: string; pkg: string; tarFlag: string }> = {
  xz: { bin: "xz", pkg: "xz-utils", tarFlag: "--xz" },
  zstd: { bin: "zstd", pkg: "zstd", tarFlag: "--zstd" },
  bzip2: { bin: "bzip2", pkg: "bzip2", tarFlag: "--bzip2" },
};

/** The decompressed bytes, counted against the caps; close() ends the reader early. */
interface ByteStream {
  chunks: AsyncIterator<Buffer>;
  close(): void;
  /** After the stream ended: why the decompressor failed, if it did. */
  failure(): Promise<string | undefined>;
}

async function decompressed(fd: number, compression: Compression): Promise<ByteStream> {
  if (compression === "gzip" || compression === "none") {
    const rs = createReadStream("", { fd, start: 0, autoClose: true, highWaterMark: 256 * 1024 });
    if (compression === "none") {
      return {
        chunks: rs[Symbol.asyncIterator](),
        close: () => rs.destroy(),
        failure: async () => undefined,
      };
    }
    const gz = createGunzip({ chunkSize: 256 * 1024 });
    rs.on("error", (e) => gz.destroy(e));
    rs.pipe(gz);
    return {
      chunks: gz[Symbol.asyncIterator](),
      close: () => {
        rs.destroy();
        gz.destroy();
      },
      failure: async () => undefined,
    };
  }
  const tool = TOOLS[compression];
  const { execa } = await import("execa");
  // stdin is read from the opened fd: the file checked above is the file decompressed.
  const input = createReadStream("", { fd, start: 0, autoClose: true, highWaterMark: 256 * 1024 });
  const child = execa(tool.bin, ["-dc"], {
    stdin: input,
    stdout: "pipe",
    stderr: "pipe",
    buffer: { stdout: false, stderr: true },
    reject: false,
  });
  let closed = false;
  return {
    chunks: (child.stdout as NodeJS.ReadableStream)[Symbol.asyncIterator]() as AsyncIterator<Buffer>,
    close: () => {
      closed = true;
      child.kill("SIGKILL");
      input.destroy();
    },
    failure: async () => {
      const r = await child;
      if (closed) return undefined;
      if (
        (r as { code?: string }).code === "ENOENT" ||
        r.exitCode === 127 ||
        (r.failed && r.exitCode === undefined && !r.isTerminated)
      )
        throw new BlockedError(
          `${tool.bin} is not installed, and it is needed to read this archive`,
          `install it (Debian/Ubuntu: apt install ${tool.pkg})`,
        );
      if (r.exitCode !== 0)
        return (
          String(r.stderr ?? "")
            .trim()
            .split("\n")
            .slice(-2)
            .join(" ") || `${tool.bin} exited with ${r.exitCode}`
        );
      return undefined;
    },
  };
}

/** Reads exact byte counts from the decompressed stream and enforces the output caps. */
class BlockReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  total = 0;
  constructor(
    private readonly s: ByteStream,
    private readonly cap: number,
    private readonly onCap: (why: string) => never,
    private readonly ratioCap: number,
  ) {}

  private async more(): Promise<boolean> {
    if (this.done) return false;
    let r: IteratorResult<Buffer>;
    try {
      r = await this.s.chunks.next();
    } catch (e) {
      throw new DataError((e as Error).message);
    }
    if (r.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.total += chunk.length;
    if (this.total > this.cap) this.onCap(`it decompresses to more than ${humanSize(this.cap)}`);
    if (this.total > RATIO_FLOOR && this.total > this.ratioCap)
      this.onCap(
        `it decompresses to more than ${humanSize(this.total)} from a smaller file than that ratio allows (a decompression bomb?)`,
      );
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return true;
  }

  /** Exactly n bytes, or null at a clean end of data; throws on a short read. */
  async read(n: number): Promise<Buffer | null> {
    while (this.buf.length < n) if (!(await this.more())) break;
    if (this.buf.length === 0) return null;
    if (this.buf.length < n) throw new DataError("the archive is truncated");
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Read to the end of the data, counting it. */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (await this.more()) this.buf = Buffer.alloc(0);
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw new DataError("the archive is truncated");
      const k = Math.min(left, this.buf.length);
      this.buf = this.buf.subarray(k);
      left -= k;
    }
  }
}

class DataError extends Error {}

const pad512 = (n: number) => Math.ceil(n / 512) * 512;

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString("latin1");
}

/** A numeric header field: octal (spaces/NULs around it) or GNU base-256. */
function num(b: Buffer, off: number, len: number): number | undefined {
  const f = b.subarray(off, off + len);
  if ((f[0] as number) & 0x80) {
    if (f[0] === 0xff) return undefined; // negative
    let v = (f[0] as number) & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + (f[i] as number);
    return Number.isSafeInteger(v) ? v : undefined;
  }
  const s = f.toString("latin1").replace(/\0.*$/s, "").trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  return Number.parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const want = num(h, 148, 8);
  if (want === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : (h[i] as number);
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return want === unsigned || want === signed;
}

/** pax records "<len> key=value\n"; refuses anything malformed. */
function parsePax(data: Buffer): Map<string, string> | undefined {
  const out = new Map<string, string>();
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break;
    const sp = data.indexOf(0x20, off);
    if (sp < 0) return undefined;
    const lenText = data.subarray(off, sp).toString("latin1");
    if (!/^\d+$/.test(lenText)) return undefined;
    const len = Number(lenText);
    if (len <= sp - off || off + len > data.length || data[off + len - 1] !== 0x0a) return undefined;
    const rec = data.subarray(sp + 1, off + len - 1).toString("latin1");
    const eq = rec.indexOf("=");
    if (eq <= 0) return undefined;
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

/** What GNU tar's stripped_prefix_len does: the rest of `name` after n components, or undefined. */
export function stripComponents(name: string, n: number): string | undefined {
  if (n <= 0) return name;
  let p = 0;
  while (name[p] === "/") p++;
  let left = n;
  while (p < name.length) {
    const slash = name[p] === "/";
    p++;
    if (slash) {
      if (--left === 0) return name.slice(p);
      while (name[p] === "/") p++;
    }
  }
  return undefined;
}

/** Why a member name is unsafe, or its normalised segments. */
function nameSegments(raw: string): string[] | string {
  if (raw === "") return "has an empty name";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u001f\u007f]/.test(raw)) return "has a control character in its name";
  if (raw.startsWith("/")) return "is an absolute path";
  const segs = raw.split("/").filter((s) => s !== "" && s !== ".");
  if (segs.includes("..")) return 'has a ".." segment (path traversal)';
  return segs;
}

/**
 * Resolve a symlink target from the directory `dir` (segments under the root) as the kernel
 * would, expanding every symlink met on the way (`lookup` gives a path's link target): the
 * segments it ends at, or why it leaves the root.
 */
export function resolveInside(
  dir: readonly string[],
  target: string,
  lookup: (segs: readonly string[]) => string | undefined,
  hops = { n: 0 },
): string[] | string {
  if (target === "") return "has an empty target";
  if (target.startsWith("/")) return `points to the absolute path ${shown(target)}`;
  let stack = [...dir];
  for (const comp of target.split("/")) {
    if (comp === "" || comp === ".") continue;
    if (comp === "..") {
      if (stack.length === 0) return `points to ${shown(target)}, which climbs out of the tree`;
      stack.pop();
      continue;
    }
    stack.push(comp);
    const t = lookup(stack);
    if (t !== undefined) {
      if (++hops.n > 40) return "is part of a symlink loop";
      stack.pop();
      const sub = resolveInside(stack, t, lookup, hops);
      if (typeof sub === "string")
        return sub.startsWith("is part of") ? sub : `points to ${shown(target)} through a link that ${sub}`;
      stack = sub;
    }
  }
  return stack;
}

const TYPE_NAMES: Record<string, string> = {
  "3": "a character device",
  "4": "a block device",
  "6": "a FIFO",
  S: "a GNU sparse file",
  D: "a GNU dump directory",
  M: "a multi-volume continuation",
  V: "a volume label",
  N: "an old GNU long-name record",
};

/**
 * Read every header of the archive (nothing is written) and check each member. `onMember` may
 * ask for a member's data (returning true) and then gets it; returning "stop" ends the scan.
 */
async function scan(
  file: string,
  c: ArchiveContext,
  onData?: (m: ArchiveMember, raw: string) => { want: boolean; maxBytes: number } | undefined,
  sink?: (m: ArchiveMember, data: Buffer) => "stop" | undefined,
): Promise<ArchiveListing> {
  const { fd, size } = openArchive(file, c);
  const head = Buffer.alloc(6);
  readSync(fd, head, 0, 6, 0);
  const compression = detectCompression(head);
  const maxMembers = c.limits.maxMembers;
  // Headers, padding and long names on top of the data; a tar's data can never need more.
  const cap = c.limits.maxBytes + maxMembers * 2048 + MiB;
  const ratioCap = Math.max(size, 1) * (c.limits.maxRatio ?? DEFAULT_RATIO);
  const stream = await decompressed(fd, compression);
  const reader = new BlockReader(
    stream,
    cap,
    (why) => {
      throw refuse(file, c, why);
    },
    compression === "none" ? Number.POSITIVE_INFINITY : ratioCap,
  );
  const members: ArchiveMember[] = [];
  const byPath = new Map<string, ArchiveMember>();
  let total = 0;
  let count = 0;
  const strip = c.stripComponents ?? 0;
  try {
    let pending: { path?: string; linkpath?: string; size?: number } = {};
    let stopped = false;
    for (;;) {
      let h = await reader.read(512);
      if (h === null) {
        if (Object.keys(pending).length > 0) throw new DataError("the archive is truncated");
        break;
      }
      if (h.every((b) => b === 0)) {
        const h2 = await reader.read(512);
        // Two zero blocks end the archive; a lone one is read past (GNU tar may go on).
        if (h2 === null || h2.every((b) => b === 0)) {
          // The rest is read too (and counted against the caps): the decompressor then checks
          // the stream's own CRC, and a bomb hidden after the end is stopped like any other.
          if (h2 !== null) await reader.drain();
          break;
        }
        h = h2;
      }
      if (!checksumOk(h)) throw new DataError("a header has a bad checksum (not a tar archive, or damaged)");
      const type = String.fromCharCode(h[156] as number);
      const hsize = num(h, 124, 12);
      if (hsize === undefined) throw new DataError("a header has an unreadable size field");
      const posix = h.subarray(257, 263).toString("latin1") === "ustar\0";
      if (type === "L" || type === "K" || type === "x" || type === "g") {
        if (hsize > MAX_META)
          throw new DataError(`a ${type} header of ${hsize} bytes is larger than any name`);
        const data = (await reader.read(pad512(hsize))) ?? Buffer.alloc(0);
        if (data.length < pad512(hsize)) throw new DataError("the archive is truncated");
        const body = data.subarray(0, hsize);
        if (type === "L") pending.path = cstr(body, 0, body.length);
        else if (type === "K") pending.linkpath = cstr(body, 0, body.length);
        else {
          const pax = parsePax(body);
          if (!pax) throw new DataError("a pax header is malformed");
          for (const [k, v] of pax) {
            if (k.startsWith("GNU.sparse."))
              throw refuse(
                file,
                c,
                "holds a sparse member (GNU.sparse pax keys), which no source tree needs",
              );
            if (type === "g" && (k === "path" || k === "linkpath" || k === "size"))
              throw refuse(file, c, `has a global pax header setting "${k}"`);
            if (type === "x") {
              if (k === "path") pending.path = v;
              else if (k === "linkpath") pending.linkpath = v;
              else if (k === "size") {
                if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)))
                  throw new DataError(`a pax size "${shown(v)}" is not a number`);
                pending.size = Number(v);
              }
            }
          }
        }
        continue;
      }
      const prefix = posix ? cstr(h, 345, 155) : "";
      const base = cstr(h, 0, 100);
      const raw = pending.path ?? (prefix ? `${prefix}/${base}` : base);
      const rawLink = pending.linkpath ?? cstr(h, 157, 100);
      const msize = pending.size ?? hsize;
      pending = {};
      const mode = num(h, 100, 8) ?? 0;
      const name = `member "${shown(raw)}"`;
      let kind: MemberKind;
      if (type === "0" || type === "\0" || type === "7") kind = "file";
      else if (type === "5") kind = "dir";
      else if (type === "2") kind = "symlink";
      else if (type === "1") kind = "hardlink";
      else
        throw refuse(
          file,
          c,
          `${name} is ${TYPE_NAMES[type] ?? `of unknown type "${shown(type)}"`}, which a ${c.what} never holds`,
        );
      if (kind !== "file" && msize !== 0)
        throw refuse(file, c, `${name} is a ${kind} with a data size of ${msize}`);
      if (++count > maxMembers)
        throw refuse(file, c, `it holds more than ${maxMembers} members, the limit for a ${c.what}`);
      if (mode & 0o7000)
        throw refuse(
          file,
          c,
          `${name} has the ${[mode & 0o4000 ? "setuid" : "", mode & 0o2000 ? "setgid" : "", mode & 0o1000 ? "sticky" : ""].filter(Boolean).join("/")} bit set (mode ${(mode & 0o7777).toString(8)})`,
        );
      const full = nameSegments(raw);
      if (typeof full === "string") throw refuse(file, c, `${name} ${full}`);
      if ((kind === "symlink" || kind === "hardlink") && c.allowLinks === false)
        throw refuse(
          file,
          c,
          `${name} is a ${kind === "symlink" ? "symbolic" : "hard"} link to "${shown(rawLink)}", which a ${c.what} never holds`,
        );
      total += kind === "file" ? msize : 0;
      if (total > c.limits.maxBytes)
        throw refuse(
          file,
          c,
          `its members add up to more than ${humanSize(c.limits.maxBytes)}, the limit for a ${c.what}`,
        );
      const stripped = stripComponents(raw, strip);
      let member: ArchiveMember | undefined;
      if (stripped !== undefined && stripped !== "") {
        const segs = nameSegments(stripped);
        if (typeof segs === "string") throw refuse(file, c, `${name} ${segs}`);
        if (segs.length > 0) {
          member = { path: segs.join("/"), kind, size: msize, mode: mode & 0o7777 };
          if (kind === "symlink") member.target = rawLink;
          if (kind === "hardlink") {
            // GNU tar strips a hardlink's target as it strips names: it must be an earlier file.
            const t = stripComponents(rawLink, strip);
            const ts = t === undefined ? "stripped away" : nameSegments(t);
            const to = typeof ts === "string" ? undefined : byPath.get(ts.join("/"));
            if (typeof ts === "string" || !to || to.kind !== "file")
              throw refuse(
                file,
                c,
                `${name} is a hard link to "${shown(rawLink)}", which is not an earlier regular member of the archive`,
              );
            member.target = to.path;
          }
          const prev = byPath.get(member.path);
          if (prev && !(prev.kind === "dir" && kind === "dir"))
            throw refuse(file, c, `${name} appears twice (as a ${prev.kind} and as a ${kind})`);
          if (!prev) {
            byPath.set(member.path, member);
            members.push(member);
          }
        }
      }
      const spec = member && kind === "file" ? onData?.(member, raw) : undefined;
      if (spec?.want && member) {
        if (msize > spec.maxBytes)
          throw refuse(file, c, `${name} is ${humanSize(msize)}; the limit is ${humanSize(spec.maxBytes)}`);
        const data = msize === 0 ? Buffer.alloc(0) : await reader.read(pad512(msize));
        if (!data || data.length < pad512(msize)) throw new DataError("the archive is truncated");
        if (sink?.(member, Buffer.from(data.subarray(0, msize))) === "stop") {
          stopped = true;
          break;
        }
      } else if (kind === "file" && msize > 0) await reader.skip(pad512(msize));
    }
    if (!stopped) {
      // Checked on the whole listing: a later member can make an earlier one unsafe.
      const links = new Map<string, string>();
      for (const m of members) if (m.kind === "symlink") links.set(m.path, m.target as string);
      for (const m of members) {
        const segs = m.path.split("/");
        for (let i = 1; i < segs.length; i++) {
          const up = byPath.get(segs.slice(0, i).join("/"));
          if (up && up.kind !== "dir")
            throw refuse(
              file,
              c,
              `member "${shown(m.path)}" goes through "${shown(up.path)}", which is a ${up.kind === "symlink" ? "symbolic link" : up.kind}`,
            );
        }
        if (m.kind === "symlink") {
          const r = resolveInside(segs.slice(0, -1), m.target as string, (s) => links.get(s.join("/")));
          if (typeof r === "string")
            throw refuse(file, c, `member "${shown(m.path)}" is a symbolic link that ${r}`);
        }
      }
    }
    // The read stream owns the fd: closing it (or reaching its end) closes the file.
    if (stopped) stream.close();
    else {
      const why = await stream.failure();
      if (why) throw new DataError(why);
    }
  } catch (e) {
    stream.close();
    await stream.failure().catch(() => undefined);
    if (e instanceof DataError)
      throw refuse(
        file,
        c,
        `it cannot be read as a${compression === "none" ? "" : ` ${compression}-compressed`} tar archive: ${e.message}`,
      );
    throw e;
  }
  if (count === 0 && !sink) throw refuse(file, c, "it holds no members (not a tar archive?)");
  return { file, compression, members, totalBytes: total };
}

/** List and check an archive without extracting anything. */
export function listArchive(file: string, c: ArchiveContext): Promise<ArchiveListing> {
  return scan(resolve(file), c);
}

/**
 * One regular member's bytes (at most maxBytes), read from the stream without tar and without
 * unpacking anything; the scan stops at the member. Undefined when the archive has no such member.
 */
export async function readArchiveMember(
  file: string,
  member: string,
  c: ArchiveContext & { maxBytes: number },
): Promise<Buffer | undefined> {
  const want = nameSegments(member);
  if (typeof want === "string")
    throw new UserError(`${c.what} ${file}: cannot read member "${shown(member)}": it ${want}`, c.hint);
  let found: Buffer | undefined;
  await scan(
    resolve(file),
    { ...c, stripComponents: 0 },
    (m) => (m.path === want.join("/") ? { want: true, maxBytes: c.maxBytes } : undefined),
    (_m, data) => {
      found = data;
      return "stop";
    },
  );
  return found;
}

export interface UnpackedArchive extends ArchiveListing {
  /** The private dir the members are in (mode 0700, made here). */
  dir: string;
  /** Remove the dir (idempotent). Call it in a finally, or hand the dir on and skip it. */
  dispose(): void;
}

export interface UnpackOptions extends ArchiveContext {
  exec: Exec;
  /** Where the private dir is made (same filesystem as where the caller will rename it). */
  parent: string;
  /** Name prefix of the private dir. */
  prefix: string;
  logFile?: string;
}

/** The tar argv that extracts a checked archive (exported for `plan`). */
export function extractArgv(file: string, dest: string, compression: Compression, strip = 0): string[] {
  const z = compression === "gzip" ? ["--gzip"] : compression === "none" ? [] : [TOOLS[compression].tarFlag];
  return [
    "tar",
    "--force-local",
    "--no-same-owner",
    "--no-same-permissions",
    "--no-xattrs",
    "--no-acls",
    "--no-selinux",
    "--warning=no-timestamp",
    ...z,
    "-x",
    "-f",
    file,
    "-C",
    dest,
    ...(strip > 0 ? [`--strip-components=${strip}`] : []),
  ];
}

/**
 * Walk an extracted tree: no special file, no set-id bit, no symlink leaving it. Defense in
 * depth after the header checks (a tar that extracted differently from what it listed).
 */
export function checkExtractedTree(dir: string, file: string, c: ArchiveContext): void {
  const lookup = (segs: readonly string[]): string | undefined => {
    try {
      const p = join(dir, ...segs);
      return lstatSync(p).isSymbolicLink() ? readlinkSync(p) : undefined;
    } catch {
      return undefined;
    }
  };
  const walk = (segs: string[]): void => {
    for (const name of readdirSync(join(dir, ...segs))) {
      const s = [...segs, name];
      const p = join(dir, ...s);
      const st = lstatSync(p);
      const rel = s.join("/");
      if (st.isDirectory()) {
        if (st.mode & 0o7000)
          throw refuse(file, c, `"${shown(rel)}" was extracted with a set-id or sticky bit`);
        walk(s);
      } else if (st.isSymbolicLink()) {
        const r = resolveInside(segs, readlinkSync(p), lookup);
        if (typeof r === "string") throw refuse(file, c, `"${shown(rel)}" is a symbolic link that ${r}`);
      } else if (st.isFile()) {
        if (st.mode & 0o7000)
          throw refuse(file, c, `"${shown(rel)}" was extracted with a set-id or sticky bit`);
      } else throw refuse(file, c, `"${shown(rel)}" was extracted as a special file`);
    }
  };
  walk([]);
}

/**
 * Check, then extract into a fresh private dir under o.parent. On any failure the dir is gone
 * before the error is thrown; on success the caller owns it (dispose(), or rename it away).
 */
export async function unpackArchive(file: string, o: UnpackOptions): Promise<UnpackedArchive> {
  const abs = resolve(file);
  const listing = await scan(abs, o);
  const dir = mkdtempSync(join(o.parent, o.prefix));
  const dispose = () => rmSync(dir, { recursive: true, force: true });
  try {
    const r = await o.exec.run(extractArgv(abs, dir, listing.compression, o.stripComponents ?? 0), {
      reject: false,
      ...(o.logFile ? { logFile: o.logFile } : {}),
    });
    if (r.exitCode !== 0)
      throw new StepError(
        "unpack",
        `tar could not extract ${o.what} ${abs}: ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ")}`,
        "check the free space where it is unpacked, or copy the archive again",
      );
    checkExtractedTree(dir, abs, o);
  } catch (e) {
    dispose();
    throw e;
  }
  return { ...listing, dir, dispose };
}

/** Whether an error is this module's refusal of an archive (for callers that add context). */
export const isArchiveRefusal = (e: unknown): boolean => e instanceof Refused;
