import {
  hostExists,
  hostIsDir,
  hostJoin,
  listHostDir,
  readHostLine,
  readHostText,
  resolveHostPath,
} from "./host-fs.js";
import { isKernelRelease } from "./release-name.js";

/** How the distro ships its modules: netmap's modules must be installed the same way. */
export type ModuleCompression = "none" | "xz" | "zst" | "gz" | "mixed" | "unknown";

export interface BuildDirFacts {
  /** /lib/modules/<release>/build */
  path: string;
  /** Where the link points (host path), or null when it is missing or dangling. */
  resolved: string | null;
  exists: boolean;
  hasConfig: boolean;
  /** include/generated/uapi/linux/version.h: written by `make prepare`; netmap's configure needs it. */
  hasVersionH: boolean;
}

/**
 * Where full sources of the running release are, if anywhere:
 * - module-source: /lib/modules/<release>/source is a full tree (self-built kernels);
 * - build-dir: the build dir itself is a full tree;
 * - unpacked: a /usr/src/linux-* tree whose Makefile version matches;
 * - tarball: the distro's /usr/src/linux-source-X.Y.tar.* is there but not unpacked;
 * - none.
 */
export type SourcesKind = "module-source" | "build-dir" | "unpacked" | "tarball" | "none";

export interface SourcesFacts {
  kind: SourcesKind;
  path: string | null;
  /** The version the tree or tarball carries (x.y.z for trees, x.y for tarballs). */
  version: string | null;
  /** Human explanation of what was found or not found. */
  detail: string;
}

export interface KernelFacts {
  /** `uname -r`. */
  release: string;
  /** Upstream x.y.z; Debian's 6.1.0-56-amd64 is really 6.1.192, which only version.h tells. */
  version: string | null;
  versionSource: "version.h" | "proc-version" | "version-signature" | "release" | null;
  moduleDir: string;
  moduleDirExists: boolean;
  moduleCompression: ModuleCompression;
  build: BuildDirFacts;
  sources: SourcesFacts;
}

/**
 * The running release, as `uname -r` prints it; null when missing or not a release at all (a host
 * tree's osrelease of `../../../../etc` must never become a path such as /lib/modules/<release>).
 */
export function readKernelRelease(root: string): string | null {
  const r = readHostLine(root, "/proc/sys/kernel/osrelease");
  return r && isKernelRelease(r) ? r : null;
}

/** The compression suffix shared by the modules listed in modules.dep (first field of each line). */
export function detectModuleCompression(modulesDep: string | null): ModuleCompression {
  if (modulesDep === null) return "unknown";
  const seen = new Set<ModuleCompression>();
  for (const line of modulesDep.split("\n")) {
    const file = line.split(":")[0]?.trim();
    if (!file) continue;
    if (file.endsWith(".ko")) seen.add("none");
    else if (file.endsWith(".ko.xz")) seen.add("xz");
    else if (file.endsWith(".ko.zst")) seen.add("zst");
    else if (file.endsWith(".ko.gz")) seen.add("gz");
  }
  if (seen.size === 0) return "unknown";
  if (seen.size > 1) return "mixed";
  return [...seen][0] as ModuleCompression;
}

/** x.y.z from version.h (LINUX_VERSION_MAJOR/PATCHLEVEL/SUBLEVEL, else LINUX_VERSION_CODE). */
export function parseVersionH(text: string): string | null {
  const num = (name: string) => text.match(new RegExp(`#define\\s+${name}\\s+(\\d+)`))?.[1];
  const [major, minor, sub] = [
    num("LINUX_VERSION_MAJOR"),
    num("LINUX_VERSION_PATCHLEVEL"),
    num("LINUX_VERSION_SUBLEVEL"),
  ];
  if (major && minor && sub) return `${major}.${minor}.${sub}`;
  const code = Number(num("LINUX_VERSION_CODE"));
  // The code caps the sublevel at 255, so it is a lower bound on very long stable series.
  if (code > 0) return `${code >> 16}.${(code >> 8) & 0xff}.${code & 0xff}`;
  return null;
}

/** VERSION/PATCHLEVEL/SUBLEVEL from a kernel tree's top Makefile. */
export function parseMakefileVersion(text: string): string | null {
  const v = (name: string) => text.match(new RegExp(`^${name}\\s*=\\s*(\\d+)`, "m"))?.[1];
  const [major, minor, sub] = [v("VERSION"), v("PATCHLEVEL"), v("SUBLEVEL")];
  return major && minor && sub !== undefined ? `${major}.${minor}.${sub}` : null;
}

/**
 * x.y.z from /proc/version. Its format is `Linux version <release> (<builder>) (<compiler>) <uts>`
 * and Debian puts the upstream version at the end of <uts>: `#1 SMP PREEMPT_DYNAMIC Debian
 * 6.1.192-3 (2026-...)`. The compiler part says "Debian" too (`gcc-12 (Debian 12.2.0-14) 12.2.0`,
 * which once read as kernel 12.2.0): every parenthesised part is dropped before looking. When
 * `release` is given, a version of another series (x.y) than the release is not believed.
 */
export function parseProcVersion(text: string, release?: string): string | null {
  let outside = text;
  // Innermost groups first: the compiler part nests (gcc-12 (Debian ...) 12.2.0, GNU ld (...) 2.40).
  for (let i = 0; i < 8 && /\([^()]*\)/.test(outside); i++) outside = outside.replace(/\([^()]*\)/g, " ");
  const version = outside.match(/\bDebian\s+(\d+\.\d+\.\d+)(?:[-+~][\w.+~]*)?(?:\s|$)/)?.[1] ?? null;
  if (version === null || release === undefined) return version;
  const series = versionFromRelease(release);
  return series === null || majorMinor(series) === majorMinor(version) ? version : null;
}

