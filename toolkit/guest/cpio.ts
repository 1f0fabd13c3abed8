/**
 * A writer for the "newc" cpio format the kernel unpacks as an initramfs.
 *
 * Written in TypeScript rather than through the `cpio` command because the archive is built from
 * a list, not a staging directory: no temp tree to create and clean, no root needed to put a
 * /dev/console device node in it, owners are always root, and the bytes are reproducible.
 */

/** One archive member. Paths are relative ("bin/busybox"), without a leading slash. */
export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "chardev"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const hex8 = (n: number): string => n.toString(16).padStart(8, "0");
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

function header(fields: {
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  rdevMajor?: number;
  rdevMinor?: number;
  nameSize: number;
}): string {
  return [
    "070701",
    hex8(fields.ino),
    hex8(fields.mode),
    hex8(0), // uid: root
    hex8(0), // gid: root
    hex8(fields.nlink),
    hex8(0), // mtime: fixed so the archive is reproducible
    hex8(fields.size),
    hex8(0), // dev major
    hex8(0), // dev minor
    hex8(fields.rdevMajor ?? 0),
    hex8(fields.rdevMinor ?? 0),
    hex8(fields.nameSize),
    hex8(0), // check: unused in newc
  ].join("");
}

/** Serialise entries into one newc archive, ending with the TRAILER!!! record. */
export function writeNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    offset += b.length;
  };
  const member = (name: string, hdr: Omit<Parameters<typeof header>[0], "nameSize">, data: Uint8Array) => {
    const nameBytes = Buffer.from(`${name}\0`, "utf8");
    push(Buffer.from(header({ ...hdr, nameSize: nameBytes.length }), "ascii"));
    push(nameBytes);
    push(Buffer.alloc(pad4(offset)));
    if (data.length > 0) {
      push(Buffer.from(data.buffer, data.byteOffset, data.length));
      push(Buffer.alloc(pad4(offset)));
    }
  };
  const seen = new Set<string>();
  let ino = 1;
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, "");
    if (path === "" || seen.has(path)) throw new Error(`cpio: empty or duplicate path "${e.path}"`);
    seen.add(path);
    const base = { ino: ino++, nlink: 1 };
    switch (e.kind) {
      case "dir":
        member(path, { ...base, nlink: 2, mode: S_IFDIR | (e.mode ?? 0o755), size: 0 }, new Uint8Array());
        break;
      case "file":
        member(path, { ...base, mode: S_IFREG | (e.mode ?? 0o644), size: e.data.length }, e.data);
        break;
      case "symlink": {
        const target = Buffer.from(e.target, "utf8");
        member(path, { ...base, mode: S_IFLNK | 0o777, size: target.length }, target);
        break;
      }
      case "chardev":
        member(
          path,
          { ...base, mode: S_IFCHR | (e.mode ?? 0o600), size: 0, rdevMajor: e.major, rdevMinor: e.minor },
          new Uint8Array(),
        );
        break;
    }
  }
  member("TRAILER!!!", { ino: 0, mode: 0, nlink: 1, size: 0 }, new Uint8Array());
  return Buffer.concat(parts);
}
