import { createWriteStream } from "node:fs";
import { createGzip } from "node:zlib";

/**
 * Writes tar archives byte by byte, so tests can build what no well-behaved tar would: members
 * named `../x` or `/etc/x`, devices, FIFOs, setuid files, links out of the tree, GNU long names
 * and pax headers. Headers are ustar ("ustar\0" "00") with a correct checksum.
 */
export type CraftType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "sparse";

export interface CraftEntry {
  name: string;
  type?: CraftType;
  data?: Buffer | string;
  mode?: number;
  linkname?: string;
  /** How a long name is written: a GNU 'L' record (default) or a pax 'x' header. */
  longName?: "gnu" | "pax";
  /** Extra pax records (key -> value) in an 'x' header before the member. */
  pax?: Record<string, string>;
}

const TYPEFLAG: Record<CraftType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
  sparse: "S",
};

function octal(n: number, len: number): string {
  return `${n.toString(8).padStart(len - 1, "0")}\0`;
}

export function tarHeader(o: {
  name: string;
  typeflag: string;
  size: number;
  mode?: number;
  linkname?: string;
  devmajor?: number;
}): Buffer {
  const h = Buffer.alloc(512);
  h.write(o.name.slice(0, 100), 0, "latin1");
  h.write(octal(o.mode ?? 0o644, 8), 100, "latin1");
  h.write(octal(0, 8), 108, "latin1");
  h.write(octal(0, 8), 116, "latin1");
  h.write(octal(o.size, 12), 124, "latin1");
  h.write(octal(1_700_000_000, 12), 136, "latin1");
  h.write("        ", 148, "latin1");
  h.write(o.typeflag, 156, "latin1");
  if (o.linkname) h.write(o.linkname.slice(0, 100), 157, "latin1");
  h.write("ustar\0", 257, "latin1");
  h.write("00", 263, "latin1");
  h.write("root", 265, "latin1");
  h.write("root", 297, "latin1");
  h.write(octal(o.devmajor ?? 0, 8), 329, "latin1");
  h.write(octal(0, 8), 337, "latin1");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return h;
}

const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

function paxBody(rec: Record<string, string>): Buffer {
  let out = "";
  for (const [k, v] of Object.entries(rec)) {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    out += `${len}${body}`;
  }
  return Buffer.from(out, "latin1");
}

/** One member's blocks (long-name records, header, data). */
export function tarMember(e: CraftEntry): Buffer {
  const type = e.type ?? "file";
  const data = type === "file" ? Buffer.from(e.data ?? "") : Buffer.alloc(0);
  const parts: Buffer[] = [];
  const pax: Record<string, string> = { ...e.pax };
  if (e.name.length > 100 && e.longName === "pax") pax.path = e.name;
  else if (e.name.length > 100) {
    const b = Buffer.from(`${e.name}\0`, "latin1");
    parts.push(tarHeader({ name: "././@LongLink", typeflag: "L", size: b.length }), pad(b));
  }
  if ((e.linkname?.length ?? 0) > 100) pax.linkpath = e.linkname as string;
  if (Object.keys(pax).length > 0) {
    const b = paxBody(pax);
    parts.push(tarHeader({ name: "PaxHeader", typeflag: "x", size: b.length }), pad(b));
  }
  parts.push(
    tarHeader({
      name: e.name,
      typeflag: TYPEFLAG[type],
      size: data.length,
      mode: e.mode ?? (type === "dir" ? 0o755 : 0o644),
      ...(e.linkname ? { linkname: e.linkname } : {}),
      ...(type === "char" ? { devmajor: 1 } : {}),
    }),
  );
  if (data.length > 0) parts.push(pad(data));
  return Buffer.concat(parts);
}

/** A whole archive: the members, then the two zero blocks (and record padding like GNU tar). */
export function craftTar(entries: CraftEntry[]): Buffer {
  const body = Buffer.concat([...entries.map(tarMember), Buffer.alloc(1024)]);
  return Buffer.concat([body, Buffer.alloc((10240 - (body.length % 10240)) % 10240)]);
}

/**
 * A gzip bomb written to `file` as a stream: a tar whose one member claims `bytes` of zeros
 * (a few hundred KB on disk for hundreds of MB), never all in memory.
 */
export async function writeGzipBomb(file: string, name: string, bytes: number): Promise<void> {
  const gz = createGzip({ level: 1 });
  const done = new Promise<void>((resolve, reject) => {
    const out = createWriteStream(file);
    out.on("finish", resolve);
    out.on("error", reject);
    gz.pipe(out);
  });
  gz.write(tarHeader({ name, typeflag: "0", size: bytes }));
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  for (let left = bytes; left > 0; left -= zeros.length) {
    const chunk = left >= zeros.length ? zeros : zeros.subarray(0, left);
    if (!gz.write(chunk)) await new Promise((r) => gz.once("drain", r));
  }
  gz.write(Buffer.alloc(((512 - (bytes % 512)) % 512) + 1024));
  gz.end();
  await done;
}
