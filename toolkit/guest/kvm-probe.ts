import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { findGuestKernel, releaseFromImage } from "./guest-kernel.js";
import { PROBE_MARKER } from "./guest-scripts.js";
import { buildProbeInitramfs } from "./initramfs.js";

/** Which accelerator QEMU should use, and why (shown to the user when it is TCG). */
export interface AccelChoice {
  accel: "kvm" | "tcg";
  reason: string;
  /** True when the answer came from the per-boot cache file. */
  cached: boolean;
}

export interface ProbeOptions {
  /** How long the tiny KVM boot may take before KVM counts as unusable (default 8 s). */
  timeoutMs?: number;
  root?: string;
  kernel?: string;
  kernelRelease?: string;
  qemu?: string;
  busybox?: string;
  kvmDevice?: string;
  /** Where the answer is cached; false disables the cache. Default: $XDG_CACHE_HOME/netmap-provision. */
  cacheDir?: string | false;
}

export const defaultCacheDir = (): string =>
  join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "netmap-provision");

/** "7.2.22" from `qemu-system-x86_64 --version`, or "unknown". */
export async function qemuVersion(exec: Exec, qemu = "qemu-system-x86_64"): Promise<string> {
  const r = await exec.run([qemu, "--version"], { reject: false, timeoutMs: 10_000 });
  return /version\s+(\S+)/.exec(r.stdout)?.[1] ?? "unknown";
}

/** The line of QEMU's stderr that says what went wrong (its "error:" line, else the first one). */
function qemuComplaint(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.replace(/^qemu-system-\w+:\s*/, "").trim())
    .filter(Boolean);
  return lines.find((l) => /^error:/.test(l))?.replace(/^error:\s*/, "") ?? lines[0] ?? "no message";
}

function readBootId(root: string): string {
  try {
    return readFileSync(underRoot(root, "/proc/sys/kernel/random/boot_id"), "utf8").trim();
  } catch {
    return "unknown";
  }
}

/**
 * Decide between KVM and TCG. /dev/kvm being there proves little (on some hosts `-cpu host`
 * aborts on an MSR write, or the guest hangs in the BIOS), so KVM is chosen only when a tiny
 * busybox initramfs actually boots under it and prints its marker within the timeout.
 * The answer is cached per host boot, kernel release and QEMU version: it costs up to timeoutMs.
 */
export async function probeAccel(exec: Exec, opts: ProbeOptions = {}): Promise<AccelChoice> {
  const root = opts.root ?? "/";
  const timeoutMs = opts.timeoutMs ?? 8_000;
  const kvmDevice = opts.kvmDevice ?? "/dev/kvm";
  const qemu = opts.qemu ?? "qemu-system-x86_64";
  try {
    accessSync(underRoot(root, kvmDevice), constants.R_OK | constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "does not exist" : `is not read-write for this user (${code})`;
    return { accel: "tcg", reason: `${kvmDevice} ${why}`, cached: false };
  }
  // The probe needs no modules, only an image; the release just keys the cache.
  const { kernel, kernelRelease } = opts.kernel
    ? { kernel: opts.kernel, kernelRelease: opts.kernelRelease ?? releaseFromImage(opts.kernel) ?? "unknown" }
    : findGuestKernel(root, opts.kernelRelease);
  const version = await qemuVersion(exec, qemu);
  const bootId = readBootId(root);
  const cacheDir = opts.cacheDir === undefined ? defaultCacheDir() : opts.cacheDir;
  const cacheFile = cacheDir ? join(cacheDir, `accel-${kernelRelease}-qemu-${version}.json`) : undefined;
  if (cacheFile) {
    try {
      const saved = JSON.parse(readFileSync(cacheFile, "utf8")) as {
        bootId?: string;
        accel?: string;
        reason?: string;
      };
      if (saved.bootId === bootId && (saved.accel === "kvm" || saved.accel === "tcg") && saved.reason) {
        return { accel: saved.accel, reason: saved.reason, cached: true };
      }
    } catch {
      // no cache yet, or unreadable: probe
    }
  }
  const choice = await bootProbe(exec, { qemu, kernel, timeoutMs, root, busybox: opts.busybox });
  if (cacheFile && cacheDir) {
    try {
      mkdirSync(cacheDir, { recursive: true });
      writeFileSync(cacheFile, `${JSON.stringify({ ...choice, bootId, kernelRelease, qemu: version })}\n`);
    } catch {
      // The cache only saves time; failing to write it is not worth failing the run.
    }
  }
  return { ...choice, cached: false };
}

async function bootProbe(
  exec: Exec,
  o: { qemu: string; kernel: string; timeoutMs: number; root: string; busybox: string | undefined },
): Promise<{ accel: "kvm" | "tcg"; reason: string }> {
  const dir = mkdtempSync(join(tmpdir(), "np-kvm-probe-"));
  try {
    const initrd = join(dir, "probe.cpio");
    const serial = join(dir, "serial.log");
    writeFileSync(initrd, buildProbeInitramfs({ root: o.root, busybox: o.busybox }));
    const started = performance.now();
    // -cpu host: the model real guests use under KVM, so the probe fails the way they would.
    const r = await exec.run(
      [
        o.qemu,
        ...["-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1"],
        ...["-nodefaults", "-display", "none", "-no-reboot", "-serial", `file:${serial}`],
        ...["-kernel", o.kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet"],
      ],
      { reject: false, timeoutMs: o.timeoutMs },
    );
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    let log = "";
    try {
      log = readFileSync(serial, "utf8");
    } catch {
      // qemu died before creating it
    }
    if (log.includes(PROBE_MARKER)) return { accel: "kvm", reason: `KVM booted a test kernel in ${secs} s` };
    if (r.timedOut) {
      return {
        accel: "tcg",
        reason: `KVM probe timed out after ${Math.round(o.timeoutMs / 1000)} s (guest hung)`,
      };
    }
    return {
      accel: "tcg",
      reason: `KVM probe failed: qemu exited ${r.exitCode}: ${qemuComplaint(r.stderr)}`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
