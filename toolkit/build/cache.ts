import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Exec } from "../core/exec.js";
import { type BuildManifest, readManifest, writeManifest } from "./manifest.js";

/**
 * The build cache: `<cache>/builds/<key>/` holds a finished build's artifacts, manifest, configure
 * report and logs. The key covers everything that changes the bytes of the modules, so a hit can
 * skip configure and make entirely.
 */

export interface BuildKeyInput {
  kernelRelease: string;
  /** sha256 of the kernel build dir's .config. */
  configHash: string;
  /** commit:<sha>, sha256:<hex> or tree:<hex>. */
  netmapId: string;
  drivers: readonly string[];
  options: readonly string[];
  suffix?: string;
  moduleName: string;
  /** First line of `cc --version`. */
  compiler: string;
  layout?: string;
  apps?: readonly string[];
  /** Drivers allowed to fall back to emulated mode: changes which modules a build yields. */
  emulatedOk?: boolean | readonly string[];
  /** Pinned external archives (token -> sha256). */
  extArchives?: Record<string, string>;
}

/** JSON with sorted object keys, so the same input always hashes the same. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** The cache key: sha256 of the canonical JSON of the inputs (driver list sorted: order is irrelevant). */
export function buildKey(i: BuildKeyInput): string {
  const norm = {
    ...i,
    drivers: [...i.drivers].sort(),
    apps: i.apps ? [...i.apps].sort() : undefined,
    emulatedOk: Array.isArray(i.emulatedOk) ? [...i.emulatedOk].sort() : i.emulatedOk,
  };
  return createHash("sha256").update(canonicalJson(norm)).digest("hex");
}

/** sha256 of a kernel build dir's .config. */
export function kernelConfigHash(buildDir: string): string {
  return createHash("sha256")
    .update(readFileSync(join(buildDir, ".config")))
    .digest("hex");
}

/** The compiler's first `--version` line: a compiler upgrade changes the key. */
export async function compilerIdentity(exec: Exec, cc = "cc"): Promise<string> {
  const r = await exec.run([cc, "--version"], { reject: false });
  return r.exitCode === 0 ? (r.stdout.split("\n")[0]?.trim() ?? cc) : `${cc}: not found`;
}

export const buildCacheDir = (cacheDir: string, key: string): string => join(cacheDir, "builds", key);

export interface CachedBuild {
  key: string;
  dir: string;
  /** Artifact paths in the manifest are relative to this. */
  artifactsDir: string;
  manifest: BuildManifest;
}

/** A complete cached build, or undefined. Complete = manifest.json present (it is written last). */
export function lookupBuild(cacheDir: string, key: string): CachedBuild | undefined {
  const dir = buildCacheDir(cacheDir, key);
  const file = join(dir, "manifest.json");
  if (!existsSync(file)) return undefined;
  const manifest = readManifest(file);
  const artifactsDir = join(dir, "artifacts");
  const all = [...manifest.modules, ...manifest.apps];
  if (!all.every((a) => existsSync(join(artifactsDir, a.path)))) return undefined;
  return { key, dir, artifactsDir, manifest };
}

/**
 * Copy a finished build into the cache: artifacts under artifacts/, extra files (configure
 * report, logs) beside them, manifest.json last, in a temp dir renamed into place.
 */
export function storeBuild(o: {
  cacheDir: string;
  key: string;
  buildDir: string;
  manifest: BuildManifest;
  /** name in the cache dir -> source path (file or folder). */
  extras?: Record<string, string>;
}): CachedBuild {
  const dir = buildCacheDir(o.cacheDir, o.key);
  const tmp = `${dir}.tmp-${randomBytes(4).toString("hex")}`;
  mkdirSync(tmp, { recursive: true });
  try {
    for (const a of [...o.manifest.modules, ...o.manifest.apps]) {
      const dest = join(tmp, "artifacts", a.path);
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(join(o.buildDir, a.path), dest);
    }
    for (const [name, src] of Object.entries(o.extras ?? {})) {
      if (existsSync(src)) cpSync(src, join(tmp, name), { recursive: true });
    }
    const manifest = { ...o.manifest, cacheKey: o.key };
    writeManifest(tmp, manifest);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dirname(dir), { recursive: true });
    renameSync(tmp, dir);
    return { key: o.key, dir, artifactsDir: join(dir, "artifacts"), manifest };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
