import { existsSync, lstatSync, realpathSync, renameSync, unlinkSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { BusyError, StepError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { fsyncDir, sha256File, sha256IfExists } from "../state/atomic-file.js";
import {
  type InstalledRecord,
  installedHint,
  installedPath,
  readInstalled,
  removeInstalled,
} from "../state/installed.js";
import {
  commit,
  type JournalState,
  openTransaction,
  pendingTransaction,
  resumeTransaction,
  type Transaction,
  type TransactionKind,
} from "../state/journal.js";
import { journalPathProblems } from "../state/journal-policy.js";
import { isPidAlive, readLock } from "../state/lock.js";
import { undoJournal } from "../state/undo.js";
import { checkJournalOps } from "../state/undo-table.js";
import { restoreFromBackup } from "./backup.js";
import { runDepmod } from "./depmod.js";
import { removeDirIfEmpty } from "./file-ops.js";
import { resolveModule } from "./resolve.js";

export interface RestoreOptions {
  /** "/" for the host, or the sysroot the install was made under. */
  root: string;
  stateDir: string;
  exec: Exec;
  /** Overwrite files whose content is neither the patched nor the original one. */
  force?: boolean;
  warn?: (message: string) => void;
}

export interface Recovery {
  txid: string;
  kind: TransactionKind;
  /** "undone" for an interrupted up, "finished" for an interrupted down. */
  action: "undone" | "finished";
}

export interface RestoreReport {
  recovered: Recovery | undefined;
  /** False when there was no installed.json (nothing to restore after recovery). */
  hadInstall: boolean;
  /** Original files put back, verified by sha256 (real paths). */
  restored: Array<{ path: string; sha256: string }>;
  /** Patched or written files removed (real paths). */
  removed: string[];
  /** Where each module resolves after depmod (real path, undefined: resolves to nothing). */
  resolved: Record<string, string | undefined>;
}

/**
 * Undo or finish an interrupted transaction. An interrupted "up" is undone step by step in reverse
 * journal order; an interrupted "down" is finished (running restore again from installed.json is
 * idempotent), because half-undoing a restore would put patched modules back.
 */
export async function recoverPending(
  stateDir: string,
  opts: { exec: Exec; force?: boolean; warn?: (m: string) => void; root?: string },
): Promise<Recovery | undefined> {
  const pending = pendingTransaction(stateDir);
  if (!pending) return undefined;
  checkRecoverable(pending, stateDir, opts.root ?? "/");
  const lock = readLock(stateDir);
  if (pending.pid !== process.pid && lock?.pid === pending.pid && isPidAlive(pending.pid))
    throw new BusyError(
      `transaction ${pending.txid} is still running in pid ${pending.pid}`,
      `wait for pid ${pending.pid} to finish`,
    );
  opts.warn?.(`found the interrupted "${pending.kind}" transaction ${pending.txid}; recovering it`);
  if (pending.kind === "up") {
    await undoJournal(pending, { exec: opts.exec, stateDir, force: opts.force, warn: opts.warn });
    return { txid: pending.txid, kind: pending.kind, action: "undone" };
  }
  const root = opts.root ?? "/";
  const rec = readInstalled(stateDir);
  if (rec) checkRestorable(rec, root, stateDir);
  const tx = resumeTransaction(pending, stateDir);
  if (rec) await restoreRecord(rec, tx, { ...opts, root, stateDir });
  commit(tx);
  return { txid: pending.txid, kind: pending.kind, action: "finished" };
}

/**
 * Take the host back to before netmap-provision: recover any interrupted transaction, then remove
 * every installed file, put every original back byte for byte (sha256-checked), run depmod, check
 * that each module resolves to its stock file again, and forget installed.json.
 */
export async function restore(opts: RestoreOptions): Promise<RestoreReport> {
  const recovered = await recoverPending(opts.stateDir, opts);
  const rec = readInstalled(opts.stateDir);
  const report: RestoreReport = {
    recovered,
    hadInstall: rec !== undefined,
    restored: [],
    removed: [],
    resolved: {},
  };
  if (!rec) return report;
  checkRestorable(rec, opts.root, opts.stateDir);
  const tx = openTransaction(opts.stateDir, "down", { root: opts.root, kver: rec.kernelRelease });
  await restoreRecord(rec, tx, opts, report);
  commit(tx);
  return report;
}

/**
 * Refuse (exit 2) an interrupted transaction recovery must not act on: one naming an op its kind
 * never journals (undo-table.ts), one written for another root, or one whose steps name paths
 * outside what `up` writes (a forged or damaged journal).
 */
export function checkRecoverable(pending: JournalState, stateDir: string, root: string): void {
  checkJournalOps(pending);
  const hint = `inspect ${pending.file} by hand; move it out of the journal directory once the host is checked`;
  const jroot = pending.meta.root;
  if (jroot !== undefined && (typeof jroot !== "string" || resolve(jroot) !== resolve(root)))
    throw new UserError(
      `the interrupted transaction ${pending.txid} in ${pending.file} was made under root ${JSON.stringify(jroot)}, not ${root}`,
      `run the command with --root ${typeof jroot === "string" ? jroot : "<its root>"}, or ${hint}`,
    );
  if (pending.kind !== "up") return;
  const problems = journalPathProblems(pending, stateDir, root);
  if (problems.length > 0)
    throw new UserError(
      `the journal ${pending.file} names changes netmap-provision never makes, so nothing in it is undone:\n  ${problems.join("\n  ")}`,
      hint,
    );
}

/** Where `path` really is: the realpath of its nearest existing ancestor, plus the rest. */
function realLocation(path: string): string {
  let p = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return [realpathSync(p), ...rest].join("/");
    } catch {
      const up = dirname(p);
      if (up === p) return path;
      rest.unshift(p.slice(up.length + (up.endsWith("/") ? 0 : 1)));
      p = up;
    }
  }
}

