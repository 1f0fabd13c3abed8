import semver from "semver";

/**
 * What a recipe's `kernel.version` means: the running kernel, one exact release (`uname -r`
 * form, e.g. "6.1.0-56-amd64" or "2.6.37"), or a semver range over kernel versions
 * (">=6.1 <6.2", "6.8" = the 6.8 series).
 */
export type KernelVersionSpec =
  | { kind: "running" }
  | { kind: "exact"; release: string; version: string }
  | { kind: "range"; range: string };

/** A kernel release: 2..4 numeric parts, then an optional local suffix ("-56-amd64", ".el6.x86_64"). */
const RELEASE_RE = /^(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?([-+~][0-9A-Za-z._+~-]*)?$/;

/**
 * The semver "x.y.z" of a kernel release, dropping the distro suffix and a 4th part
 * (2.6.32.27 -> 2.6.32). Why: semver would read "-56-amd64" as a pre-release and sort it
 * *below* 6.1.0, so "6.1.0-56-amd64" would not satisfy ">=6.1.0".
 */
export function kernelSemver(release: string): string | undefined {
  const m = RELEASE_RE.exec(release);
  if (!m) return undefined;
  return `${Number(m[1])}.${Number(m[2])}.${Number(m[3] ?? 0)}`;
}

/** Parse a `kernel.version` value, or say what is wrong with it. */
export function parseKernelVersion(raw: string): KernelVersionSpec | { error: string; hint?: string } {
  const s = raw.trim();
  if (s === "running") return { kind: "running" };
  const m = RELEASE_RE.exec(s);
  // Three or more parts (or a suffix) name one release; "6.1" alone reads as the 6.1 series.
  if (m && (m[3] !== undefined || m[5] !== undefined)) {
    return { kind: "exact", release: s, version: kernelSemver(s) as string };
  }
  if (/^[0-9.<>=~^xX*|\s-]+$/.test(s)) {
    const range = semver.validRange(s);
    if (range === null) {
      return {
        error: `"${raw}" is not a valid version range`,
        hint: 'write e.g. ">=6.1.0 <6.2.0", "6.8" (the 6.8 series) or "~6.1.0"',
      };
    }
    if (semver.minVersion(range) === null) {
      return {
        error: `version range "${raw}" matches no kernel version (its bounds exclude each other)`,
        hint: 'check the bounds: the lower one must be below the upper one, e.g. ">=6.1 <6.2"',
      };
    }
    return { kind: "range", range };
  }
  return {
    error: `"${raw}" is not "running", a kernel release or a version range`,
    hint: 'use "running", a release as `uname -r` prints it ("6.1.0-56-amd64", "2.6.37") or a range (">=6.1 <6.2")',
  };
}

/** Does a running kernel release satisfy the recipe's version spec? */
export function kernelReleaseMatches(spec: KernelVersionSpec, release: string): boolean {
  if (spec.kind === "running") return true;
  if (spec.kind === "exact") return release === spec.release || kernelSemver(release) === spec.release;
  const v = kernelSemver(release);
  return v !== undefined && semver.satisfies(v, spec.range);
}

/** A kernel.org tarball version: "2.6.37", "6.1", "6.1.55", "2.6.32.27" (no suffix). */
export const KERNELORG_VERSION_RE = /^\d+\.\d+(?:\.\d+){0,2}$/;

/** The kernel.org download URL of a release tarball (v2.6/ for 2.6.x, vN.x/ afterwards). */
export function kernelOrgUrl(version: string): string {
  const [major, minor] = version.split(".");
  const dir = major === "2" ? `v2.${minor}` : `v${major}.x`;
  return `https://cdn.kernel.org/pub/linux/kernel/${dir}/linux-${version}.tar.xz`;
}