/** x.y.z from Ubuntu's /proc/version_signature ("Ubuntu 6.8.0-31.31-generic 6.8.1"): its last field. */
export function parseVersionSignature(text: string, release?: string): string | null {
  const version = text.trim().match(/\s(\d+\.\d+\.\d+)$/)?.[1] ?? null;
  if (version === null || release === undefined) return version;
  const series = versionFromRelease(release);
  return series === null || majorMinor(series) === majorMinor(version) ? version : null;
}

const majorMinor = (v: string): string => v.split(".").slice(0, 2).join(".");

/** x.y.z (or x.y.0) from a release string such as 6.18.44-fc-v782 or 6.1.0-56-amd64. */
export function versionFromRelease(release: string): string | null {
  const m = release.match(/^(\d+)\.(\d+)(?:\.(\d+))?/);
  return m ? `${m[1]}.${m[2]}.${m[3] ?? "0"}` : null;
}

/** A full source tree has the top Makefile and .c sources (headers packages ship neither kernel/ nor drivers/*.c). */
function isFullTree(root: string, dir: string): boolean {
  return (
    hostExists(root, hostJoin(dir, "Makefile")) &&
    hostIsDir(root, hostJoin(dir, "drivers/net")) &&
    hostIsDir(root, hostJoin(dir, "kernel"))
  );
}

function findSources(
  root: string,
  moduleDir: string,
  build: BuildDirFacts,
  version: string | null,
): SourcesFacts {
  const treeVersion = (dir: string) => {
    const mk = readHostText(root, hostJoin(dir, "Makefile"));
    return mk === null ? null : parseMakefileVersion(mk);
  };
  const moduleSource = resolveHostPath(root, hostJoin(moduleDir, "source"));
  if (moduleSource && isFullTree(root, moduleSource)) {
    return {
      kind: "module-source",
      path: moduleSource,
      version: treeVersion(moduleSource),
      detail: `${moduleDir}/source is a full source tree`,
    };
  }
  if (build.resolved && isFullTree(root, build.resolved)) {
    return {
      kind: "build-dir",
      path: build.resolved,
      version: treeVersion(build.resolved),
      detail: "the build directory is a full source tree",
    };
  }
  const srcEntries = listHostDir(root, "/usr/src");
  const mismatched: string[] = [];
  for (const name of srcEntries) {
    if (!/^linux-(source-)?\d/.test(name) || name.includes(".tar")) continue;
    const dir = hostJoin("/usr/src", name);
    if (!isFullTree(root, dir)) continue;
    const v = treeVersion(dir);
    if (v !== null && version !== null && v === version) {
      return { kind: "unpacked", path: dir, version: v, detail: `${dir} is a full tree of ${v}` };
    }
    mismatched.push(`${dir} (${v ?? "unknown version"})`);
  }
  if (version !== null) {
    const mm = majorMinor(version);
    for (const ext of ["tar.xz", "tar.bz2", "tar.gz"]) {
      const tarball = `/usr/src/linux-source-${mm}.${ext}`;
      if (hostExists(root, tarball)) {
        return {
          kind: "tarball",
          path: tarball,
          version: mm,
          detail: `${tarball} is present but not unpacked (its sublevel is only known after unpacking)`,
        };
      }
    }
  }
  const others = mismatched.length ? `; trees of other versions: ${mismatched.join(", ")}` : "";
  return {
    kind: "none",
    path: null,
    version: null,
    detail: `no full sources of ${version ?? "the running kernel"} found (looked at ${moduleDir}/source, the build dir, /usr/src/linux-*)${others}`,
  };
}

/** Everything about the running kernel that building modules for it depends on. Reads files only. */
export function readKernelFacts(root: string): KernelFacts {
  const release = readKernelRelease(root) ?? "unknown";
  const moduleDir = `/lib/modules/${release}`;
  const buildPath = `${moduleDir}/build`;
  const resolved = resolveHostPath(root, buildPath);
  const build: BuildDirFacts = {
    path: buildPath,
    resolved,
    exists: resolved !== null && hostIsDir(root, resolved),
    hasConfig: resolved !== null && hostExists(root, hostJoin(resolved, ".config")),
    hasVersionH:
      resolved !== null && hostExists(root, hostJoin(resolved, "include/generated/uapi/linux/version.h")),
  };

  // version.h is exact; /proc/version (Debian) and /proc/version_signature (Ubuntu) name the
  // upstream version; the release is a guess (Debian's 6.1.0-56 is 6.1.192).
  const versionH =
    build.hasVersionH && resolved
      ? readHostText(root, hostJoin(resolved, "include/generated/uapi/linux/version.h"))
      : null;
  const procVersion = readHostText(root, "/proc/version");
  const signature = readHostText(root, "/proc/version_signature");
  const candidates: Array<[NonNullable<KernelFacts["versionSource"]>, string | null]> = [
    ["version.h", versionH && parseVersionH(versionH)],
    ["proc-version", procVersion && parseProcVersion(procVersion, release)],
    ["version-signature", signature && parseVersionSignature(signature, release)],
    ["release", versionFromRelease(release)],
  ];
  const [versionSource, version] = candidates.find(([, v]) => v) ?? [null, null];

  return {
    release,
    version,
    versionSource,
    moduleDir,
    moduleDirExists: hostIsDir(root, moduleDir),
    moduleCompression: detectModuleCompression(readHostText(root, `${moduleDir}/modules.dep`)),
    build,
    sources: findSources(root, moduleDir, build, version),
  };
}
