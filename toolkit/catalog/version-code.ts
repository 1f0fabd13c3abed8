/**
 * Kernel versions the way netmap's configure sees them. configure turns LINUX_VERSION_CODE into a
 * 5-digit hex "version code" and picks the patch `vanilla--<driver>--LO--HI` with LO <= code < HI,
 * comparing strings. Everything here reproduces that rule so the toolkit predicts configure's
 * choice instead of discovering it from a silent "Disabling driver".
 */
import { UserError } from "../core/errors.js";

/** The numeric parts of a kernel release. */
export interface KernelVersionParts {
  major: number;
  minor: number;
  /** The stable point release, 0 when absent ("3.18", "6.1.0-56-amd64"). */
  sublevel: number;
}

/** A half-open kernel range [from, to); `to: null` means no upper bound. */
export interface KernelRange {
  from: string;
  to: string | null;
}

/** "99999" is netmap's "no upper bound" for HI. */
export const OPEN_HI = "99999";

const releasePattern = /^(\d+)\.(\d+)(?:\.(\d+))?(?:[-+~._].*)?$/;

/**
 * Parse "6.1.192", "3.18", "2.6.32-358.el6.x86_64", "6.1.0-56-amd64" or "6.8.0-31-generic".
 * Note that a Debian/Ubuntu ABI release ("6.1.0-56-amd64") hides the real point release
 * (6.1.192): pass the full version when it is known (headers' version.h, /proc/version).
 */
export function kernelVersionParts(release: string): KernelVersionParts {
  const m = releasePattern.exec(release.trim());
  if (!m) {
    throw new UserError(
      `"${release}" is not a kernel version`,
      'give a version like "6.1.192", "3.18" or a release like "6.1.0-56-amd64" (uname -r)',
    );
  }
  return { major: Number(m[1]), minor: Number(m[2]), sublevel: Number(m[3] ?? 0) };
}

/** The numeric LINUX_VERSION_CODE, with the sublevel capped at 255 as the kernel's KERNEL_VERSION does. */
export function kernelVersionNumber(release: string): number {
  const { major, minor, sublevel } = kernelVersionParts(release);
  return (major << 16) | (minor << 8) | Math.min(sublevel, 255);
}

/** netmap's version code: printf "%03x%02x" of (major<<8|minor, min(sublevel, 255)). 6.1.192 -> "601c0". */
export function netmapVersionCode(release: string): string {
  const { major, minor, sublevel } = kernelVersionParts(release);
  const hi = ((major << 8) | minor).toString(16).padStart(3, "0");
  const lo = Math.min(sublevel, 255).toString(16).padStart(2, "0");
  return `${hi}${lo}`;
}

/** configure's test: lo <= code < hi by string comparison, hi "99999" meaning no upper bound. */
export function patchApplies(code: string, lo: string, hi: string): boolean {
  return lo <= code && (hi === OPEN_HI || code < hi);
}

/** A file name from netmap's LINUX/final-patches, split into its parts. */
export type PatchName =
  | { kind: "vanilla"; driver: string; lo: string; hi: string }
  | { kind: "intel" | "mellanox" | "custom"; driver: string; driverVersion: string };

const codePattern = /^[0-9a-f]{5}$/;

/**
 * Parse "vanilla--e1000--31200--99999" (a patch for the kernel's own driver, by kernel range) or
 * "intel--igb--5.10.2" / "mellanox--mlx5--5.8" / "custom--virtio_net.c--4.9" (a patch for an
 * external driver, by driver version). Returns undefined for anything else.
 */
export function parsePatchName(name: string): PatchName | undefined {
  const parts = name.split("--");
  const [kind, driver] = parts;
  if (!driver) return undefined;
  if (kind === "vanilla" && parts.length === 4) {
    const lo = parts[2] ?? "";
    const hi = parts[3] ?? "";
    if (!codePattern.test(lo) || !(codePattern.test(hi) || hi === OPEN_HI)) return undefined;
    return { kind, driver, lo, hi };
  }
  if ((kind === "intel" || kind === "mellanox" || kind === "custom") && parts.length === 3) {
    const driverVersion = parts[2] ?? "";
    return driverVersion ? { kind, driver, driverVersion } : undefined;
  }
  return undefined;
}

/** Order two kernel versions by their (capped) version numbers: negative, 0 or positive. */
export function compareKernelVersions(a: string, b: string): number {
  return kernelVersionNumber(a) - kernelVersionNumber(b);
}

/**
 * Whether a kernel release falls in [from, to). Compared numerically, not as hex strings, so that
 * kernels from 10.0 on (code "a00..") still sort after 9.x.
 */
export function releaseInRange(release: string, range: KernelRange): boolean {
  const v = kernelVersionNumber(release);
  if (v < kernelVersionNumber(range.from)) return false;
  return range.to === null || v < kernelVersionNumber(range.to);
}

/** "[3.18, 6.15)" or "3.18 and newer", for messages. */
export function describeRange(range: KernelRange): string {
  return range.to === null ? `${range.from} and newer` : `${range.from} up to (not including) ${range.to}`;
}
