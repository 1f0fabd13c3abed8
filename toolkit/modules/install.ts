import { createHash } from "node:crypto";
import { existsSync, lstatSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { readKoInfo } from "../build/ko-file.js";
import { MODULE_NAME_RE } from "../build/manifest.js";
import { readBoundedFile } from "../core/bounded-read.js";
import { BlockedError, RollbackError, StepError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { sha256IfExists } from "../state/atomic-file.js";
import { type InstalledModule, type InstalledRecord, readInstalled } from "../state/installed.js";
import { readJournal, type Transaction } from "../state/journal.js";
import { undoSteps } from "../state/undo.js";
import { type BackupRef, backupFile } from "./backup.js";
import { runDepmod } from "./depmod.js";
import { installFile, makeDirs, moveAside } from "./file-ops.js";
import { moduleNameOf, modulesDir, readModulesDep, resolveModule } from "./resolve.js";
import { writeInstalledJournaled } from "./write-file.js";

/** A built module ready to install: its name, the .ko file, and its sha256 from the build. */
export interface ModuleArtifact {
  module: string;
  file: string;
  sha256: string;
}

/**
 * "updates": patched modules go to updates/netmap/, which depmod searches before the kernel's own
 * tree, so the stock file stays untouched. "replace": the 2012 way: the stock module is renamed
 * to `<file>-bak` and the patched one takes its place.
 */
export type InstallStrategy = "updates" | "replace";

export interface InstallOptions {
  /** "/" for the host, or a sysroot holding lib/modules/<kver>. */
  root: string;
  kver: string;
  artifacts: ModuleArtifact[];
  strategy: InstallStrategy;
  stateDir: string;
  exec: Exec;
  /** The open "up" transaction: every change is journaled in it. */
  journal: Transaction;
  /**
   * Which artifact is netmap itself (the build manifest's netmapModule: "netmap", or "netmap_lin"
   * for the legacy layout). It has no stock counterpart, so it always goes under updates/netmap/,
   * whatever the strategy; installed.json records the name for `down`.
   */
  netmapModule: string;
  recipe?: string;
  warn?: (message: string) => void;
}

export interface InstallResult {
  record: InstalledRecord;
  /** Modules whose file was already the wanted one: nothing was done for them. */
  unchanged: string[];
  /** Where each module now resolves (real paths), as checked after depmod. */
  resolved: Record<string, string>;
}

/** The netmap module's name when a record predates `netmapModule` (only netmap.ko was installed then). */
export const DEFAULT_NETMAP_MODULE = "netmap";
export const updatesSubdir = join("updates", "netmap");

/** Host path (what installed.json records) of a real path under `root`. */
function hostPathOf(root: string, real: string): string {
  return root === "/" || root === "" ? real : `/${relative(root, real)}`;
}

function hostRef(root: string, ref: BackupRef): BackupRef {
  return { ...ref, path: hostPathOf(root, ref.path) };
}

/** A module file larger than this is not one (netmap.ko with debug info is a few MB). */
const MAX_MODULE_BYTES = 256 * 1024 * 1024;

/**
 * Before anything is backed up or installed: each module's name can only become `<name>.ko`
 * under updates/netmap/ (and a modinfo argument), and its file is a regular file (not a link to
 * a host file), an ELF kernel module, with the sha256 the build recorded.
 */
function checkArtifacts(artifacts: ModuleArtifact[]): void {
  for (const a of artifacts) {
    if (!MODULE_NAME_RE.test(a.module))
      throw new UserError(
        `"${a.module}" is not a module name (letters, digits, "_" and "-", not starting with "-")`,
        "rebuild, or use a bundle written by `build --out`; nothing was installed",
      );
    let bytes: Buffer;
    try {
      if (lstatSync(a.file).isSymbolicLink())
        throw new UserError(
          `the built module ${a.file} (${a.module}) is a symbolic link, not a module file`,
          "rebuild, or use a bundle written by `build --out`; nothing was installed",
        );
      bytes = readBoundedFile(a.file, {
        what: `built module (${a.module})`,
        maxBytes: MAX_MODULE_BYTES,
        hint: "run the build step again; nothing was installed",
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT")
        throw new UserError(
          `the built module ${a.file} (${a.module}) does not exist`,
          "run the build step again",
        );
      throw e;
    }
    const got = createHash("sha256").update(bytes).digest("hex");
    if (got !== a.sha256)
      throw new UserError(
        `${a.file} has sha256 ${got}, but the build recorded ${a.sha256}`,
        "the file changed after the build: rebuild before installing",
      );
    const info = readKoInfo(bytes);
    if (typeof info === "string")
      throw new UserError(
        `the built module ${a.file} (${a.module}) ${info}`,
        "rebuild, or use a bundle written by `build --out`; nothing was installed",
      );
  }
}

/**
 * Install patched modules for `kver` under `root`, run depmod, and prove with modinfo that each
 * module resolves to the patched file. On any failure the steps taken here are undone (like DKMS
 * does when depmod fails) and a StepError is thrown. Records the result in installed.json (a
 * journaled write, so undoing the transaction undoes the record too). Does not commit: the caller
 * owns the transaction (loading and verifying come next).
 */
export async function installModules(opts: InstallOptions): Promise<InstallResult> {
  const { root, kver, strategy, stateDir, exec, journal: tx } = opts;
  const modDir = modulesDir(root, kver);
  if (!existsSync(modDir))
    throw new BlockedError(
      `${modDir} does not exist: kernel ${kver} is not installed there`,
      "install the kernel's modules package first",
    );
  if (!MODULE_NAME_RE.test(opts.netmapModule))
    throw new UserError(
      `"${opts.netmapModule}" is not a module name (letters, digits, "_" and "-", not starting with "-")`,
      "rebuild, or use a bundle written by `build --out`; nothing was installed",
    );
  checkArtifacts(opts.artifacts);
  const existing = readInstalled(stateDir);
  const existingNetmap = existing?.netmapModule ?? DEFAULT_NETMAP_MODULE;
  if (
    existing &&
    (existing.kernelRelease !== kver ||
      existing.strategy !== strategy ||
      existingNetmap !== opts.netmapModule)
  )
    throw new UserError(
      `netmap modules are already installed for ${existing.kernelRelease} with strategy "${existing.strategy}" and module ${existingNetmap}`,
      "run `netmap-provision down` first, then install again",
    );

  const firstStep = tx.begun.length;
  try {
    return await installSteps(opts, modDir, existing);
  } catch (err) {
    const ours = new Set(tx.begun.slice(firstStep));
    try {
      await undoSteps(readJournal(tx.file), {
        exec,
        stateDir,
        only: (s) => ours.has(s.seq),
        warn: opts.warn,
      });
    } catch (undoErr) {
      if (undoErr instanceof RollbackError)
        throw new RollbackError(
          `${(err as Error).message}\nand then ${undoErr.message}`,
          undoErr.recovery,
          err,
        );
      throw undoErr;
    }
    const step = err instanceof StepError ? err.step : "install";
    throw new StepError(
      step,
      `${(err as Error).message}\n(installing modules failed; every file was put back and depmod rerun)`,
      err instanceof StepError ? err.hint : undefined,
      err,
    );
  }
}

async function installSteps(
  opts: InstallOptions,
  modDir: string,
  existing: InstalledRecord | undefined,
): Promise<InstallResult> {
  const { root, kver, strategy, stateDir, exec, journal: tx } = opts;
  const depBefore = readModulesDep(root, kver);
  const modules: InstalledModule[] = [];
  const createdDirs = [...(existing?.createdDirs ?? [])];
  const unchanged: string[] = [];
  const real = (host: string) => underRoot(root, host);

  for (const a of opts.artifacts) {
    const prev = existing?.modules.find((m) => m.module === a.module);
    if (prev && sha256IfExists(real(prev.path)) === a.sha256) {
      modules.push(prev);
      unchanged.push(a.module);
      continue;
    }
    const name = moduleNameOf(a.module);
    const stockRel = depBefore.get(name);
    const shadowedHost = stockRel === undefined ? undefined : hostPathOf(root, join(modDir, stockRel));

    if (prev || strategy === "updates" || name === moduleNameOf(opts.netmapModule)) {
      // Ours already (a rebuild), or a new file under updates/netmap/.
      const dest = prev ? real(prev.path) : join(modDir, updatesSubdir, `${a.module}.ko`);
      for (const d of await makeDirs(tx, dirname(dest))) createdDirs.push(hostPathOf(root, d));
      const replaced = existsSync(dest) ? await backupFile({ stateDir, kver, path: dest, tx }) : undefined;
      await installFile(
        tx,
        replaced
          ? { src: a.file, dest, sha256: a.sha256, replaced }
          : { src: a.file, dest, sha256: a.sha256 },
      );
      const m: InstalledModule = { module: a.module, path: hostPathOf(root, dest), sha256: a.sha256 };
      // A rebuild keeps the true original; a foreign file we displaced becomes the original.
      const original = prev ? prev.replacedOriginal : replaced && hostRef(root, replaced);
      if (original) m.replacedOriginal = original;
      const shadowed = prev ? prev.shadowed : shadowedHost;
      if (shadowed) m.shadowed = shadowed;
      modules.push(m);
      continue;
    }

    // strategy "replace": the stock module found through modules.dep.
    if (stockRel === undefined || !stockRel.startsWith("kernel/"))
      throw new UserError(
        stockRel === undefined
          ? `no stock module "${a.module}" in ${join(modDir, "modules.dep")}, so there is nothing to replace`
          : `"${a.module}" currently resolves to ${stockRel}, not to the kernel's own tree`,
        'use strategy "updates" instead',
      );
    const stock = join(modDir, stockRel);
    const original = await backupFile({ stateDir, kver, path: stock, tx });
    const aside = `${stock}-bak`;
    await moveAside(tx, stock, aside);
    // A compressed stock module (e1000.ko.xz) is replaced by a plain e1000.ko; the record keeps
    // the compressed name, which is what comes back on restore.
    const dest = stock.replace(/\.ko(\.xz|\.zst|\.gz)$/, ".ko");
    const displaced = existsSync(dest) ? await backupFile({ stateDir, kver, path: dest, tx }) : undefined;
    await installFile(
      tx,
      displaced
        ? { src: a.file, dest, sha256: a.sha256, replaced: displaced }
        : { src: a.file, dest, sha256: a.sha256 },
    );
    modules.push({
      module: a.module,
      path: hostPathOf(root, dest),
      sha256: a.sha256,
      replacedOriginal: { ...hostRef(root, original), movedAside: hostPathOf(root, aside) },
      shadowed: hostPathOf(root, stock),
    });
  }

  // Modules installed earlier but not asked for now stay installed and recorded; `down` removes them.
  for (const m of existing?.modules ?? [])
    if (!opts.artifacts.some((a) => a.module === m.module)) modules.push(m);
  const nothingChanged = existing !== undefined && unchanged.length === opts.artifacts.length;
  if (!nothingChanged) await runDepmod({ root, kver, exec, tx });
  const resolved: Record<string, string> = {};
  for (const m of modules) {
    const r = await resolveModule({ root, kver, module: m.module, exec });
    if (r.path !== real(m.path))
      throw new StepError(
        "verify-install",
        `after depmod, ${m.module} resolves to ${r.path ?? "nothing"} (by ${r.via}), not to the patched ${real(m.path)}`,
        "a depmod.d override or another copy in a preferred directory wins; check `depmod -n` output",
      );
    resolved[m.module] = r.path;
  }

  if (nothingChanged) return { record: existing, unchanged, resolved };
  const record: InstalledRecord = {
    kernelRelease: kver,
    strategy,
    netmapModule: opts.netmapModule,
    modules,
    files: existing?.files ?? [],
    createdDirs,
    installedAt: new Date().toISOString(),
  };
  const recipe = opts.recipe ?? existing?.recipe;
  if (recipe) record.recipe = recipe;
  await writeInstalledJournaled(tx, stateDir, kver, record);
  return { record, unchanged, resolved };
}
