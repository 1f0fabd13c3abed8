import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { BlockedError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { type CpioEntry, writeNewc } from "./cpio.js";
import { MODULE_LIST_PATH, PROBE_INIT, STAGE1_INIT, STAGE2 } from "./guest-scripts.js";
import { type ModuleFile, moduleClosureFor } from "./module-closure.js";

/** What stage 1 needs to reach the host root: virtio PCI, the 9p virtio transport, 9p, overlayfs. */
export const GUEST_BOOT_MODULES: readonly string[] = ["virtio_pci", "9pnet_virtio", "9p", "overlay"];

export interface InitramfsOptions {
  /** Host root prefix ("/" for the real host, a fixture tree in tests). */
  root?: string;
  /** Guest kernel release: its modules come from /lib/modules/<release>. */
  kernelRelease: string;
  /** A statically linked busybox (Debian: busybox-static). */
  busybox?: string;
  /** Modules to load before the payload besides GUEST_BOOT_MODULES. */
  extraModules?: readonly string[];
}

export interface BuiltInitramfs {
  image: Buffer;
  /** Modules in load order, dependencies first. */
  modules: ModuleFile[];
}

const DEFAULT_BUSYBOX = "/bin/busybox";

function readBusybox(root: string, busybox: string): Buffer {
  const path = underRoot(root, busybox);
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new BlockedError(
      `cannot read busybox at ${path}: ${(cause as Error).message}`,
      "install busybox-static (a static busybox runs in the initramfs without any library)",
    );
  }
}

/**
 * A module's bytes, uncompressed. Compressed modules are unpacked on the host rather than left to
 * the guest: busybox's insmod may be built without xz/zstd support, and the kernel's in-kernel
 * decompression (CONFIG_MODULE_DECOMPRESS) only exists from 6.x on. gzip is done by node's zlib;
 * xz and zstd go through their commands on a private copy, since exec gives text, not bytes.
 */
export async function readModuleBytes(exec: Exec, path: string): Promise<Buffer> {
  if (path.endsWith(".ko")) return readFileSync(path);
  if (path.endsWith(".ko.gz")) return gunzipSync(readFileSync(path));
  const tool = path.endsWith(".ko.xz") ? "xz" : path.endsWith(".ko.zst") ? "zstd" : undefined;
  if (!tool)
    throw new BlockedError(
      `unknown kernel module format: ${path}`,
      "expected .ko, .ko.xz, .ko.zst or .ko.gz",
    );
  const dir = mkdtempSync(join(tmpdir(), "np-kmod-"));
  try {
    const copy = join(dir, basename(path));
    const plain = copy.replace(/\.(xz|zst)$/, "");
    copyFileSync(path, copy);
    const argv = tool === "xz" ? ["xz", "-d", "-q", copy] : ["zstd", "-d", "-q", copy, "-o", plain];
    const r = await exec.run(argv, { reject: false });
    if (r.exitCode !== 0) {
      throw new BlockedError(
        `cannot decompress ${path}: \`${argv.join(" ")}\` exited ${r.exitCode}: ${r.stderr.trim()}`,
        `install ${tool === "xz" ? "xz-utils" : "zstd"}`,
      );
    }
    return readFileSync(plain);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const baseTree = (busybox: Buffer): CpioEntry[] => [
  ...["bin", "dev", "proc", "sys", "etc", "lib", "lib/modules", "lower", "rw", "newroot", "tmp"].map(
    (path): CpioEntry => ({ kind: "dir", path }),
  ),
  // The kernel opens /dev/console for /init's stdio before anything can mount devtmpfs.
  { kind: "chardev", path: "dev/console", major: 5, minor: 1 },
  { kind: "file", path: "bin/busybox", data: busybox, mode: 0o755 },
  { kind: "symlink", path: "bin/sh", target: "busybox" },
];

/** The initramfs that brings up the host root as an overlay and runs the payload (see guest-scripts). */
export async function buildGuestInitramfs(exec: Exec, opts: InitramfsOptions): Promise<BuiltInitramfs> {
  const root = opts.root ?? "/";
  const busybox = readBusybox(root, opts.busybox ?? DEFAULT_BUSYBOX);
  const modules = moduleClosureFor(root, opts.kernelRelease, [
    ...GUEST_BOOT_MODULES,
    ...(opts.extraModules ?? []),
  ]);
  const modDir = underRoot(root, join("/lib/modules", opts.kernelRelease));
  const entries = baseTree(busybox);
  for (const m of modules) {
    entries.push({
      kind: "file",
      path: `lib/modules/${m.name}.ko`,
      data: await readModuleBytes(exec, join(modDir, m.relPath)),
    });
  }
  entries.push(
    { kind: "file", path: MODULE_LIST_PATH, data: Buffer.from(`${modules.map((m) => m.name).join("\n")}\n`) },
    { kind: "file", path: "init", data: Buffer.from(STAGE1_INIT), mode: 0o755 },
    { kind: "file", path: "stage2", data: Buffer.from(STAGE2), mode: 0o644 },
  );
  return { image: writeNewc(entries), modules };
}

/** The KVM probe's initramfs: busybox and an /init that prints a marker and powers off. */
export function buildProbeInitramfs(opts: { root?: string; busybox?: string } = {}): Buffer {
  const busybox = readBusybox(opts.root ?? "/", opts.busybox ?? DEFAULT_BUSYBOX);
  return writeNewc([
    ...baseTree(busybox),
    { kind: "file", path: "init", data: Buffer.from(PROBE_INIT), mode: 0o755 },
  ]);
}