/**
 * Everything `down` checks before its first change, besides what readInstalled checked (shape,
 * and paths confined to the trees up writes): every backup it may need is there, a regular file
 * with the recorded sha256, and no path reaches out of those trees through a symlink. A record
 * that fails is refused as a whole (exit 2): nothing is unloaded, removed or put back.
 */
export function checkRestorable(rec: InstalledRecord, root: string, stateDir: string): void {
  const real = (host: string) => underRoot(root, host);
  const problems: string[] = [];
  const backups = [
    ...rec.modules.flatMap((m) => (m.replacedOriginal ? [m.replacedOriginal] : [])),
    ...rec.files.flatMap((f) => (f.previous ? [f.previous] : [])),
  ];
  for (const b of backups) {
    let st: ReturnType<typeof lstatSync> | undefined;
    try {
      st = lstatSync(b.backupPath);
    } catch {
      st = undefined;
    }
    if (!st) problems.push(`the backup ${b.backupPath} of ${b.path} is missing`);
    else if (!st.isFile()) problems.push(`the backup ${b.backupPath} of ${b.path} is not a regular file`);
    else if (sha256File(b.backupPath) !== b.sha256)
      problems.push(`the backup ${b.backupPath} of ${b.path} does not have the recorded sha256 ${b.sha256}`);
  }
  // The trees themselves may be symlinks (merged /usr); a path must stay where its tree really is.
  const modTree = realLocation(real(`/lib/modules/${rec.kernelRelease}`));
  const rootReal = realLocation(root);
  const inside = (p: string, dir: string) => dir === "/" || p === dir || p.startsWith(`${dir}/`);
  const written = [
    ...rec.modules.flatMap((m) => [m.path, m.replacedOriginal?.path, m.replacedOriginal?.movedAside]),
    ...rec.files.map((f) => f.path),
    ...rec.createdDirs,
  ].filter((p): p is string => p !== undefined);
  for (const p of written) {
    const where = realLocation(real(p));
    const tree = p.startsWith(`/lib/modules/${rec.kernelRelease}/`) ? modTree : rootReal;
    if (!inside(where, tree)) problems.push(`${p} leads to ${where}, outside ${tree}`);
  }
  if (problems.length > 0)
    throw new UserError(
      `${installedPath(stateDir)} cannot be undone safely, so down changes nothing:\n  ${problems.join("\n  ")}`,
      installedHint(stateDir),
    );
}

/** A file we may touch holds one of these sha256s (undefined: absent); anything else is foreign. */
function checkNotForeign(path: string, allowed: Array<string | undefined>, problems: string[]): void {
  const cur = sha256IfExists(path);
  if (!allowed.includes(cur)) problems.push(`${path} (sha256 ${cur})`);
}

