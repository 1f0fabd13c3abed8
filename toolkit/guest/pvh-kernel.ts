import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Exec } from "../core/exec.js";

/**
 * Under TCG, decompressing a distribution bzImage (xz on Debian) takes the guest 5-15 s before the
 * kernel even starts. QEMU can instead boot the uncompressed vmlinux directly through its PVH entry
 * point (CONFIG_PVH, an ELF note), which skips the decompressor. This module extracts that vmlinux
 * once per kernel image and caches it; any failure falls back to the bzImage.
 */

const XEN_ELFNOTE_PHYS32_ENTRY = 0x12;

/** True when `elf` is a 64-bit ELF carrying the Xen PHYS32_ENTRY note QEMU's PVH boot needs. */
export function hasPvhEntry(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > elf.length || elf.readUInt32LE(ph) !== 4) continue; // PT_NOTE
    const off = Number(elf.readBigUInt64LE(ph + 8));
    const end = Math.min(off + Number(elf.readBigUInt64LE(ph + 32)), elf.length);
    for (let p = off; p + 12 <= end; ) {
      const namesz = elf.readUInt32LE(p);
      const descsz = elf.readUInt32LE(p + 4);
      const type = elf.readUInt32LE(p + 8);
      const name = elf.toString("latin1", p + 12, p + 12 + namesz).replace(/\0+$/, "");
      if (name === "Xen" && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      p += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

/** The compressed payload formats a bzImage may carry, by magic, with the command that unpacks them. */
const FORMATS = [
  {
    magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
    ext: "xz",
    argv: ["xz", "-d", "-q", "--single-stream"],
  },
  { magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ext: "zst", argv: ["zstd", "-d", "-q"] },
  { magic: Buffer.from([0x1f, 0x8b, 0x08]), ext: "gz", argv: ["gzip", "-d", "-q"] },
] as const;

/**
 * The path of an uncompressed, PVH-bootable copy of `kernel` under `cacheDir`, extracting it on
 * first use; `kernel` itself when that is not possible (unknown format, no PVH note, tool missing).
 */
export async function pvhKernel(exec: Exec, kernel: string, cacheDir: string): Promise<string> {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(kernel);
  } catch {
    return kernel;
  }
  // Keyed by size and mtime: a reinstalled image with the same name gets a fresh copy.
  const cached = join(cacheDir, `vmlinux-${basename(kernel)}-${st.size}-${Math.round(st.mtimeMs)}`);
  try {
    statSync(cached);
    return cached;
  } catch {
    // not extracted yet
  }
  const image = readFileSync(kernel);
  mkdirSync(cacheDir, { recursive: true });
  if (hasPvhEntry(image)) return kernel; // already an uncompressed ELF
  const work = mkdtempSync(join(cacheDir, ".extract-"));
  try {
    for (const f of FORMATS) {
      const at = image.indexOf(f.magic);
      if (at < 0) continue;
      const packed = join(work, `vmlinux.${f.ext}`);
      writeFileSync(packed, image.subarray(at));
      // Trailing bytes after the stream make some tools exit non-zero although they wrote the output.
      await exec.run([...f.argv, packed], { reject: false, timeoutMs: 120_000 });
      let elf: Buffer;
      try {
        elf = readFileSync(join(work, "vmlinux"));
      } catch {
        continue;
      }
      if (!hasPvhEntry(elf)) return kernel;
      renameSync(join(work, "vmlinux"), cached);
      return cached;
    }
    return kernel;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
