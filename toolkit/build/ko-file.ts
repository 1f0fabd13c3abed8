/**
 * What a .ko file says about itself, read from its bytes: a kernel module is a relocatable ELF
 * object whose `.modinfo` section holds NUL-separated `key=value` strings (vermagic=, name=,
 * depends=). Reading them here, rather than through modinfo, means a file from a bundle is never
 * handed to a program before it is known to be a module.
 */

export interface KoInfo {
  /** The first value of each key. */
  info: Map<string, string>;
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/** The .modinfo strings of a kernel module, or why the bytes are not one. */
export function readKoInfo(buf: Buffer): KoInfo | string {
  if (buf.length < 52 || !buf.subarray(0, 4).equals(ELF_MAGIC)) return "is not an ELF file";
  const cls = buf[4];
  const data = buf[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) return "has an unknown ELF class or byte order";
  const le = data === 1;
  const is64 = cls === 2;
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number) => {
    const v = le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v);
  };
  if (is64 && buf.length < 64) return "is a truncated ELF file";
  // ET_REL: modules are relocatable objects, not programs or shared libraries.
  if (u16(16) !== 1) return "is an ELF file but not a relocatable object (a kernel module is one)";
  const shoff = is64 ? u64(0x28) : u32(0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  const shnum = u16(is64 ? 0x3c : 0x30);
  const shstrndx = u16(is64 ? 0x3e : 0x32);
  if (shentsize !== (is64 ? 64 : 40) || shoff < 0 || shnum === 0 || shoff + shnum * shentsize > buf.length)
    return "has no readable section table (a truncated or damaged ELF file)";
  const section = (i: number) => {
    const o = shoff + i * shentsize;
    return {
      name: u32(o),
      offset: is64 ? u64(o + 24) : u32(o + 16),
      size: is64 ? u64(o + 32) : u32(o + 20),
    };
  };
  const inFile = (s: { offset: number; size: number }) =>
    s.offset >= 0 && s.size >= 0 && s.offset + s.size <= buf.length;
  if (shstrndx >= shnum) return "has no section name table";
  const strtab = section(shstrndx);
  if (!inFile(strtab)) return "has a section name table outside the file";
  const nameAt = (off: number) => {
    if (off >= strtab.size) return "";
    const start = strtab.offset + off;
    const end = buf.indexOf(0, start);
    return buf
      .subarray(start, end < 0 || end > strtab.offset + strtab.size ? strtab.offset + strtab.size : end)
      .toString("latin1");
  };
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (nameAt(s.name) !== ".modinfo") continue;
    if (!inFile(s)) return "has a .modinfo section outside the file";
    const info = new Map<string, string>();
    for (const entry of buf
      .subarray(s.offset, s.offset + s.size)
      .toString("latin1")
      .split("\0")) {
      const eq = entry.indexOf("=");
      if (eq > 0 && !info.has(entry.slice(0, eq))) info.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
    return { info };
  }
  return "has no .modinfo section (not a kernel module)";
}