async function restoreRecord(
  rec: InstalledRecord,
  tx: Transaction,
  opts: RestoreOptions,
  report: RestoreReport = { recovered: undefined, hadInstall: true, restored: [], removed: [], resolved: {} },
): Promise<void> {
  const { root, stateDir, exec } = opts;
  const real = (host: string) => underRoot(root, host);
  const kver = rec.kernelRelease;

  // Look before touching anything: refuse as a whole rather than stop half way.
  const problems: string[] = [];
  for (const m of rec.modules) {
    const ro = m.replacedOriginal;
    const sameFile = ro !== undefined && ro.path === m.path;
    checkNotForeign(real(m.path), [undefined, m.sha256, ...(sameFile ? [ro.sha256] : [])], problems);
    if (ro && !sameFile) checkNotForeign(real(ro.path), [undefined, ro.sha256], problems);
  }
  // A regenerated initramfs that changed again since (a kernel update rebuilt it) is not refused:
  // it is rebuilt once the stock modules are back (see below).
  const rebuild = rec.files.filter(
    (f) => f.kind === "initramfs" && ![f.sha256, f.previous?.sha256].includes(sha256IfExists(real(f.path))),
  );
  for (const f of rec.files)
    if (!rebuild.includes(f))
      checkNotForeign(real(f.path), [undefined, f.sha256, f.previous?.sha256], problems);
  if (problems.length > 0 && !opts.force)
    throw new StepError(
      "restore",
      `these files hold neither what netmap-provision installed nor the originals, so restore stops before changing anything:\n  ${problems.join("\n  ")}`,
      "something else changed them since the install; check them, then rerun with --force to put the originals back over them",
    );

  const remove = async (path: string) => {
    if (!existsSync(path)) return;
    await tx.step("remove", { path, sha256: sha256File(path) }, () => {
      unlinkSync(path);
      fsyncDir(dirname(path));
    });
    report.removed.push(path);
  };

  for (const m of [...rec.modules].reverse()) {
    const dest = real(m.path);
    const ro = m.replacedOriginal;
    if (!ro) {
      await remove(dest);
      continue;
    }
    const orig = real(ro.path);
    if (orig !== dest) await remove(dest);
    const aside = ro.movedAside ? real(ro.movedAside) : undefined;
    if (aside && existsSync(aside) && sha256File(aside) === ro.sha256) {
      // The 2012 rename, reversed: the very same inode comes back, with its mtime and owner.
      if (sha256IfExists(orig) === ro.sha256) await remove(aside);
      else
        await tx.step("put-back", { path: orig, from: aside, sha256: ro.sha256 }, () => {
          renameSync(aside, orig);
          fsyncDir(dirname(orig));
        });
    } else if (sha256IfExists(orig) !== ro.sha256) {
      await tx.step("put-back", { path: orig, from: ro.backupPath, sha256: ro.sha256 }, () =>
        restoreFromBackup(ro, orig),
      );
    }
    const got = sha256IfExists(orig);
    if (got !== ro.sha256)
      throw new StepError(
        "restore",
        `${orig} has sha256 ${got} after restore, expected ${ro.sha256}`,
        `copy ${ro.backupPath} to ${orig} by hand`,
      );
    report.restored.push({ path: orig, sha256: ro.sha256 });
  }

  for (const f of [...rec.files].reverse()) {
    if (rebuild.includes(f)) continue;
    const path = real(f.path);
    const prev = f.previous;
    if (!prev) {
      await remove(path);
      continue;
    }
    if (sha256IfExists(path) !== prev.sha256)
      await tx.step("put-back", { path, from: prev.backupPath, sha256: prev.sha256 }, () =>
        restoreFromBackup(prev, path),
      );
    report.restored.push({ path, sha256: prev.sha256 });
  }

  for (const d of [...rec.createdDirs].reverse()) {
    const path = real(d);
    if (existsSync(path)) await tx.step("rmdir", { path }, () => removeDirIfEmpty(path, opts.warn));
  }

  await runDepmod({ root, kver, exec, tx });
  for (const f of rebuild) {
    opts.warn?.(
      `${f.path} was regenerated by something else after up; regenerating it again with the stock modules back`,
    );
    const argv = f.regenerate ?? [];
    if (argv.length > 0)
      await tx.step("regenerate-initramfs-again", { path: real(f.path), argv }, () =>
        exec.run(argv, { mutates: true }).then(() => {}),
      );
  }
  const wrong: string[] = [];
  for (const m of rec.modules) {
    const expected = m.replacedOriginal
      ? real(m.replacedOriginal.path)
      : m.shadowed
        ? real(m.shadowed)
        : undefined;
    const r = await resolveModule({ root, kver, module: m.module, exec });
    report.resolved[m.module] = r.path;
    if (r.path !== expected)
      wrong.push(`${m.module} resolves to ${r.path ?? "nothing"}, expected ${expected ?? "nothing"}`);
  }
  if (wrong.length > 0)
    throw new StepError(
      "verify-restore",
      `the original files are back, but after depmod:\n  ${wrong.join("\n  ")}`,
      "another copy of these modules is in a directory depmod prefers (updates/, extra/): look there",
    );
  await tx.step("forget-install", { path: installedPath(stateDir) }, () => removeInstalled(stateDir));
}
