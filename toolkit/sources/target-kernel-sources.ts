import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { netmapVersionCode } from "../catalog/version-code.js";
import { BlockedError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { unpackArchive } from "../core/safe-archive.js";
import { parseMakefileVersion, parseVersionH } from "../host/kernel-facts.js";
import { type DownloadSpec, ensureDownload } from "./download.js";

/**
 * The kernel a build targets, and full sources of exactly that version.
 *
 * Decision: for a distro kernel, netmap builds its modules against the configured build dir (the
 * headers package: .config, Module.symvers, generated headers) and only *copies* driver sources
 * out of --kernel-sources before patching them. So the unpacked source tree needs no
 * `modules_prepare`; we only check that its version is the target's. `prepareKernelTree` is for
 * recipes that give a raw tree and no build dir: then that tree must become the build dir.
 */

export interface KernelTarget {
  /** The release modules are built for (`uname -r` form): vermagic must start with it. */
  release: string;
  /** The configured build dir, as a real path (root prefix applied). */
  buildDir: string;
  /** Full upstream version x.y.z (Debian 6.1.0-56-amd64 is 6.1.192). */
  version: string;
  /** netmap's configure code: `printf "%03x%02x"` of LINUX_VERSION_CODE (sublevel capped at 255). */
  versionCode: string;
  versionSource: "version.h" | "makefile" | "version-code";
  /** True when the version came from LINUX_VERSION_CODE only and its sublevel is the 255 cap. */
  sublevelCapped: boolean;
}

const VERSION_H = "include/generated/uapi/linux/version.h";
const UTSRELEASE_H = "include/generated/utsrelease.h";

const readIf = (p: string): string | null => (existsSync(p) ? readFileSync(p, "utf8") : null);

/** VERSION/PATCHLEVEL/SUBLEVEL of a tree's Makefile; Debian's headers Makefile is one `include` of the common one. */
export function treeMakefileVersion(dir: string): string | null {
  const mk = readIf(join(dir, "Makefile"));
  if (mk === null) return null;
  const direct = parseMakefileVersion(mk);
  if (direct) return direct;
  const inc = /^include\s+(\S+\/Makefile)\s*$/m.exec(mk)?.[1];
  if (!inc) return null;
  const incPath = isAbsolute(inc) ? inc : join(dir, inc);
  const text = readIf(incPath);
  return text === null ? null : parseMakefileVersion(text);
}

/**
 * Read the target kernel from its build dir. The version comes from version.h's
 * LINUX_VERSION_MAJOR/PATCHLEVEL/SUBLEVEL (kernels since 5.x), else the Makefile, else
 * LINUX_VERSION_CODE, whose sublevel saturates at 255 (6.1.192 reads fine, 4.9.337 would not).
 */
export function readKernelTarget(opts: { release: string; root?: string; buildDir?: string }): KernelTarget {
  const root = opts.root ?? "/";
  const buildDir = opts.buildDir ?? underRoot(root, `/lib/modules/${opts.release}/build`);
  if (!existsSync(buildDir)) {
    throw new BlockedError(
      `no kernel build dir for ${opts.release}: ${buildDir} does not exist`,
      `install the headers of that kernel (Debian/Ubuntu: apt install linux-headers-${opts.release}) or pass --kernel-dir`,
    );
  }
  const vh = readIf(join(buildDir, VERSION_H));
  if (vh === null || !existsSync(join(buildDir, ".config"))) {
    throw new BlockedError(
      `${buildDir} is not a configured kernel build dir (no .config or ${VERSION_H})`,
      "use the distro's headers package, or give the recipe a raw tree so netmap-provision prepares it (make olddefconfig modules_prepare)",
    );
  }
  const uts = readIf(join(buildDir, UTSRELEASE_H));
  const utsRelease = uts ? /UTS_RELEASE\s+"([^"]+)"/.exec(uts)?.[1] : undefined;
  if (utsRelease && utsRelease !== opts.release) {
    throw new BlockedError(
      `${buildDir} is the build dir of ${utsRelease}, not of ${opts.release}`,
      `install linux-headers-${opts.release}, or target ${utsRelease}`,
    );
  }
  let version: string | null = null;
  let versionSource: KernelTarget["versionSource"] = "version.h";
  const hasMacros = /LINUX_VERSION_SUBLEVEL/.test(vh);
  if (hasMacros) version = parseVersionH(vh);
  if (!version) {
    version = treeMakefileVersion(buildDir);
    versionSource = "makefile";
  }
  if (!version) {
    version = parseVersionH(vh);
    versionSource = "version-code";
  }
  if (!version) throw new BlockedError(`cannot read the kernel version from ${join(buildDir, VERSION_H)}`);
  const sublevelCapped = versionSource === "version-code" && version.endsWith(".255");
  return {
    release: opts.release,
    buildDir,
    version,
    versionCode: netmapVersionCode(version),
    versionSource,
    sublevelCapped,
  };
}

