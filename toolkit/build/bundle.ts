import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { BlockedError, StepError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { cachedPath, hashFile } from "../sources/download.js";
import { type BuildManifest, readManifest, writeManifest } from "./manifest.js";

/**
 * Build bundles: one tar with the artifacts, manifest.json and the resolved recipe, so a fleet
 * builds once and `up --from FILE` installs elsewhere after checking every sha256 and that the
 * host runs the kernel the modules were built for.
 *
 *   BUNDLE                 format marker
 *   manifest.json          paths relative to artifacts/
 *   recipe.resolved.json
 *   artifacts/<path>       every module and app in the manifest
 */

const FORMAT = "netmap-provision build bundle 1\n";

/** Write a build bundle to `file` (through `tar`, argv only). */
export async function writeBundle(o: {
  file: string;
  artifactsDir: string;
  manifest: BuildManifest;
  recipe: unknown;
  exec: Exec;
}): Promise<string> {
  const out = resolve(o.file);
  const stage = mkdtempSync(join(tmpdir(), "netmap-provision-bundle-"));
  try {
    for (const a of [...o.manifest.modules, ...o.manifest.apps]) {
      const dest = join(stage, "artifacts", a.path);
      mkdirSync(dirname(dest), { recursive: true });
      cpSync(join(o.artifactsDir, a.path), dest);
    }
    writeManifest(stage, o.manifest);
    writeFileSync(join(stage, "recipe.resolved.json"), `${JSON.stringify(o.recipe, null, 2)}\n`);
    writeFileSync(join(stage, "BUNDLE"), FORMAT);
    mkdirSync(dirname(out), { recursive: true });
    const tmp = `${out}.tmp-${randomBytes(4).toString("hex")}`;
    await o.exec.run([
      "tar",
      "-cf",
      tmp,
      "-C",
      stage,
      "BUNDLE",
      "manifest.json",
      "recipe.resolved.json",
      "artifacts",
    ]);
    await o.exec.run(["mv", "-f", tmp, out]);
    return out;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export interface OpenedBundle {
  /** Where it was unpacked (the caller removes it when done). */
  dir: string;
  artifactsDir: string;
  manifest: BuildManifest;
  recipe: unknown;
}

/**
 * Unpack a bundle and check it: the format marker, every artifact's sha256, and (when given)
 * that the modules were built for `release`. Throws before anything could be installed.
 */
export async function readBundle(
  file: string,
  o: { exec: Exec; release?: string; into?: string },
): Promise<OpenedBundle> {
  if (!existsSync(file))
    throw new UserError(`bundle ${file} does not exist`, "pass the file written by `build --out`");
  const dir = o.into ?? mkdtempSync(join(tmpdir(), "netmap-provision-from-"));
  mkdirSync(dir, { recursive: true });
  // GNU tar refuses members with ".." and strips leading "/": the bundle cannot write outside dir.
  const r = await o.exec.run(["tar", "-xf", file, "-C", dir, "--no-same-owner"], { reject: false });
  if (
    r.exitCode !== 0 ||
    !existsSync(join(dir, "BUNDLE")) ||
    readFileSync(join(dir, "BUNDLE"), "utf8") !== FORMAT
  ) {
    throw new UserError(
      `${file} is not a netmap-provision build bundle`,
      "use a file written by `netmap-provision build --out`",
    );
  }
  const manifest = readManifest(join(dir, "manifest.json"));
  const artifactsDir = join(dir, "artifacts");
  for (const a of [...manifest.modules, ...manifest.apps]) {
    const p = join(artifactsDir, a.path);
    const got = existsSync(p) ? await hashFile(p) : "missing";
    if (got !== a.sha256) {
      throw new StepError(
        "bundle",
        `${file}: ${a.path} has sha256 ${got}, the manifest says ${a.sha256}`,
        "the bundle is damaged or was modified: copy it again or rebuild it",
      );
    }
  }
  if (o.release && manifest.kernelRelease !== o.release) {
    throw new BlockedError(
      `${file} was built for ${manifest.kernelRelease}, but this host runs ${o.release}`,
      `build a bundle for ${o.release} (netmap-provision build --out on a host with that kernel's headers), or boot ${manifest.kernelRelease}`,
    );
  }
  const recipe = JSON.parse(readFileSync(join(dir, "recipe.resolved.json"), "utf8")) as unknown;
  return { dir, artifactsDir, manifest, recipe };
}

/** One file a sources bundle carries, laid out as the cache holds it. */
export interface SourcesBundleEntry {
  kind: "download" | "netmap-git";
  /** Path inside the bundle (= inside the cache dir). */
  path: string;
  url: string;
  sha256?: string;
  commit?: string;
}

/**
 * Write a sources bundle (`fetch --out`): a tar laid out as the cache (downloads/sha256/<hex>,
 * netmap/<commit>/), plus fetch-manifest.json, so `tar -xf FILE -C <cache dir>` (or
 * `fetch --import FILE`) gives an offline host every source its recipe needs.
 */
export async function writeSourcesBundle(o: {
  file: string;
  cacheDir: string;
  downloads: Array<{ url: string; sha256: string }>;
  netmapGit?: { dir: string; url: string; commit: string };
  exec: Exec;
}): Promise<SourcesBundleEntry[]> {
  const entries: SourcesBundleEntry[] = [];
  const members: string[] = [];
  for (const d of o.downloads) {
    const p = cachedPath(o.cacheDir, d.sha256);
    if (!existsSync(p))
      throw new StepError("fetch", `${d.url} is not in the cache after the preflight`, "run fetch again");
    const rel = `downloads/sha256/${d.sha256.toLowerCase()}`;
    entries.push({ kind: "download", path: rel, url: d.url, sha256: d.sha256.toLowerCase() });
    members.push(rel);
  }
  if (o.netmapGit) {
    const rel = `netmap/${o.netmapGit.commit}`;
    entries.push({ kind: "netmap-git", path: rel, url: o.netmapGit.url, commit: o.netmapGit.commit });
    members.push(rel);
  }
  const stage = mkdtempSync(join(tmpdir(), "netmap-provision-fetch-"));
  try {
    writeFileSync(join(stage, "fetch-manifest.json"), `${JSON.stringify({ format: 1, entries }, null, 2)}\n`);
    // Two -C: the cache-shaped members from the cache dir, the list from the stage dir.
    await o.exec.run([
      "tar",
      "-cf",
      resolve(o.file),
      "--exclude=.git",
      "-C",
      o.cacheDir,
      ...members,
      "-C",
      stage,
      "fetch-manifest.json",
    ]);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return entries;
}

/** Unpack a sources bundle into the cache dir, checking each download's sha256 afterwards. */
export async function importSourcesBundle(
  file: string,
  o: { cacheDir: string; exec: Exec },
): Promise<SourcesBundleEntry[]> {
  mkdirSync(o.cacheDir, { recursive: true });
  const stage = mkdtempSync(join(o.cacheDir, ".import-"));
  try {
    await o.exec.run(["tar", "-xf", file, "-C", stage, "--no-same-owner"]);
    const listPath = join(stage, "fetch-manifest.json");
    if (!existsSync(listPath))
      throw new UserError(
        `${file} is not a sources bundle (no fetch-manifest.json)`,
        "use a file written by `netmap-provision fetch --out`",
      );
    const { entries } = JSON.parse(readFileSync(listPath, "utf8")) as { entries: SourcesBundleEntry[] };
    for (const e of entries) {
      const src = join(stage, e.path);
      if (e.kind === "download" && e.sha256 && (await hashFile(src)) !== e.sha256) {
        throw new StepError(
          "fetch",
          `${e.path} in ${file} does not match its sha256 ${e.sha256}`,
          "the bundle is damaged: copy it again",
        );
      }
      const dest = join(o.cacheDir, e.path);
      mkdirSync(dirname(dest), { recursive: true });
      rmSync(dest, { recursive: true, force: true });
      cpSync(src, dest, { recursive: true });
    }
    return entries;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
