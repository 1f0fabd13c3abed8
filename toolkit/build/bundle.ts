import { createHash, randomBytes } from "node:crypto";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { readBoundedFile, readBoundedText } from "../core/bounded-read.js";
import { BlockedError, StepError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { redactDeep, redactUrl } from "../core/redact.js";
import { resolveInside, type UnpackedArchive, unpackArchive } from "../core/safe-archive.js";
import { cachedPath, hashFile } from "../sources/download.js";
import { issueText } from "../state/state-file.js";
import { readKoInfo } from "./ko-file.js";
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
    // A bundle travels between hosts and up --from never fetches: it carries no URL password.
    writeFileSync(join(stage, "recipe.resolved.json"), `${JSON.stringify(redactDeep(o.recipe), null, 2)}\n`);
    writeFileSync(join(stage, "BUNDLE"), FORMAT);
    mkdirSync(dirname(out), { recursive: true });
    const tmp = `${out}.tmp-${randomBytes(4).toString("hex")}`;
    await o.exec.run([
      "tar",
      "--force-local",
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
  /** Where it was unpacked (a private dir; dispose() removes it). */
  dir: string;
  artifactsDir: string;
  manifest: BuildManifest;
  recipe: unknown;
  /** Remove the unpacked copy (idempotent). */
  dispose(): void;
}

const BUNDLE_HINT = "use a file written by `netmap-provision build --out` (copy it again if it was damaged)";
/** A bundle holds a few modules and apps; debug-info modules are a few MB each. */
export const BUNDLE_LIMITS = { maxBytes: 512 * 1024 * 1024, maxMembers: 10_000 };
const MAX_RECIPE_BYTES = 4 * 1024 * 1024;
const TOP = new Set(["BUNDLE", "manifest.json", "recipe.resolved.json", "artifacts"]);

/**
 * Unpack a bundle (through safe-archive: nothing can land outside the private dir) and check
 * everything in it before anything could be installed: the format marker, manifest.json against
 * its schema, every artifact a regular file with its sha256, every module an ELF kernel module
 * whose own vermagic and name are what the manifest claims, built for the manifest's release,
 * and (when given) that this release is `release`. A refused bundle leaves nothing unpacked.
 */
export async function readBundle(
  file: string,
  o: { exec: Exec; release?: string; into?: string },
): Promise<OpenedBundle> {
  const parent = o.into ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  const u = await unpackArchive(file, {
    what: "build bundle",
    hint: BUNDLE_HINT,
    limits: BUNDLE_LIMITS,
    allowLinks: false,
    exec: o.exec,
    parent,
    prefix: "netmap-provision-from-",
  });
  try {
    const opened = checkBundle(file, u);
    if (o.release) checkBundleRelease(file, opened.manifest, o.release);
    return opened;
  } catch (e) {
    u.dispose();
    throw e;
  }
}

function checkBundle(file: string, u: UnpackedArchive): OpenedBundle {
  const bad = (what: string) =>
    new UserError(`build bundle ${file}: ${what}; nothing was installed`, BUNDLE_HINT);
  for (const m of u.members) {
    const top = m.path.split("/")[0] as string;
    if (
      !TOP.has(top) ||
      (top !== "artifacts" && m.kind !== "file") ||
      (m.path === "artifacts" && m.kind !== "dir")
    )
      throw bad(`member "${m.path}" is not part of a build bundle`);
  }
  const marker = join(u.dir, "BUNDLE");
  if (
    !existsSync(marker) ||
    readBoundedText(marker, { what: "bundle marker", maxBytes: 256, hint: BUNDLE_HINT }) !== FORMAT
  )
    throw new UserError(`${file} is not a netmap-provision build bundle (no BUNDLE marker)`, BUNDLE_HINT);
  if (!existsSync(join(u.dir, "manifest.json"))) throw bad("it has no manifest.json");
  const manifest = readManifest(join(u.dir, "manifest.json"), {
    where: `manifest.json in ${file}`,
    hint: BUNDLE_HINT,
  });
  const recipePath = join(u.dir, "recipe.resolved.json");
  if (!existsSync(recipePath)) throw bad("it has no recipe.resolved.json");
  let recipe: unknown;
  try {
    recipe = JSON.parse(
      readBoundedText(recipePath, { what: "resolved recipe", maxBytes: MAX_RECIPE_BYTES, hint: BUNDLE_HINT }),
    );
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(
      `recipe.resolved.json in ${file} is not valid JSON (truncated or damaged?): ${(e as Error).message}`,
      BUNDLE_HINT,
    );
  }
  if (recipe === null || typeof recipe !== "object" || Array.isArray(recipe))
    throw new UserError(
      `recipe.resolved.json in ${file} is not a resolved recipe (not a JSON object)`,
      BUNDLE_HINT,
    );
  const artifactsDir = join(u.dir, "artifacts");
  const kinds = new Map(u.members.map((m) => [m.path, m.kind]));
  const artifact = (what: string, path: string, sha256: string): Buffer => {
    const rel = `artifacts/${path}`;
    if (kinds.get(rel) !== "file")
      throw bad(`${what} ${rel} ${kinds.has(rel) ? "is not a regular file" : "is missing"}`);
    const p = join(artifactsDir, path);
    const st = lstatSync(p);
    if (!st.isFile()) throw bad(`${what} ${rel} is not a regular file`);
    if (st.mode & 0o7000) throw bad(`${what} ${rel} has a set-id bit`);
    const bytes = readBoundedFile(p, { what, maxBytes: BUNDLE_LIMITS.maxBytes, hint: BUNDLE_HINT });
    const got = createHash("sha256").update(bytes).digest("hex");
    if (got !== sha256)
      throw bad(
        `${rel} has sha256 ${got}, the manifest says ${sha256} (the bundle is damaged or was modified)`,
      );
    return bytes;
  };
  for (const m of manifest.modules) {
    const what = `module ${m.name}`;
    const info = readKoInfo(artifact(what, m.path, m.sha256));
    if (typeof info === "string") throw bad(`${what} (artifacts/${m.path}) ${info}`);
    const vermagic = (info.info.get("vermagic") ?? "").trim();
    if (vermagic !== m.vermagic.trim())
      throw bad(
        `${what} (artifacts/${m.path}) has vermagic "${vermagic}", but the manifest says "${m.vermagic.trim()}"`,
      );
    if (vermagic.split(/\s+/)[0] !== manifest.kernelRelease)
      throw bad(
        `${what} (artifacts/${m.path}) was built for "${vermagic.split(/\s+/)[0] ?? ""}", but the manifest's kernel release is ${manifest.kernelRelease}`,
      );
    const name = info.info.get("name");
    if (name !== undefined && name !== m.name)
      throw bad(`${what} (artifacts/${m.path}) calls itself "${name}", not "${m.name}"`);
  }
  for (const a of manifest.apps) artifact(`app ${a.name}`, a.path, a.sha256);
  return { dir: u.dir, artifactsDir, manifest, recipe, dispose: u.dispose };
}

/** The modules load only into the release they were built for: refuse another (exit 4). */
export function checkBundleRelease(file: string, manifest: BuildManifest, release: string): void {
  if (manifest.kernelRelease !== release) {
    throw new BlockedError(
      `${file} was built for ${manifest.kernelRelease}, but this host runs ${release}`,
      `build a bundle for ${release} (netmap-provision build --out on a host with that kernel's headers), or boot ${manifest.kernelRelease}`,
    );
  }
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
    // Entries are found by path and sha256/commit; the URL is a note, carried without its password.
    entries.push({ kind: "download", path: rel, url: redactUrl(d.url), sha256: d.sha256.toLowerCase() });
    members.push(rel);
  }
  if (o.netmapGit) {
    const rel = `netmap/${o.netmapGit.commit}`;
    entries.push({
      kind: "netmap-git",
      path: rel,
      url: redactUrl(o.netmapGit.url),
      commit: o.netmapGit.commit,
    });
    members.push(rel);
  }
  const stage = mkdtempSync(join(tmpdir(), "netmap-provision-fetch-"));
  try {
    writeFileSync(join(stage, "fetch-manifest.json"), `${JSON.stringify({ format: 1, entries }, null, 2)}\n`);
    // Two -C: the cache-shaped members from the cache dir, the list from the stage dir.
    await o.exec.run([
      "tar",
      "--force-local",
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

const SOURCES_HINT =
  "use a file written by `netmap-provision fetch --out` on a connected host (copy it again if it was damaged)";
/** A kernel.org tarball (~140 MB), external driver archives and a netmap tree (no .git). */
export const SOURCES_BUNDLE_LIMITS = { maxBytes: 4 * 1024 * 1024 * 1024, maxMembers: 100_000 };
const MAX_FETCH_MANIFEST_BYTES = 4 * 1024 * 1024;

const urlText = z
  .string()
  .min(1)
  .max(4096)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { error: "contains a control character" });

/** fetch-manifest.json: each entry's path is exactly where the cache keeps that kind of source. */
const FetchManifestSchema = z.strictObject({
  format: z.literal(1),
  entries: z
    .array(
      z.discriminatedUnion("kind", [
        z
          .strictObject({
            kind: z.literal("download"),
            path: z.string().regex(/^downloads\/sha256\/[0-9a-f]{64}$/, {
              error: "a download's path must be downloads/sha256/<64 hex digits>",
            }),
            url: urlText,
            sha256: z.string().regex(/^[0-9a-f]{64}$/),
          })
          .refine((e) => e.path === `downloads/sha256/${e.sha256}`, {
            error: "a download's path must name its own sha256",
          }),
        z
          .strictObject({
            kind: z.literal("netmap-git"),
            path: z.string().regex(/^netmap\/[0-9a-f]{40}$/, {
              error: "a netmap checkout's path must be netmap/<40 hex digits>",
            }),
            url: urlText,
            commit: z.string().regex(/^[0-9a-f]{40}$/),
          })
          .refine((e) => e.path === `netmap/${e.commit}`, {
            error: "a netmap checkout's path must name its own commit",
          }),
      ]),
    )
    .max(1024)
    .refine((es) => new Set(es.map((e) => e.path)).size === es.length, { error: "an entry is listed twice" }),
});

/**
 * `fetch --import FILE`: unpack a sources bundle (through safe-archive) into a private dir in the
 * cache, validate fetch-manifest.json, check every entry is in the bundle as what it claims (a
 * download is a regular file with its sha256; a netmap checkout a directory whose symlinks stay
 * inside it), then move each one into the cache by its validated relative path. Nothing else of
 * the bundle reaches the cache, and the private dir is removed on every path.
 */
export async function importSourcesBundle(
  file: string,
  o: { cacheDir: string; exec: Exec },
): Promise<SourcesBundleEntry[]> {
  mkdirSync(o.cacheDir, { recursive: true });
  const u = await unpackArchive(file, {
    what: "sources bundle",
    hint: SOURCES_HINT,
    limits: SOURCES_BUNDLE_LIMITS,
    exec: o.exec,
    parent: o.cacheDir,
    prefix: ".import-",
  });
  try {
    const bad = (what: string) =>
      new UserError(`sources bundle ${file}: ${what}; nothing was imported`, SOURCES_HINT);
    const listPath = join(u.dir, "fetch-manifest.json");
    const members = new Map(u.members.map((m) => [m.path, m]));
    if (members.get("fetch-manifest.json")?.kind !== "file")
      throw new UserError(`${file} is not a sources bundle (no fetch-manifest.json)`, SOURCES_HINT);
    const text = readBoundedText(listPath, {
      what: "fetch manifest",
      maxBytes: MAX_FETCH_MANIFEST_BYTES,
      hint: SOURCES_HINT,
    });
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new UserError(
        `fetch-manifest.json in ${file} is not valid JSON (truncated or damaged?): ${(e as Error).message}`,
        SOURCES_HINT,
      );
    }
    const parsed = FetchManifestSchema.safeParse(raw);
    if (!parsed.success)
      throw new UserError(
        `fetch-manifest.json in ${file} is not a sources bundle manifest: ${issueText(parsed.error)}`,
        SOURCES_HINT,
      );
    const entries = parsed.data.entries as SourcesBundleEntry[];
    const links = new Map<string, string>();
    for (const m of u.members) if (m.kind === "symlink") links.set(m.path, m.target as string);
    for (const e of entries) {
      const m = members.get(e.path);
      if (e.kind === "download") {
        if (m?.kind !== "file") throw bad(`${e.path} ${m ? "is not a regular file" : "is missing"}`);
        const got = await hashFile(join(u.dir, e.path));
        if (got !== e.sha256)
          throw bad(`${e.path} has sha256 ${got}, not ${e.sha256} (the bundle is damaged)`);
        continue;
      }
      if (m?.kind !== "dir") throw bad(`${e.path} ${m ? "is not a directory" : "is missing"}`);
      // A checkout's symlinks must stay inside the checkout, not reach the rest of the cache.
      const own = e.path.split("/");
      for (const [p, target] of links) {
        if (!p.startsWith(`${e.path}/`)) continue;
        const r = resolveInside(p.split("/").slice(0, -1), target, (s) => links.get(s.join("/")));
        if (typeof r === "string" || own.some((seg, i) => r[i] !== seg))
          throw bad(`${p} is a symbolic link to "${target}", which leaves ${e.path}`);
      }
    }
    for (const e of entries) {
      const dest = join(o.cacheDir, e.path);
      mkdirSync(dirname(dest), { recursive: true });
      rmSync(dest, { recursive: true, force: true });
      // A rename within the cache's filesystem: symlinks and modes stay as checked.
      renameSync(join(u.dir, e.path), dest);
    }
    return entries;
  } finally {
    u.dispose();
  }
}
