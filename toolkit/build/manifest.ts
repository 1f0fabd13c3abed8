import { existsSync, lstatSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { z } from "zod";
import { readBoundedText } from "../core/bounded-read.js";
import { StepError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { isKernelRelease } from "../host/release-name.js";
import { hashFile } from "../sources/download.js";
import { issueText } from "../state/state-file.js";

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

/**
 * The manifest as data from outside (a bundle, a cache dir): every value that becomes a path or
 * reaches a command is checked like a recipe value. A module name becomes `<name>.ko` under
 * updates/netmap/ and a modinfo/modprobe argument; an artifact path is joined onto artifacts/.
 */
export const MODULE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;
/** Driver tokens of the catalog ("e1000", "virtio_net.c"). */
const DRIVER_TOKEN_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const SEGMENT_RE = /^[A-Za-z0-9_+][A-Za-z0-9._+-]{0,127}$/;

/** Why an artifact path could leave artifacts/ or is not a plain relative path, or undefined. */
export function artifactPathProblem(p: string): string | undefined {
  if (p.length === 0 || p.length > 1024) return "is empty or too long";
  if (p.startsWith("/")) return "is absolute (artifact paths are relative to artifacts/)";
  const segs = p.split("/");
  if (segs.includes("..")) return 'has a ".." segment (path traversal)';
  if (segs.some((s) => s === "" || s === ".")) return 'has an empty or "." segment';
  const bad = segs.find((s) => !SEGMENT_RE.test(s));
  if (bad !== undefined)
    return `has a part "${bad.replace(/[^\x20-\x7e]/g, "?")}" with characters other than letters, digits, "." "_" "+" "-" (or starting with "." or "-")`;
  return undefined;
}

const text = (max: number) =>
  z
    .string()
    .max(max)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { error: "contains a control character" });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, { error: "expected a sha256 (64 lowercase hex digits)" });
const moduleName = z.string().regex(MODULE_NAME_RE, {
  error: 'a module name is letters, digits, "_" and "-" (not starting with "-"), at most 64 characters',
});
const driverToken = z.string().regex(DRIVER_TOKEN_RE, { error: "not a driver token" });
const artifactPath = z.string().superRefine((p, ctx) => {
  const why = artifactPathProblem(p);
  if (why) ctx.addIssue({ code: "custom", message: `path "${p.slice(0, 200)}" ${why}` });
});

export const ModuleArtifactSchema = z.strictObject({
  path: artifactPath.refine((p) => p.endsWith(".ko"), { error: "a module's path must end in .ko" }),
  name: moduleName,
  sha256,
  size: z.number().int().nonnegative(),
  vermagic: text(512),
  depends: z.array(moduleName).max(256),
  driver: driverToken.optional(),
});

export const BuildManifestSchema = z
  .strictObject({
    schema: z.literal(1),
    kernelRelease: z.string().refine(isKernelRelease, { error: "not a kernel release" }),
    kernelVersion: z
      .string()
      .regex(/^\d+\.\d+(\.\d+)?$/)
      .optional(),
    netmapId: z.string().regex(/^(commit|sha256|tree):[0-9a-f]{7,64}$/, { error: "not a netmap source id" }),
    netmapModule: moduleName,
    cacheKey: z
      .string()
      .regex(/^[0-9A-Za-z._-]{1,128}$/)
      .optional(),
    native: z.array(driverToken).max(256),
    emulated: z.array(z.strictObject({ driver: driverToken, reason: text(2000) })).max(256),
    modules: z.array(ModuleArtifactSchema).min(1).max(1024),
    apps: z.array(z.strictObject({ name: moduleName, path: artifactPath, sha256 })).max(256),
    createdAt: text(64),
  })
  .superRefine((m, ctx) => {
    const names = new Set<string>();
    const paths = new Set<string>();
    for (const [i, a] of m.modules.entries()) {
      if (names.has(a.name))
        ctx.addIssue({
          code: "custom",
          path: ["modules", i, "name"],
          message: `module "${a.name}" is listed twice`,
        });
      names.add(a.name);
    }
    for (const [i, a] of [...m.modules, ...m.apps].entries()) {
      if (paths.has(a.path))
        ctx.addIssue({ code: "custom", path: ["artifacts", i], message: `path "${a.path}" is listed twice` });
      paths.add(a.path);
    }
    if (!names.has(m.netmapModule))
      ctx.addIssue({
        code: "custom",
        path: ["netmapModule"],
        message: `the netmap module "${m.netmapModule}" is not among the modules`,
      });
  });

/** Largest manifest.json read (a real one is a few KB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Parse and validate a manifest's text; `where` names the file in messages. */
export function parseManifest(text: string, where: string, hint: string): BuildManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${where} is not valid JSON (truncated or damaged?): ${(e as Error).message}`, hint);
  }
  const r = BuildManifestSchema.safeParse(raw);
  if (!r.success)
    throw new UserError(`${where} is not a netmap-provision build manifest: ${issueText(r.error)}`, hint);
  return r.data as BuildManifest;
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

/** modinfo of one module file, the file after `--` (the build's manifest and `plan` alike). */
export const modinfoArgv = (file: string): string[] => ["modinfo", "--", file];

/** Read one module with one modinfo call. */
export async function describeModule(exec: Exec, root: string, file: string): Promise<ModuleArtifact> {
  const info = parseModinfo((await exec.run(modinfoArgv(file))).stdout);
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
        `${d} was to be built natively (configure kept it, or the legacy layout was asked for it), but make produced no ${out}`,
        "read the make log: the driver's build was skipped (kbuild, or netmap's old Makefile, which leaves out a driver it finds no sources or no applicable patch for)",
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

export function readManifest(file: string, o: { where?: string; hint?: string } = {}): BuildManifest {
  const hint = o.hint ?? "rebuild, or use a bundle written by `build --out`";
  const where = o.where ?? file;
  const bytes = readBoundedText(file, { what: "build manifest", maxBytes: MAX_MANIFEST_BYTES, hint });
  return parseManifest(bytes, where, hint);
}
