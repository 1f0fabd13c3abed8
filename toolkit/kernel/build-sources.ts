import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { BlockedError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { redactUrl } from "../core/redact.js";
import { type Compression, compressionOf, extractArgv, readArchiveMember } from "../core/safe-archive.js";
import type { Recipe } from "../recipe/schema.js";
import { cachedPath } from "../sources/download.js";
import { checkedGitRef, checkedGitUrl, GIT_ENV } from "../sources/git-args.js";
import {
  cachedKernelTree,
  ensureKernelSources,
  KERNEL_TARBALL_LIMITS,
  type KernelTarget,
  kernelSourcesCacheDir,
  kernelSourcesUnpackDir,
  treeMakefileVersion,
} from "../sources/target-kernel-sources.js";

/**
 * Full kernel sources to build a kernel from, by the recipe: a kernel.org tarball pinned by
 * sha256, a git tag, the distro's source package, or a local tree. Tarballs and clones are
 * unpacked once into `<cache>/kernel-sources/` and kept pristine: builds go to a separate O= dir,
 * so one source tree serves every config.
 */
export type KernelSourceSpec =
  | { kind: "kernelorg"; version: string; url: string; sha256: string }
  | { kind: "git"; url: string; tag: string }
  | { kind: "distro"; tarball: string }
  | { kind: "local"; path: string };

export interface ResolvedKernelSources {
  dir: string;
  /** x.y.z from the tree's Makefile. */
  version: string;
  /** Names the sources in cache keys: "kernelorg:<sha256>", "git:<url>#<tag>", "distro:<tarball>", "local:<path>". */
  id: string;
  origin: "given" | "cache" | "unpacked" | "cloned";
}

/** The source spec a recipe with kernel.build names; `root` finds the distro package tarball. */
export function kernelSourceSpec(recipe: Recipe, root = "/"): KernelSourceSpec {
  const s = recipe.kernel.sources;
  switch (s.kind) {
    case "kernelorg":
      return { kind: "kernelorg", version: s.version, url: s.url as string, sha256: s.sha256 };
    case "git":
      return { kind: "git", url: s.url, tag: s.tag };
    case "local":
      return { kind: "local", path: s.path };
    case "running-headers": {
      const pkg = s.package && s.package !== "auto" ? s.package : undefined;
      const names = pkg ? [pkg] : [];
      for (const n of names)
        for (const ext of ["tar.xz", "tar.bz2", "tar.gz"]) {
          const p = underRoot(root, `/usr/src/${n}.${ext}`);
          if (existsSync(p)) return { kind: "distro", tarball: p };
        }
      throw new BlockedError(
        `kernel.sources names the distro package ${pkg ?? "(none)"}, whose tarball is not in /usr/src`,
        `install it (Debian: apt-get install ${pkg ?? "linux-source-<x.y>"}) or give kernel.sources kind kernelorg, git or local`,
      );
    }
  }
}

const CLONED = ".netmap-provision-cloned";

/** Sources on disk for `spec`, unpacked or cloned once. */
export async function ensureBuildSources(
  spec: KernelSourceSpec,
  o: { cacheDir: string; exec: Exec; offline?: boolean; logFile?: string; expectVersion?: string },
): Promise<ResolvedKernelSources> {
  const check = (dir: string, what: string): string => {
    const v = treeMakefileVersion(dir);
    if (!v) throw new UserError(`${what} (${dir}) is not a kernel source tree: no VERSION in its Makefile`);
    if (o.expectVersion && v !== o.expectVersion)
      throw new UserError(
        `${what} holds Linux ${v}, but the recipe pins ${o.expectVersion}`,
        "fix kernel.version or kernel.sources so they name the same kernel",
      );
    return v;
  };
  if (spec.kind === "local") {
    if (!existsSync(join(spec.path, "Makefile")))
      throw new UserError(`kernel.sources.path ${spec.path} is not a kernel source tree (no Makefile)`);
    return {
      dir: spec.path,
      version: check(spec.path, "the local tree"),
      id: `local:${spec.path}`,
      origin: "given",
    };
  }
  if (spec.kind === "git") {
    const url = checkedGitUrl(spec.url, "kernel.sources.url");
    const tag = checkedGitRef(spec.tag, "kernel.sources.tag");
    // The cache dir, the id and the marker name the URL without its password.
    const shown = redactUrl(url);
    const id = `git:${shown}#${tag}`;
    const dir = kernelGitCacheDir(o.cacheDir, url, tag);
    if (existsSync(join(dir, CLONED)))
      return { dir, version: check(dir, "the cached clone"), id, origin: "cache" };
    if (o.offline)
      throw new BlockedError(
        `offline: the kernel tag ${tag} of ${shown} is not cloned in the cache`,
        "run once with network access, or give kernel.sources kind local",
      );
    const tmp = kernelCloneTmpDir(o.cacheDir, randomBytes(4).toString("hex"));
    mkdirSync(join(o.cacheDir, "kernel-sources"), { recursive: true });
    try {
      // A tag pins the tree; depth 1 skips the history (gigabytes for linux.git). The URL comes
      // after `--`; the clone forgets its remote, whose URL may carry a password.
      await o.exec.run(kernelCloneArgv(url, tag, tmp), { logFile: o.logFile, env: GIT_ENV });
      await o.exec.run(kernelRemoteRemoveArgv(tmp), { logFile: o.logFile, env: GIT_ENV });
      const v = check(tmp, `tag ${tag}`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      writeFileSync(join(dir, CLONED), `${shown} ${tag}\n`);
      return { dir, version: v, id, origin: "cloned" };
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  // Tarballs: the shared unpack-once cache of toolkit/sources (also used by netmap builds).
  const version = spec.kind === "kernelorg" ? fullVersion(spec.version) : o.expectVersion;
  const target = { release: version ?? "", version: version ?? "" } as KernelTarget;
  if (!version && spec.kind === "distro") {
    // A distro tarball's version is only known inside it: unpack to learn it, keyed by the tarball.
    return unpackUnknownVersion(spec.tarball, o);
  }
  const r = await ensureKernelSources(target, {
    tarball: spec.kind === "kernelorg" ? { url: spec.url, sha256: spec.sha256 } : { path: spec.tarball },
    cacheDir: o.cacheDir,
    exec: o.exec,
    offline: o.offline,
    logFile: o.logFile,
  });
  return {
    dir: r.dir,
    version: r.version,
    id: spec.kind === "kernelorg" ? `kernelorg:${spec.sha256}` : `distro:${spec.tarball}`,
    origin: r.origin === "given" ? "given" : r.origin,
  };
}

/** Where the clone of a kernel tag is kept; named by the URL without its password. */
export function kernelGitCacheDir(cacheDir: string, url: string, tag: string): string {
  return join(cacheDir, "kernel-sources", `git-${safeName(redactUrl(url))}-${safeName(tag)}`);
}

/** The clone of a kernel tag, as run and as `plan` shows it. */
export function kernelCloneArgv(url: string, tag: string, dir: string): string[] {
  return ["git", "clone", "--quiet", "--depth", "1", "--branch", tag, "--", url, dir];
}

/** The private dir a clone goes to before its rename into place (`<tmp>` in `plan`). */
export const kernelCloneTmpDir = (cacheDir: string, tmp = "<tmp>"): string =>
  join(cacheDir, "kernel-sources", `.clone-${tmp}`);

/** The clone forgets its remote (the URL may carry a password). */
export const kernelRemoteRemoveArgv = (dir: string): string[] => [
  "git",
  "-C",
  dir,
  "remote",
  "remove",
  "origin",
];

/** Where the sources of a spec are, or will be once fetched: read-only (no download, no unpack, no clone). */
export interface LocatedKernelSources {
  spec: KernelSourceSpec;
  /** The tree builds run in (given, cached, or where the fetch puts it). */
  dir: string;
  /** x.y.z, when known without fetching (a local tree, a cached one, a pin, a distro tarball's Makefile). */
  version?: string;
  /** As ResolvedKernelSources.id: names the sources in the kernel build's cache key. */
  id: string;
  /** On disk and whole: fetching runs nothing. */
  ready: boolean;
  /** Tarballs: the file the fetch unpacks and the compression tar is told. */
  tarball?: { file: string; compression: Compression };
}

/**
 * Locate the sources of `spec` as ensureBuildSources will use them, without changing anything.
 * `expectVersion` is a version pinned elsewhere (the recipe): the version of a git tag not cloned yet.
 */
export async function locateBuildSources(
  spec: KernelSourceSpec,
  o: { cacheDir: string; expectVersion?: string },
): Promise<LocatedKernelSources> {
  if (spec.kind === "local") {
    const v = existsSync(join(spec.path, "Makefile")) ? treeMakefileVersion(spec.path) : null;
    return { spec, dir: spec.path, ...(v ? { version: v } : {}), id: `local:${spec.path}`, ready: true };
  }
  if (spec.kind === "git") {
    const url = checkedGitUrl(spec.url, "kernel.sources.url");
    const tag = checkedGitRef(spec.tag, "kernel.sources.tag");
    const dir = kernelGitCacheDir(o.cacheDir, url, tag);
    const ready = existsSync(join(dir, CLONED));
    const v = ready ? treeMakefileVersion(dir) : o.expectVersion;
    return { spec, dir, ...(v ? { version: v } : {}), id: `git:${redactUrl(url)}#${tag}`, ready };
  }
  const version =
    spec.kind === "kernelorg" ? fullVersion(spec.version) : await distroTarballVersion(spec.tarball);
  const file = spec.kind === "kernelorg" ? cachedPath(o.cacheDir, spec.sha256) : spec.tarball;
  const compression = compressionOf(existsSync(file) || spec.kind === "distro" ? file : spec.url);
  return {
    spec,
    dir: kernelSourcesCacheDir(o.cacheDir, version),
    version,
    id: spec.kind === "kernelorg" ? `kernelorg:${spec.sha256}` : `distro:${spec.tarball}`,
    ready: cachedKernelTree(o.cacheDir, version) !== undefined,
    tarball: { file, compression },
  };
}

/** The commands ensureBuildSources runs to fetch located sources ([] when they are ready). */
export function fetchSourcesArgvs(loc: LocatedKernelSources, cacheDir: string): string[][] {
  if (loc.ready) return [];
  if (loc.spec.kind === "git") {
    const tmp = kernelCloneTmpDir(cacheDir);
    return [kernelCloneArgv(loc.spec.url, loc.spec.tag, tmp), kernelRemoteRemoveArgv(tmp)];
  }
  // Tarballs: toolkit/core/safe-archive.ts checks every member, then extracts into a private dir.
  return loc.tarball
    ? [extractArgv(loc.tarball.file, kernelSourcesUnpackDir(cacheDir), loc.tarball.compression, 1)]
    : [];
}

/** kernel.org's "6.1" tarball is Linux 6.1.0 in the Makefile's terms (SUBLEVEL = 0). */
export const fullVersion = (v: string): string => (v.split(".").length === 2 ? `${v}.0` : v);

const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, "_").slice(-80);

/** Read the tarball's top Makefile (the tree sits in one folder named like the file) to learn its version. */
async function unpackUnknownVersion(
  tarball: string,
  o: { cacheDir: string; exec: Exec; offline?: boolean; logFile?: string },
): Promise<ResolvedKernelSources> {
  return ensureBuildSources(
    { kind: "distro", tarball },
    { ...o, expectVersion: await distroTarballVersion(tarball) },
  );
}

/** The x.y.z of a distro source tarball, from its top Makefile (read from the stream, nothing unpacked). */
export async function distroTarballVersion(tarball: string): Promise<string> {
  const top = basename(tarball).replace(/\.tar\.(xz|bz2|gz|zst)$/, "");
  // Read from the decompressed stream without tar, stopping at the member: seconds, not a full
  // decompression, and bounded (the same member checks and caps as an unpack).
  const makefile = await readArchiveMember(tarball, `${top}/Makefile`, {
    what: "kernel source tarball",
    hint: "unpack it yourself and give kernel.sources kind local",
    limits: KERNEL_TARBALL_LIMITS,
    maxBytes: 1024 * 1024,
  });
  const r = { stdout: makefile?.toString("utf8") ?? "" };
  const m = /^VERSION = (\d+)\nPATCHLEVEL = (\d+)\nSUBLEVEL = (\d+)/m.exec(r.stdout);
  if (!m)
    throw new UserError(
      `cannot read the kernel version from ${top}/Makefile inside ${tarball}`,
      "unpack it yourself and give kernel.sources kind local",
    );
  return `${m[1]}.${m[2]}.${m[3]}`;
}
