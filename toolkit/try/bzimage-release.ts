import { closeSync, openSync, readSync } from "node:fs";

/**
 * The kernel release a bzImage carries, read from its x86 boot header (what `file` prints):
 * "HdrS" at 0x202, a 16-bit pointer at 0x20e, and at 0x200 + that pointer a NUL-terminated
 * string starting "<release> (<builder>) #<n> ...". The image's file name may say nothing
 * (a self-built arch/x86/boot/bzImage), and the guest needs the release to find its modules.
 */
export function kernelReleaseFromBzImage(path: string): string | undefined {
  const fd = openSync(path, "r");
  try {
    const header = Buffer.alloc(0x210);
    if (readSync(fd, header, 0, header.length, 0) < header.length) return undefined;
    if (header.toString("latin1", 0x202, 0x206) !== "HdrS") return undefined;
    const pointer = header.readUInt16LE(0x20e);
    if (pointer === 0) return undefined;
    const text = Buffer.alloc(256);
    const n = readSync(fd, text, 0, text.length, 0x200 + pointer);
    const version = text.toString("latin1", 0, n).split("\0")[0] ?? "";
    const release = version.split(" ")[0] ?? "";
    // A release is printable and has no slash (it names a /lib/modules directory).
    return /^[0-9][\w.+~-]*$/.test(release) ? release : undefined;
  } finally {
    closeSync(fd);
  }
}