/** Where full sources came from. */
export interface KernelSources {
  dir: string;
  version: string;
  origin: "given" | "cache" | "unpacked";
  tarball?: string;
}

export type KernelTarballSpec = { path: string } | { url: string; sha256: string };

export interface KernelSourcesOptions {
  /** A tree the user gave (--kernel-sources): used as is, after a version check. */
  given?: string;
  /** A tarball to unpack; default the distro's /usr/src/linux-source-X.Y.tar.* */
  tarball?: KernelTarballSpec;
  cacheDir: string;
  exec: Exec;
  root?: string;
  offline?: boolean;
  logFile?: string;
}

/** Written into an unpacked tree before its rename: the tree is whole. */
export const KERNEL_SOURCES_MARKER = ".netmap-provision-unpacked";
const MARKER = KERNEL_SOURCES_MARKER;

/** Where a tarball of Linux `version` is unpacked once, for every build of that version. */
export const kernelSourcesCacheDir = (cacheDir: string, version: string): string =>
  join(cacheDir, "kernel-sources", version);

/** The unpacked tree of `version` when an earlier unpack published it whole (marker and Makefile version). */
export function cachedKernelTree(cacheDir: string, version: string): string | undefined {
  const dir = kernelSourcesCacheDir(cacheDir, version);
  return existsSync(join(dir, MARKER)) && treeMakefileVersion(dir) === version ? dir : undefined;
}

/** The private dir an unpack goes to before its rename into place (a placeholder in `plan`). */
export const kernelSourcesUnpackDir = (cacheDir: string): string =>
  join(cacheDir, "kernel-sources", ".unpack-<tmp>");

