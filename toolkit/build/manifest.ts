import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { hashFile } from "../sources/download.js";

/**
 * What a build produced, as data: every .ko with its sha256, vermagic, depends and module name,
 * and the apps. The install steps, bundles and `up --from` trust this file, not the build dir.
 */

export interface ModuleArtifact {
  /** Relative to the artifacts root (the build dir, or a cache/bundle copy of it). */
  path: string;
  /** The module name modinfo reports ("netmap", "e1000"). */
  name: string;
  sha256: string;
  size: number;
  vermagic: string;
  depends: string[];
  /** The driver token this module is the patched copy of, when it is one. */
  driver?: string;
}

export interface AppArtifact {
  name: string;
  path: string;
  sha256: string;
}

export interface BuildManifest {
  schema: 1;
  kernelRelease: string;
  kernelVersion?: string;
  /** netmap's identity: commit:<sha>, sha256:<hex> or tree:<hex>. */
  netmapId: string;
  /** The netmap module's name ("netmap", or "netmap_lin" for the legacy layout). */
  netmapModule: string;
  cacheKey?: string;
  /** Drivers built natively and drivers accepted in emulated mode. */
  native: string[];
  emulated: Array<{ driver: string; reason: string }>;
  modules: ModuleArtifact[];
  apps: AppArtifact[];
  createdAt: string;
}

/** modinfo's "key:   value" lines; repeated keys (alias, parm) keep the first value. */
export function parseModinfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([a-z_][\w.]*):\s*(.*)$/i.exec(line);
    if (m && !((m[1] as string) in out)) out[m[1] as string] = (m[2] ?? "").trim();
  }
  return out;
}

/** Build outputs are found anywhere under the build dir, except inside ext-drivers archives' trees. */
function findFiles(
  root: string,
  pred: (name: string) => boolean,
  skip = /^(\.git|ext-drivers|\.tmp_versions)$/,
): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (skip.test(e.name)) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && pred(e.name)) out.push(p);
    }
  };
  walk(root);
  return out.sort();
}

/** Read one module with one modinfo call. */
export async function describeModule(exec: Exec, root: string, file: string): Promise<ModuleArtifact> {
  const info = parseModinfo((await exec.run(["modinfo", file])).stdout);
  const depends = (info.depends ?? "").split(",").filter(Boolean);
  return {
    path: relative(root, file),
    name: info.name ?? file.replace(/^.*\//, "").replace(/\.ko$/, ""),
    sha256: await hashFile(file),
    size: lstatSync(file).size,
    vermagic: info.vermagic ?? "",
    depends,
  };
}

export interface CollectInput {
  /** Where the build wrote its outputs. */
  root: string;
  exec: Exec;
  kernelRelease: string;
  kernelVersion?: string;
  netmapId: string;
  netmapModule: string;
  native: string[];
  emulated?: Array<{ driver: string; reason: string }>;
  /** Driver token -> expected output path relative to root (catalog `output` with the suffix filled in). */
  driverOutputs?: Record<string, string>;
  /** Apps asked for: looked up as build-apps/<app>/<app> (configure) or examples/<app> (legacy). */
  apps?: readonly string[];
}

/** Collect every .ko and app under the build dir into a manifest. */
export async function collectManifest(i: CollectInput): Promise<BuildManifest> {
  const modules: ModuleArtifact[] = [];
  for (const f of findFiles(i.root, (n) => n.endsWith(".ko"))) {
    const m = await describeModule(i.exec, i.root, f);
    const driver = Object.entries(i.driverOutputs ?? {}).find(([, out]) => out === m.path)?.[0];
    if (driver) m.driver = driver;
    modules.push(m);
  }
  if (!modules.some((m) => m.name === i.netmapModule)) {
    throw new StepError(
      "manifest",
      `the build produced no ${i.netmapModule}.ko under ${i.root}`,
      "read the make log: the netmap module itself did not build",
    );
  }
  for (const d of i.native) {
    const out = i.driverOutputs?.[d];
    if (out && !modules.some((m) => m.path === out)) {
      throw new StepError(
        "manifest",
        `configure kept ${d}, but make produced no ${out}`,
        "read the make log; the driver's build may have been skipped by kbuild",
      );
    }
  }
  const apps: AppArtifact[] = [];
  for (const a of i.apps ?? []) {
    for (const rel of [join("build-apps", a, a), join("examples", a), join("apps", a, a)]) {
      const p = join(i.root, rel);
      if (existsSync(p) && lstatSync(p).isFile()) {
        apps.push({ name: a, path: rel, sha256: await hashFile(p) });
        break;
      }
    }
  }
  return {
    schema: 1,
    kernelRelease: i.kernelRelease,
    ...(i.kernelVersion ? { kernelVersion: i.kernelVersion } : {}),
    netmapId: i.netmapId,
    netmapModule: i.netmapModule,
    native: i.native,
    emulated: i.emulated ?? [],
    modules,
    apps,
    createdAt: new Date().toISOString(),
  };
}

/**
 * A module whose vermagic names another release will not load ("Invalid module format",
 * netmap #82, #756): refuse it before anything is installed, naming both releases.
 */
export function checkVermagic(manifest: BuildManifest, release: string): void {
  const bad = manifest.modules.filter((m) => m.vermagic.split(/\s+/)[0] !== release);
  if (bad.length === 0) return;
  throw new StepError(
    "manifest",
    `built for the wrong kernel: ${bad
      .map((m) => `${m.path} has vermagic "${m.vermagic.split(/\s+/)[0] ?? ""}"`)
      .join(", ")}, but the target is ${release}`,
    `build against the build dir of ${release} (/lib/modules/${release}/build, or --kernel-dir); nothing was installed`,
  );
}

export function writeManifest(dir: string, manifest: BuildManifest): string {
  const file = join(dir, "manifest.json");
  writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
  return file;
}

export function readManifest(file: string): BuildManifest {
  const m = JSON.parse(readFileSync(file, "utf8")) as BuildManifest;
  if (m.schema !== 1 || !Array.isArray(m.modules)) {
    throw new StepError(
      "manifest",
      `${file} is not a netmap-provision build manifest`,
      "rebuild, or use a bundle written by `build --out`",
    );
  }
  return m;
}
