import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DriverCatalog } from "../catalog/drivers.js";
import { BlockedError, UserError } from "../core/errors.js";
import { underRoot } from "../core/paths.js";
import { type Compression, compressionOf } from "../core/safe-archive.js";
import { readNicFacts } from "../host/nics.js";
import { parseKernelVersion } from "../recipe/kernel-version.js";
import type { Recipe } from "../recipe/schema.js";
import {
  distroSourceTarball,
  KERNEL_SOURCES_MARKER,
  type KernelTarballSpec,
  type KernelTarget,
  kernelSourcesCacheDir,
} from "../sources/target-kernel-sources.js";

/**
 * The build's resolve: which kernel release a build targets, its build dir, where its full
 * sources come from and where they are unpacked, computed ONCE from the recipe and the host.
 * `build` runs on it and `plan` prints it, so what the plan names is what the build uses.
 */

/** What a build needs answered before its first step (the request fields resolve reads). */
export interface ResolveRequest {
  recipe: Recipe;
  cacheDir: string;
  /** Host root prefix for fixture trees ("/" on a real host). */
  root?: string;
  /** Target release; default: the build dir's (kernel.buildDir), the recipe's exact one, or `uname -r`. */
  release?: string;
}

/** UTS_RELEASE of a configured build dir. */
export function buildDirRelease(dir: string): string | undefined {
  const p = join(dir, "include/generated/utsrelease.h");
  if (!existsSync(p)) return undefined;
  return /UTS_RELEASE\s+"([^"]+)"/.exec(readFileSync(p, "utf8"))?.[1];
}

/** Which release the build targets, from the request, the build dir, the recipe or the running kernel. */
export function targetRelease(req: ResolveRequest): string {
  if (req.release) return req.release;
  const spec = parseKernelVersion(req.recipe.kernel.version);
  const fromDir = req.recipe.kernel.buildDir ? buildDirRelease(req.recipe.kernel.buildDir) : undefined;
  if (fromDir) {
    if ("kind" in spec && spec.kind === "exact" && spec.release !== fromDir) {
      throw new UserError(
        `kernel.buildDir ${req.recipe.kernel.buildDir} is for ${fromDir}, but kernel.version is ${spec.release}`,
        "point --kernel-dir at the build dir of the release the recipe targets",
      );
    }
    return fromDir;
  }
  if ("kind" in spec && spec.kind === "exact") return spec.release;
  const p = underRoot(req.root ?? "/", "/proc/sys/kernel/osrelease");
  const running = existsSync(p) ? readFileSync(p, "utf8").trim() : "";
  if (!running)
    throw new BlockedError("cannot read the running kernel release", "pass --kernel-dir <build dir>");
  return running;
}

/** The recipe's driver list; "auto" = the catalog drivers this host's NICs use. */
export function requestedDrivers(
  req: ResolveRequest,
  catalog: DriverCatalog,
  target: KernelTarget,
): string[] {
  if (req.recipe.drivers !== "auto") return [...req.recipe.drivers];
  const nics = readNicFacts(
    req.root ?? "/",
    { release: target.release, version: target.version },
    {
      tokenForModule: (m) => catalog.byModule(m)?.token ?? null,
      nativeOn: (t, v) => catalog.nativeOn(t, v),
    },
  );
  return [...new Set(nics.flatMap((n) => (n.netmapDriver ? [n.netmapDriver] : [])))].sort();
}

/** Where full kernel sources come from, per the recipe. */
export function kernelSourcesPlan(
  req: ResolveRequest,
  target: KernelTarget,
): { given?: string; tarball?: KernelTarballSpec } {
  const s = req.recipe.kernel.sources;
  switch (s.kind) {
    case "local":
      return { given: s.path };
    case "kernelorg":
      return { tarball: { url: s.url as string, sha256: s.sha256 } };
    case "git":
      throw new UserError(
        "kernel.sources kind git is not supported by `build` yet",
        "unpack the tag yourself and pass --kernel-sources <tree>, or use the distro's source package",
      );
    case "running-headers": {
      const pkg = s.package;
      if (pkg && pkg !== "auto") {
        const p = ["tar.xz", "tar.bz2", "tar.gz"]
          .map((e) => underRoot(req.root ?? "/", `/usr/src/${pkg}.${e}`))
          .find((f) => existsSync(f));
        return p ? { tarball: { path: p } } : {};
      }
      const t = distroSourceTarball(target.version, req.root);
      return t ? { tarball: { path: t } } : {};
    }
  }
}

/** Where a build's full kernel sources are, or will be once the sources step unpacked them. */
export interface KernelSourcesResolution {
  /** The tree configure gets as --kernel-sources (none: no sources known for this kernel). */
  dir?: string;
  /** A tree given as it is (kernel.sources local / --kernel-sources): nothing is unpacked. */
  given?: string;
  /** The tarball the sources step unpacks into `dir` unless an earlier unpack is there already. */
  tarball?: KernelTarballSpec;
  /** The tarball's file, when it is known before any download (a distro package, a cached one). */
  tarballFile?: string;
  compression?: Compression;
  /** The tarball was unpacked into `dir` by an earlier build: nothing to unpack. */
  cached?: boolean;
}

/** Resolve the kernel sources of `target` for this recipe (no download, no unpack). */
export function resolveKernelSources(
  req: ResolveRequest,
  target: { version: string },
): KernelSourcesResolution {
  const p = kernelSourcesPlan(req, target as KernelTarget);
  if (p.given) return { dir: p.given, given: p.given };
  const dir = kernelSourcesCacheDir(req.cacheDir, target.version);
  const cached = existsSync(join(dir, KERNEL_SOURCES_MARKER));
  if (!p.tarball) return cached ? { dir, cached } : {};
  const file =
    "path" in p.tarball
      ? p.tarball.path
      : join(req.cacheDir, "downloads", "sha256", p.tarball.sha256.toLowerCase());
  return {
    dir,
    cached,
    tarball: p.tarball,
    tarballFile: file,
    compression: compressionOf(existsSync(file) || "path" in p.tarball ? file : p.tarball.url),
  };
}

/**
 * The suffix `kernel.localversion` puts on a built kernel's release: always one leading "-"
 * (`np` and `-np` both give 6.1.192-np), as CONFIG_LOCALVERSION is set by the kernel phase.
 */
export const localversionSuffix = (localversion: string | undefined): string =>
  localversion === undefined ? "" : `-${localversion.replace(/^-+/, "")}`;

/** The release a recipe that builds its kernel will boot (x.y.z of its sources, then localversion). */
export function builtKernelRelease(recipe: Recipe): string {
  const src = recipe.kernel.sources;
  const spec = parseKernelVersion(recipe.kernel.version);
  const version =
    src.kind === "kernelorg"
      ? src.version
      : "kind" in spec && spec.kind === "exact"
        ? spec.release.replace(/[^0-9.].*$/, "")
        : recipe.kernel.version;
  return `${version}${localversionSuffix(recipe.kernel.localversion)}`;
}
