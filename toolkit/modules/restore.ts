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
import { type BackupRef, restoreFromBackup } from "./backup.js";
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

/**
 * One thing the restore does, in the order it does it. planRestore decides them from the record
 * and the files as they are; restoreRecord carries them out, and `down --plan` prints them: one
 * decision, made in one place, for both.
 */
export type RestoreAction =
  /** Delete a file we wrote (journaled "remove"). */
  | { op: "remove"; path: string }
  /** The 2012 rename reversed: the moved-aside stock file goes back (journaled "put-back"). */
  | { op: "rename-back"; path: string; from: string; sha256: string }
  /** Copy a verified backup back (journaled "put-back"). */
  | { op: "copy-back"; path: string; backup: BackupRef }
  /** `path` holds the original again (sha256 checked when `verify`), for the report. */
  | { op: "restored"; path: string; sha256: string; verify: boolean; backupPath: string }
  /** Remove a directory up created, if it is empty (journaled "rmdir"). */
  | { op: "rmdir"; path: string }
  /** depmod for the kernel (journaled "depmod"). */
  | { op: "depmod"; kver: string }
  /** An initramfs something else regenerated since up: regenerate it again with the stock modules back (argv empty: only warned about). */
  | { op: "regenerate"; path: string; hostPath: string; argv: string[] }
  /** Which file modprobe resolves `module` to now, and which one it must be. */
  | { op: "resolve"; module: string; expected: string | undefined }
  /** installed.json removed: nothing is installed any more (journaled "forget-install"). */
  | { op: "forget"; path: string };

/** initramfs images changed again since up (a kernel update rebuilt them): regenerated, not refused. */
function initramfsToRebuild(rec: InstalledRecord, root: string) {
  return rec.files.filter(
    (f) =>
      f.kind === "initramfs" &&
      ![f.sha256, f.previous?.sha256].includes(sha256IfExists(underRoot(root, f.path))),
  );
}

/**
 * What restoring `rec` under `root` does now, step by step (pure but for reading the files it
 * decides on). The same list restoreRecord runs; it only reads, so `down --plan` shows it.
 */
export function planRestore(rec: InstalledRecord, root: string, stateDir: string): RestoreAction[] {
  const real = (host: string) => underRoot(root, host);
  const out: RestoreAction[] = [];
  const remove = (path: string) => {
    if (existsSync(path)) out.push({ op: "remove", path });
  };
  const rebuild = initramfsToRebuild(rec, root);

  for (const m of [...rec.modules].reverse()) {
    const dest = real(m.path);
    const ro = m.replacedOriginal;
    if (!ro) {
      remove(dest);
      continue;
    }
    const orig = real(ro.path);
    if (orig !== dest) remove(dest);
    const aside = ro.movedAside ? real(ro.movedAside) : undefined;
    if (aside && existsSync(aside) && sha256File(aside) === ro.sha256) {
      // The 2012 rename, reversed: the very same inode comes back, with its mtime and owner.
      if (sha256IfExists(orig) === ro.sha256) remove(aside);
      else out.push({ op: "rename-back", path: orig, from: aside, sha256: ro.sha256 });
    } else if (sha256IfExists(orig) !== ro.sha256) out.push({ op: "copy-back", path: orig, backup: ro });
    out.push({ op: "restored", path: orig, sha256: ro.sha256, verify: true, backupPath: ro.backupPath });
  }

  for (const f of [...rec.files].reverse()) {
    if (rebuild.includes(f)) continue;
    const path = real(f.path);
    const prev = f.previous;
    if (!prev) {
      remove(path);
      continue;
    }
    if (sha256IfExists(path) !== prev.sha256) out.push({ op: "copy-back", path, backup: prev });
    out.push({ op: "restored", path, sha256: prev.sha256, verify: false, backupPath: prev.backupPath });
  }

  for (const d of [...rec.createdDirs].reverse()) {
    const path = real(d);
    if (existsSync(path)) out.push({ op: "rmdir", path });
  }

  out.push({ op: "depmod", kver: rec.kernelRelease });
  for (const f of rebuild)
    out.push({ op: "regenerate", path: real(f.path), hostPath: f.path, argv: f.regenerate ?? [] });
  for (const m of rec.modules) {
    const expected = m.replacedOriginal
      ? real(m.replacedOriginal.path)
      : m.shadowed
        ? real(m.shadowed)
        : undefined;
    out.push({ op: "resolve", module: m.module, expected });
  }
  out.push({ op: "forget", path: installedPath(stateDir) });
  return out;
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
  // it is rebuilt once the stock modules are back (see planRestore).
  const rebuild = initramfsToRebuild(rec, root);
  for (const f of rec.files)
    if (!rebuild.includes(f))
      checkNotForeign(real(f.path), [undefined, f.sha256, f.previous?.sha256], problems);
  if (problems.length > 0 && !opts.force)
    throw new StepError(
      "restore",
      `these files hold neither what netmap-provision installed nor the originals, so restore stops before changing anything:\n  ${problems.join("\n  ")}`,
      "something else changed them since the install; check them, then rerun with --force to put the originals back over them",
    );

  const wrong: string[] = [];
  for (const a of planRestore(rec, root, stateDir)) {
    switch (a.op) {
      case "remove": {
        const path = a.path;
        if (!existsSync(path)) break;
        await tx.step("remove", { path, sha256: sha256File(path) }, () => {
          unlinkSync(path);
          fsyncDir(dirname(path));
        });
        report.removed.push(path);
        break;
      }
      case "rename-back":
        await tx.step("put-back", { path: a.path, from: a.from, sha256: a.sha256 }, () => {
          renameSync(a.from, a.path);
          fsyncDir(dirname(a.path));
        });
        break;
      case "copy-back":
        await tx.step("put-back", { path: a.path, from: a.backup.backupPath, sha256: a.backup.sha256 }, () =>
          restoreFromBackup(a.backup, a.path),
        );
        break;
      case "restored": {
        const got = sha256IfExists(a.path);
        if (a.verify && got !== a.sha256)
          throw new StepError(
            "restore",
            `${a.path} has sha256 ${got} after restore, expected ${a.sha256}`,
            `copy ${a.backupPath} to ${a.path} by hand`,
          );
        report.restored.push({ path: a.path, sha256: a.sha256 });
        break;
      }
      case "rmdir":
        if (existsSync(a.path))
          await tx.step("rmdir", { path: a.path }, () => removeDirIfEmpty(a.path, opts.warn));
        break;
      case "depmod":
        await runDepmod({ root, kver: a.kver, exec, tx });
        break;
      case "regenerate":
        opts.warn?.(
          `${a.hostPath} was regenerated by something else after up; regenerating it again with the stock modules back`,
        );
        if (a.argv.length > 0)
          await tx.step("regenerate-initramfs-again", { path: a.path, argv: a.argv }, () =>
            exec.run(a.argv, { mutates: true }).then(() => {}),
          );
        break;
      case "resolve": {
        const r = await resolveModule({ root, kver, module: a.module, exec });
        report.resolved[a.module] = r.path;
        if (r.path !== a.expected)
          wrong.push(`${a.module} resolves to ${r.path ?? "nothing"}, expected ${a.expected ?? "nothing"}`);
        break;
      }
      case "forget":
        if (wrong.length > 0)
          throw new StepError(
            "verify-restore",
            `the original files are back, but after depmod:\n  ${wrong.join("\n  ")}`,
            "another copy of these modules is in a directory depmod prefers (updates/, extra/): look there",
          );
        await tx.step("forget-install", { path: a.path }, () => removeInstalled(stateDir));
        break;
    }
  }
}