/** The distro source package tarball for a version, if installed. */
export function distroSourceTarball(version: string, root = "/"): string | undefined {
  const mm = version.split(".").slice(0, 2).join(".");
  for (const ext of ["tar.xz", "tar.bz2", "tar.gz", "tar.zst"]) {
    const p = underRoot(root, `/usr/src/linux-source-${mm}.${ext}`);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** The kernel tarball download a recipe needs, for the offline preflight. */
export function kernelSourcesDownloads(tarball: KernelTarballSpec | undefined): DownloadSpec[] {
  return tarball && "url" in tarball
    ? [{ url: tarball.url, sha256: tarball.sha256, label: "kernel source tarball" }]
    : [];
}

function mismatch(what: string, found: string, target: KernelTarget): BlockedError {
  const mm = target.version.split(".").slice(0, 2).join(".");
  return new BlockedError(
    `${what} holds Linux ${found}, but ${target.release} is ${target.version}: patched drivers must come from the same version`,
    `install the matching sources (Debian/Ubuntu: apt install linux-source-${mm}, after upgrading the kernel and headers to the same point release) or pass --kernel-sources with a ${target.version} tree`,
  );
}

/** A kernel tree is ~1.4 GB in ~80k members (6.1); twice that and more is not one. */
export const KERNEL_TARBALL_LIMITS = { maxBytes: 4 * 1024 * 1024 * 1024, maxMembers: 250_000 };

/**
 * Full sources of the target's version: a given tree, else the distro tarball (or a pinned
 * kernel.org one) unpacked once into `<cache>/kernel-sources/<x.y.z>/` and reused after. The
 * marker is written last, so a killed unpack is redone rather than trusted.
 */
export async function ensureKernelSources(
  target: KernelTarget,
  o: KernelSourcesOptions,
): Promise<KernelSources> {
  if (o.given) {
    if (!existsSync(join(o.given, "Makefile"))) {
      throw new UserError(`--kernel-sources ${o.given} is not a kernel source tree (no Makefile)`);
    }
    const v = treeMakefileVersion(o.given);
    if (v !== target.version) throw mismatch(o.given, v ?? "an unknown version", target);
    return { dir: o.given, version: v, origin: "given" };
  }
  const dir = kernelSourcesCacheDir(o.cacheDir, target.version);
  if (cachedKernelTree(o.cacheDir, target.version)) {
    return { dir, version: target.version, origin: "cache" };
  }
  let tarball: string | undefined;
  if (o.tarball && "url" in o.tarball) {
    tarball = (
      await ensureDownload({
        ...o.tarball,
        cacheDir: o.cacheDir,
        offline: o.offline,
        label: "kernel source tarball",
      })
    ).path;
  } else {
    tarball = o.tarball?.path ?? distroSourceTarball(target.version, o.root);
  }
  if (!tarball || !existsSync(tarball)) {
    const mm = target.version.split(".").slice(0, 2).join(".");
    throw new BlockedError(
      `no full sources of Linux ${target.version}: no unpacked tree given and ${tarball ?? `/usr/src/linux-source-${mm}.tar.xz`} is missing`,
      `install them (Debian/Ubuntu: apt install linux-source-${mm}) or pass --kernel-sources <tree of ${target.version}>`,
    );
  }
  mkdirSync(dirname(dir), { recursive: true });
  // Source packages and kernel.org tarballs wrap the tree in one folder (linux-source-6.1/).
  // Every member is checked before anything is extracted (toolkit/core/safe-archive.ts).
  const u = await unpackArchive(tarball, {
    what: "kernel source tarball",
    hint: `use the distro's source package or a kernel.org tarball as published (reinstall it, or remove ${tarball} to download it again), or pass --kernel-sources <tree of ${target.version}>`,
    limits: KERNEL_TARBALL_LIMITS,
    stripComponents: 1,
    exec: o.exec,
    parent: dirname(dir),
    prefix: ".unpack-",
    ...(o.logFile ? { logFile: o.logFile } : {}),
  });
  const tmp = u.dir;
  try {
    chmodSync(tmp, 0o755);
    const v = treeMakefileVersion(tmp);
    if (v !== target.version) throw mismatch(tarball, v ?? "an unknown version", target);
    // The marker goes in before the rename, so the rename is the one step that publishes the tree:
    // another process (a parallel test, a second `build`) either sees a whole tree or none.
    const st = statSync(tarball);
    writeFileSync(join(tmp, MARKER), `${tarball} ${st.size} ${st.mtimeMs}\n`);
    const published = () => existsSync(join(dir, MARKER)) && treeMakefileVersion(dir) === target.version;
    if (published()) return { dir, version: v, origin: "cache" };
    rmSync(dir, { recursive: true, force: true }); // an unmarked leftover of a killed unpack
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!published()) throw e; // lost the race to a process that published the same tree
      return { dir, version: v, origin: "cache" };
    }
    return { dir, version: v, origin: "unpacked", tarball };
  } finally {
    u.dispose();
  }
}

const PREPARED = ".netmap-provision-prepared";

/**
 * Turn a raw source tree into a build dir for out-of-tree modules: the target's .config (and
 * Module.symvers when known, so modversions match the running kernel), `make olddefconfig
 * modules_prepare`. Done once per config: a marker holds the config's sha256.
 */
export async function prepareKernelTree(o: {
  tree: string;
  config: string;
  symvers?: string;
  exec: Exec;
  jobs?: number;
  logFile?: string;
}): Promise<{ prepared: boolean }> {
  const configHash = createHash("sha256").update(readFileSync(o.config)).digest("hex");
  const marker = join(o.tree, PREPARED);
  if (readIf(marker)?.trim() === configHash) return { prepared: false };
  rmSync(marker, { force: true });
  copyFileSync(o.config, join(o.tree, ".config"));
  if (o.symvers) copyFileSync(o.symvers, join(o.tree, "Module.symvers"));
  const run = (argv: string[]) => o.exec.run(argv, { cwd: o.tree, logFile: o.logFile });
  // Debian's config names signing certificates that only exist in Debian's build tree.
  if (existsSync(join(o.tree, "scripts", "config"))) {
    await run([
      "scripts/config",
      "--set-str",
      "SYSTEM_TRUSTED_KEYS",
      "",
      "--set-str",
      "SYSTEM_REVOCATION_KEYS",
      "",
    ]);
  }
  await run(["make", "olddefconfig"]);
  await run(["make", `-j${o.jobs ?? 1}`, "modules_prepare"]);
  writeFileSync(marker, `${configHash}\n`);
  return { prepared: true };
}
