import { existsSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { MODULE_NAME_RE } from "../build/manifest.js";
import { BlockedError, StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { readHostText } from "../host/host-fs.js";
import { depmodArgv, depmodIndexes } from "../modules/depmod.js";
import { DEFAULT_NETMAP_MODULE } from "../modules/install.js";
import { modinfoSupportsBasedir, resolveArgv, runningResolveArgv } from "../modules/resolve.js";
import { planRestore, type RestoreAction, recoverPending, restore } from "../modules/restore.js";
import { parseProcModules } from "../parse/proc.js";
import type { FileChange, PlannedCommand, Step, StepDescription } from "../runner/step.js";
import { sha256IfExists } from "../state/atomic-file.js";
import { type InstalledRecord, installedPath, installedSchema, readInstalled } from "../state/installed.js";
import { type JournalState, journalDir, pendingTransaction } from "../state/journal.js";
import { readStateJson } from "../state/state-file.js";
import { undoEntryFor } from "../state/undo-table.js";
import { findHolders, holderProblems } from "../swap/holders.js";
import {
  type InterfaceState,
  recordInterfaceArgvs,
  recordInterfaceState,
  restoreArgvs,
  restoreInterfaceState,
} from "../swap/iface-state.js";
import { isLoaded, modprobe, modprobeArgv, rmmod, rmmodArgv, type UnloadArgs } from "../swap/module-ops.js";
import { boundInterfaces } from "../verify/verify.js";
import { type DeadmanInfo, deadmanPath, readDeadman } from "./deadman.js";
import { loadRecordPath } from "./in-place.js";
import { type DownReport, emptyDownReport } from "./up-report.js";

/*
 * The steps of `down`, one definition each: recover, unload, restore, reload, check. Each step's
 * describe() says, from the state on disk (installed.json, a pending journal, <root>/proc/modules,
 * sysfs), the exact argvs it runs and the files it changes, made by the same builders its run()
 * uses (rmmodArgv, modprobeArgv, depmodArgv, resolveArgv, runningResolveArgv, the ip argvs of
 * iface-state.ts, and planRestore's actions). `down --plan` prints these descriptions; runDown
 * (down.ts) runs these steps.
 *
 * Placeholders in a description: `<txid>` is the id of the down transaction the restore opens
 * (a timestamp chosen when it starts); `modules.<index>` stands for the indexes depmod rewrites
 * (which ones depends on kmod's version). Nothing else is left open: an interface's addresses and
 * routes are the ones `ip -j` shows when the plan is made (the run records them again right
 * before it unloads, so what it restores is what is there then).
 */

/** What `down` takes back: netmap's module, the swapped drivers, their interfaces and stock files. */
export interface DownTargets {
  /** The module that is netmap ("netmap", "netmap_lin"): unloaded last, never reloaded. */
  netmapModule: string;
  drivers: Set<string>;
  ifnames: Set<string>;
  /** Driver -> the stock file (real path) it must resolve to again. */
  stockPaths: Map<string, string>;
}

/**
 * What was swapped, read before anything changes: the installed record (which names netmap's
 * module), plus the unload steps of an interrupted up (whose journal names it too), plus the
 * interfaces bound to those drivers now. A record from before the name was kept means "netmap".
 */
export function downTargets(root: string, stateDir: string): DownTargets {
  const pending = pendingTransaction(stateDir);
  const installed = readInstalled(stateDir);
  const fromJournal = pending?.meta.netmapModule;
  const netmapModule =
    installed?.netmapModule ??
    (typeof fromJournal === "string" && MODULE_NAME_RE.test(fromJournal)
      ? fromJournal
      : DEFAULT_NETMAP_MODULE);
  const t: DownTargets = { netmapModule, drivers: new Set(), ifnames: new Set(), stockPaths: new Map() };
  for (const s of pending?.steps ?? [])
    if (s.op === "unload") {
      const a = s.args as UnloadArgs;
      if (a.module !== netmapModule) t.drivers.add(a.module);
      for (const i of a.interfaces ?? []) t.ifnames.add(i.ifname);
    }
  for (const m of installed?.modules ?? []) {
    if (m.module === netmapModule) continue;
    t.drivers.add(m.module);
    const stock = m.replacedOriginal?.path ?? m.shadowed;
    if (stock) t.stockPaths.set(m.module, underRoot(root, stock));
  }
  for (const nic of boundInterfaces(root))
    if (nic.module && t.drivers.has(nic.module)) t.ifnames.add(nic.ifname);
  return t;
}

/** The unload order: the loaded drivers first, then netmap (their dependency) if it is loaded. */
export function unloadOrder(t: DownTargets, loaded: (module: string) => boolean): string[] {
  return [...[...t.drivers].filter(loaded), ...(loaded(t.netmapModule) ? [t.netmapModule] : [])];
}

/** The stock drivers to load again: every driver that is not loaded (netmap never is one). */
export const reloadOrder = (t: DownTargets, loaded: (module: string) => boolean): string[] =>
  [...t.drivers].filter((d) => !loaded(d));

/**
 * The state `down` starts from, read only: what the descriptions are made of. `interfaces` and
 * `modinfoBasedir` need commands (read-only) and are filled by previewDown; without them the
 * descriptions say so instead of guessing.
 */
export interface DownPreview {
  root: string;
  stateDir: string;
  targets: DownTargets;
  pending: JournalState | undefined;
  installed: InstalledRecord | undefined;
  /**
   * installed.json once the recover step is over, what the restore step restores: none after an
   * interrupted down (its recovery did the restore), the previous record (or none) when the
   * interrupted up had written one (undoWriteFile puts the previous content back), else as now.
   */
  installedAfterRecovery: InstalledRecord | undefined;
  deadman: DeadmanInfo | undefined;
  /** Modules loaded now, as <root>/proc/modules lists them. */
  loadedNow: string[];
  /** Modules loaded once the recover step is over (an interrupted up's loads and unloads undone). */
  loadedAfterRecovery: Set<string>;
  /** The interfaces' state as `ip -j` shows it now (what the unload step records). */
  interfaces?: InterfaceState[];
  /** Whether this modinfo has -b (asked only for a sysroot; resolveModule asks the same). */
  modinfoBasedir?: boolean;
}

const loadedModules = (root: string): string[] =>
  parseProcModules(readHostText(root, "/proc/modules") ?? "").map((m) => m.name);

/** The journal steps recovery undoes, newest first (begun and not undone yet), as undoSteps walks them. */
const toUndo = (j: JournalState) => [...j.steps].reverse().filter((s) => !s.undone);

/** The armed timer; a damaged record reads as none here (`down --plan` and down itself refuse it first). */
function deadmanOrNone(stateDir: string): DeadmanInfo | undefined {
  try {
    return readDeadman(stateDir);
  } catch {
    return undefined;
  }
}

function installedAfter(
  pending: JournalState | undefined,
  installed: InstalledRecord | undefined,
  stateDir: string,
): InstalledRecord | undefined {
  if (pending?.kind === "down") return undefined;
  // Undone newest first, so the oldest write of installed.json decides what is left: its previous.
  const write = pending
    ? toUndo(pending)
        .filter((s) => s.op === "write-file" && s.args.path === installedPath(stateDir))
        .at(-1)
    : undefined;
  if (!write) return installed;
  const previous = write.args.previous as { backupPath?: unknown } | undefined;
  if (typeof previous?.backupPath !== "string") return undefined;
  try {
    return readStateJson(previous.backupPath, installedSchema) as InstalledRecord | undefined;
  } catch {
    return undefined; // recovery refuses a damaged backup itself
  }
}

/** The preview from files alone (no command runs): what runDown's descriptions use. */
export function readDownPreview(root: string, stateDir: string): DownPreview {
  const pending = pendingTransaction(stateDir);
  const installed = readInstalled(stateDir);
  const loadedNow = loadedModules(root);
  const loadedAfterRecovery = new Set(loadedNow);
  if (pending?.kind === "up") {
    // undoLoad rmmods what the up loaded; the deferred undo of "unload" modprobes what it unloaded.
    for (const s of toUndo(pending)) if (s.op === "load") loadedAfterRecovery.delete(String(s.args.module));
    for (const s of toUndo(pending)) if (s.op === "unload") loadedAfterRecovery.add(String(s.args.module));
  }
  return {
    root,
    stateDir,
    targets: downTargets(root, stateDir),
    pending,
    installed,
    installedAfterRecovery: installedAfter(pending, installed, stateDir),
    deadman: deadmanOrNone(stateDir),
    loadedNow,
    loadedAfterRecovery,
  };
}

/** The full preview for `down --plan`: the files, plus the read-only probes the run makes too. */
export async function previewDown(o: { root: string; stateDir: string; exec: Exec }): Promise<DownPreview> {
  const p = readDownPreview(o.root, o.stateDir);
  p.interfaces = await recordInterfaceState(o.exec, [...p.targets.ifnames]);
  p.modinfoBasedir = o.root === "/" || o.root === "" ? true : await modinfoSupportsBasedir(o.exec);
  return p;
}

/** What the steps share while down runs (DownTargets filled by the recover step, before recovery). */
export interface DownRun {
  root: string;
  stateDir: string;
  exec: Exec;
  force?: boolean;
  warn: (m: string) => void;
  report: DownReport;
  /** The preview the descriptions are made from (read lazily, once the state files were checked). */
  preview: () => DownPreview;
  st: DownTargets & { interfaces: InterfaceState[]; unloaded: string[] };
}

const run = (argv: string[]): PlannedCommand => ({ argv, mutates: true });
const probe = (argv: string[]): PlannedCommand => ({ argv, mutates: false });

/** The commands and file changes of planRestore's actions (the restore's own decisions). */
export function describeRestoreActions(
  actions: readonly RestoreAction[],
  p: Pick<DownPreview, "root" | "modinfoBasedir">,
  kver: string,
): { commands: PlannedCommand[]; files: FileChange[]; notes: string[] } {
  const commands: PlannedCommand[] = [];
  const files: FileChange[] = [];
  const notes: string[] = [];
  for (const a of actions)
    switch (a.op) {
      case "remove":
        files.push({ action: "delete", path: a.path });
        break;
      case "rename-back":
        files.push({ action: "move", path: a.from, to: a.path });
        break;
      case "copy-back":
        files.push({ action: "copy", path: a.backup.backupPath, to: a.path });
        break;
      case "restored":
        break;
      case "rmdir":
        files.push({ action: "delete", path: a.path });
        notes.push(`${a.path} is removed only if it is empty then`);
        break;
      case "depmod":
        commands.push(run(depmodArgv(p.root, a.kver)));
        files.push({ action: "replace", path: depmodIndexes(p.root, a.kver) });
        break;
      case "regenerate":
        if (a.argv.length > 0) commands.push(run(a.argv));
        notes.push(
          a.argv.length > 0
            ? `${a.hostPath} was regenerated by something else after up: it is regenerated again`
            : `${a.hostPath} was regenerated by something else after up and is left as it is`,
        );
        break;
      case "resolve": {
        const argv = resolveArgv(p.root, kver, a.module, p.modinfoBasedir ?? true);
        if (argv) commands.push(probe(argv));
        else notes.push(`${a.module}: modules.dep is read (this modinfo has no -b)`);
        break;
      }
      case "forget":
        files.push({ action: "delete", path: a.path });
        break;
    }
  return { commands, files, notes };
}

/** The restore of installed.json as it is now, described (nothing when there is no record). */
function describeRestoreOf(p: DownPreview, rec: InstalledRecord | undefined) {
  if (!rec) return { commands: [], files: [], notes: [] };
  return describeRestoreActions(planRestore(rec, p.root, p.stateDir), p, rec.kernelRelease);
}

/**
 * Recovery of an interrupted up, as undoSteps and the undo table do it: newest step first, an
 * undone "load" rmmods its module if loaded (undoLoad); "depmod" and "unload" defer their work
 * (undoDepmod: depmod again; undoUnload: one deferred "reload" for all unloads: depmod, modprobe
 * each, then the interfaces), and the deferred actions run after every step, in the order they
 * were first deferred. Only these three ops run commands; the others change files.
 */
function describeUndo(p: DownPreview, j: JournalState) {
  const commands: PlannedCommand[] = [];
  const notes: string[] = [];
  const loaded = new Set(p.loadedNow);
  const deferred = new Map<string, () => void>();
  const unloads: UnloadArgs[] = [];
  for (const s of toUndo(j)) {
    notes.push(`undo #${s.seq} ${s.op}: ${undoEntryFor(s.op)?.does(s.args) ?? "?"}`);
    const module = String(s.args.module);
    if (s.op === "load" && loaded.has(module)) {
      commands.push(run(rmmodArgv(module)));
      loaded.delete(module);
    } else if (s.op === "depmod") {
      const argv = depmodArgv(String(s.args.root), String(s.args.kver));
      const key = `depmod ${String(s.args.root)} ${String(s.args.kver)}`;
      if (!deferred.has(key)) deferred.set(key, () => commands.push(run(argv)));
    } else if (s.op === "unload") {
      unloads.push(s.args as UnloadArgs);
      if (!deferred.has("reload"))
        deferred.set("reload", () => {
          const first = unloads[0];
          if (!first) return;
          commands.push(run(depmodArgv(first.root, first.kver)));
          for (const u of unloads)
            if (!loaded.has(u.module)) {
              commands.push(run(modprobeArgv(u.module)));
              loaded.add(u.module);
            }
          for (const u of unloads)
            for (const i of u.interfaces ?? []) commands.push(...restoreArgvs(i).map(run));
        });
    }
  }
  for (const emit of deferred.values()) emit();
  return { commands, notes };
}

function recoverStep(r: DownRun): Step {
  return {
    describe: () => {
      const p = r.preview();
      const d: StepDescription = {
        id: "recover",
        title: "Finish or undo an interrupted transaction",
        mutates: true,
        dependsOn: [],
        commands: [],
        files: [],
        checks: [],
        notes: [],
      };
      if (p.deadman)
        d.notes?.push(
          `the dead-man timer (pid ${p.deadman.pid}, deadline ${p.deadman.deadline}) is stopped first: SIGTERM, then ${deadmanPath(p.stateDir)} is deleted`,
        );
      if (p.deadman) d.files.push({ action: "delete", path: deadmanPath(p.stateDir) });
      const j = p.pending;
      if (!j) {
        d.notes?.push("no interrupted transaction: nothing to do");
        return d;
      }
      if (j.kind === "up") {
        const u = describeUndo(p, j);
        d.commands.push(...u.commands);
        d.notes?.push(`the interrupted up ${j.txid} (${j.file}) is undone, newest step first:`, ...u.notes);
      } else {
        const rs = describeRestoreOf(p, p.installed);
        d.commands.push(...rs.commands);
        d.files.push(...rs.files);
        d.notes?.push(
          `the interrupted down ${j.txid} (${j.file}) is finished: the restore below runs now`,
          ...rs.notes,
        );
      }
      d.files.push({ action: "replace", path: j.file });
      return d;
    },
    run: async () => {
      Object.assign(r.st, downTargets(r.root, r.stateDir));
      const rec = await recoverPending(r.stateDir, {
        exec: r.exec,
        force: r.force,
        warn: r.warn,
        root: r.root,
      });
      if (rec) r.report.resumed = rec.kind === "up" ? "rolled-back" : "finished";
    },
  };
}

function unloadStep(r: DownRun): Step {
  return {
    describe: () => {
      const p = r.preview();
      const order = unloadOrder(p.targets, (m) => p.loadedAfterRecovery.has(m));
      return {
        id: "unload",
        title: "Unload the patched drivers, then netmap",
        mutates: true,
        dependsOn: ["recover"],
        commands: [
          ...recordInterfaceArgvs([...p.targets.ifnames]).map(probe),
          ...order.map(rmmodArgv).map(run),
        ],
        files: [],
        checks: ["nothing holds the modules or /dev/netmap"],
        notes: [
          p.targets.ifnames.size > 0
            ? `the state of ${[...p.targets.ifnames].join(", ")} (addresses, routes, mtu, up) is recorded first`
            : "no interface is bound to the drivers: none to record",
          ...(order.length === 0 ? ["nothing of netmap's is loaded: nothing to unload"] : []),
        ],
      };
    },
    run: async () => {
      const { root, st } = r;
      const toUnload = unloadOrder(st, (m) => isLoaded(root, m));
      const problems = holderProblems(findHolders(root, toUnload), toUnload);
      if (problems.length > 0)
        throw new BlockedError(
          `cannot unload ${toUnload.join(", ")}:\n  ${problems.join("\n  ")}`,
          "stop the programs using netmap or the interfaces, then run `down` again",
        );
      st.interfaces = await recordInterfaceState(r.exec, [...st.ifnames]);
      for (const m of toUnload) {
        await rmmod(r.exec, m);
        st.unloaded.push(m);
      }
    },
  };
}

function restoreStep(r: DownRun): Step {
  return {
    describe: () => {
      const p = r.preview();
      const rec = p.installedAfterRecovery;
      const rs = describeRestoreOf(p, rec);
      const files = rec
        ? [{ action: "create" as const, path: join(journalDir(p.stateDir), "<txid>.jsonl") }, ...rs.files]
        : [];
      if (existsSync(loadRecordPath(p.stateDir)))
        files.push({ action: "delete", path: loadRecordPath(p.stateDir) });
      return {
        id: "restore",
        title: "Put every original file back (sha256 checked) and run depmod",
        mutates: true,
        dependsOn: ["unload"],
        commands: rs.commands,
        files,
        checks: ["each restored file has its original sha256", "each module resolves to its stock file"],
        notes: [
          ...(rec
            ? [
                `from ${installedPath(p.stateDir)}; each change is journaled first in the down transaction <txid>`,
              ]
            : ["nothing is installed: nothing to put back"]),
          ...(p.pending?.kind === "up"
            ? [
                "made from the files as they are now: recovering the interrupted up (recover) changes them first",
              ]
            : []),
          ...rs.notes,
        ],
      };
    },
    run: async () => {
      const res = await restore({
        root: r.root,
        stateDir: r.stateDir,
        exec: r.exec,
        force: r.force,
        warn: r.warn,
      });
      for (const f of res.restored)
        r.report.restored.push({ ...f, matches: sha256IfExists(f.path) === f.sha256 });
      for (const [m, path] of Object.entries(res.resolved))
        if (path && !r.st.stockPaths.has(m)) r.st.stockPaths.set(m, path);
      if (existsSync(loadRecordPath(r.stateDir))) unlinkSync(loadRecordPath(r.stateDir));
    },
  };
}

function reloadStep(r: DownRun): Step {
  return {
    describe: () => {
      const p = r.preview();
      const unloaded = new Set(unloadOrder(p.targets, (m) => p.loadedAfterRecovery.has(m)));
      const reload = reloadOrder(p.targets, (m) => p.loadedAfterRecovery.has(m) && !unloaded.has(m));
      const commands = reload.map(modprobeArgv).map(run);
      const notes: string[] = [];
      if (p.interfaces) {
        for (const s of p.interfaces) commands.push(...restoreArgvs(s).map(run));
        if (p.interfaces.length > 0)
          notes.push(
            `each interface's commands run once its driver registered it again; its addresses and routes are those \`ip -j\` shows now (the run records them again just before unloading)`,
          );
      } else if (p.targets.ifnames.size > 0)
        notes.push(`${[...p.targets.ifnames].join(", ")}: put back as the unload step recorded them`);
      return {
        id: "reload",
        title: "Load the stock drivers and bring the interfaces back as they were",
        mutates: true,
        dependsOn: ["restore"],
        commands,
        files: [],
        checks: [],
        notes,
      };
    },
    run: async () => {
      for (const d of reloadOrder(r.st, (m) => isLoaded(r.root, m))) await modprobe(r.exec, d);
      for (const f of await restoreInterfaceState(r.exec, r.root, r.st.interfaces)) r.warn(f);
    },
  };
}

function checkStep(r: DownRun): Step {
  return {
    describe: () => {
      const p = r.preview();
      return {
        id: "check",
        title: "Check: /dev/netmap gone, the stock drivers bound and resolving to their stock files",
        mutates: false,
        dependsOn: ["reload"],
        commands: [...p.targets.drivers].map(runningResolveArgv).map(probe),
        files: [],
        checks: [
          `/dev/netmap is gone and ${p.targets.netmapModule} is not loaded`,
          ...[...p.targets.ifnames].map((i) => `${i} has a driver bound`),
          ...[...p.targets.drivers].map(
            (d) =>
              `${d} resolves to ${p.targets.stockPaths.get(d) ?? "its stock file (as restore found it)"}`,
          ),
          "each restored file has its original sha256",
        ],
      };
    },
    run: async () => {
      const { root, st, report, exec } = r;
      const problems: string[] = [];
      report.devNetmapGone = !existsSync(underRoot(root, "/dev/netmap")) && !isLoaded(root, st.netmapModule);
      if (!report.devNetmapGone)
        problems.push(`/dev/netmap is still there (or ${st.netmapModule} is still loaded)`);
      const nics = boundInterfaces(root);
      for (const ifname of st.ifnames) {
        const nic = nics.find((n) => n.ifname === ifname);
        report.stockBound.push({ ifname, driver: nic?.driver ?? null });
        if (!nic?.driver) problems.push(`${ifname} has no driver bound`);
      }
      for (const d of st.drivers) {
        const res = await exec.run(runningResolveArgv(d), { reject: false, timeoutMs: 10_000 });
        const want = st.stockPaths.get(d);
        if (want && res.stdout.trim() !== want)
          problems.push(`${d} resolves to ${res.stdout.trim() || "nothing"}, not to the stock ${want}`);
      }
      for (const f of report.restored)
        if (!f.matches) problems.push(`${f.path} does not have sha256 ${f.sha256}`);
      if (problems.length > 0)
        throw new StepError(
          "check",
          `down finished, but:\n  ${problems.join("\n  ")}`,
          "see `status` and dmesg",
        );
    },
  };
}

/** Down's steps, in order. */
export const downSteps = (r: DownRun): Step[] => [
  recoverStep(r),
  unloadStep(r),
  restoreStep(r),
  reloadStep(r),
  checkStep(r),
];

/** The exec of steps made only to be described: describe() runs nothing, and nothing else may. */
const describeOnly: Exec = {
  dryRun: true,
  run: () => Promise.reject(new Error("down's steps were made to be described, not run")),
  start: () => {
    throw new Error("down's steps were made to be described, not run");
  },
};

/** What `down --plan` prints: the steps' descriptions from a preview, nothing run, nothing written. */
export function describeDown(preview: DownPreview): StepDescription[] {
  const r: DownRun = {
    root: preview.root,
    stateDir: preview.stateDir,
    exec: describeOnly,
    warn: () => {},
    report: emptyDownReport(),
    preview: () => preview,
    st: { ...preview.targets, interfaces: [], unloaded: [] },
  };
  return downSteps(r).map((s) => s.describe());
}

/** What the placeholders in down's descriptions stand for (DownPlan.placeholders lists those used). */
export const PLACEHOLDERS: Readonly<Record<string, string>> = {
  "<txid>": "the id of the down transaction the restore opens (a UTC timestamp)",
  "<index>":
    "each index depmod rewrites (dep, dep.bin, alias, alias.bin, symbols...; which ones depends on kmod's version)",
};

/** `down --plan --json`: what down would do here, step by step. */
export interface DownPlan {
  root: string;
  stateDir: string;
  /** The kernel installed.json was written for (null: nothing installed). */
  kernelRelease: string | null;
  netmapModule: string;
  drivers: string[];
  interfaces: string[];
  /** An interrupted transaction the recover step takes over first. */
  pending: { txid: string; kind: "up" | "down"; file: string } | null;
  steps: StepDescription[];
  /** What the placeholders in `steps` stand for. */
  placeholders: Record<string, string>;
}

/** The preview (with its read-only probes) and the steps' descriptions, as `down --plan` shows them. */
export async function planDown(o: { root: string; stateDir: string; exec: Exec }): Promise<DownPlan> {
  const p = await previewDown(o);
  const steps = describeDown(p);
  const text = JSON.stringify(steps);
  return {
    root: p.root,
    stateDir: p.stateDir,
    kernelRelease: p.installed?.kernelRelease ?? null,
    netmapModule: p.targets.netmapModule,
    drivers: [...p.targets.drivers],
    interfaces: [...p.targets.ifnames],
    pending: p.pending ? { txid: p.pending.txid, kind: p.pending.kind, file: p.pending.file } : null,
    steps,
    placeholders: Object.fromEntries(Object.entries(PLACEHOLDERS).filter(([k]) => text.includes(k))),
  };
}
