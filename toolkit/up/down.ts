import { existsSync, unlinkSync } from "node:fs";
import { MODULE_NAME_RE } from "../build/manifest.js";
import { BlockedError, ProvisionError, StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { DEFAULT_NETMAP_MODULE } from "../modules/install.js";
import { checkRecoverable, checkRestorable, recoverPending, restore } from "../modules/restore.js";
import { runSteps } from "../pipeline/runner.js";
import type { Step, StepContext } from "../pipeline/step.js";
import { sha256IfExists } from "../state/atomic-file.js";
import { readInstalled } from "../state/installed.js";
import { pendingTransaction } from "../state/journal.js";
import { withLock } from "../state/lock.js";
import { findHolders, holderProblems } from "../swap/holders.js";
import { type InterfaceState, recordInterfaceState, restoreInterfaceState } from "../swap/iface-state.js";
import { isLoaded, modprobe, rmmod, type UnloadArgs } from "../swap/module-ops.js";
import { boundInterfaces } from "../verify/verify.js";
import { disarmDeadman } from "./deadman.js";
import { loadRecordPath } from "./in-place.js";
import { type DownReport, reportError, reportStep } from "./report.js";

export interface DownOptions {
  root: string;
  stateDir: string;
  exec: Exec;
  /** Put originals back over files that hold neither ours nor the originals. */
  force?: boolean;
  renderer: "auto" | "plain" | "silent";
  warn?: (m: string) => void;
  /** The dead-man timer runs down itself: it must not kill itself. */
  fromDeadman?: boolean;
}

/** What `down` takes back: netmap's module, the swapped drivers, their interfaces and stock files. */
export interface DownTargets {
  /** The module that is netmap ("netmap", "netmap_lin"): unloaded last, never reloaded. */
  netmapModule: string;
  drivers: Set<string>;
  ifnames: Set<string>;
  /** Driver -> the stock file (real path) it must resolve to again. */
  stockPaths: Map<string, string>;
}

interface DownState extends DownTargets {
  interfaces: InterfaceState[];
  unloaded: string[];
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

/**
 * `down`: finish or undo an interrupted transaction, unload the patched drivers and netmap, put
 * every original file back (sha256 checked) and depmod, reload the stock drivers, restore the
 * interfaces, then prove it: /dev/netmap gone, each interface bound to its stock driver, each
 * module resolving to its stock file. Safe to run again at any point (every step looks first).
 */
export async function runDown(o: DownOptions): Promise<DownReport> {
  const report: DownReport = {
    ok: false,
    steps: [],
    restored: [],
    stockBound: [],
    devNetmapGone: false,
    warnings: [],
  };
  const warn = (m: string) => {
    report.warnings.push(m);
    o.warn?.(m);
  };
  const { root, stateDir, exec } = o;
  const st: DownState = {
    netmapModule: DEFAULT_NETMAP_MODULE,
    drivers: new Set(),
    ifnames: new Set(),
    interfaces: [],
    unloaded: [],
    stockPaths: new Map(),
  };

  const collect = () => {
    Object.assign(st, downTargets(root, stateDir));
  };

  const steps: Step[] = [
    {
      describe: () => ({
        id: "recover",
        title: "Finish or undo an interrupted transaction",
        mutates: true,
        dependsOn: [],
        commands: [],
        files: [],
        checks: [],
      }),
      run: async () => {
        collect();
        const rec = await recoverPending(stateDir, { exec, force: o.force, warn, root });
        if (rec) report.resumed = rec.kind === "up" ? "rolled-back" : "finished";
      },
    },
    {
      describe: () => ({
        id: "unload",
        title: "Unload the patched drivers, then netmap",
        mutates: true,
        dependsOn: ["recover"],
        commands: [],
        files: [],
        checks: ["nothing holds the modules or /dev/netmap"],
      }),
      run: async () => {
        const drivers = [...st.drivers].filter((d) => isLoaded(root, d));
        const toUnload = [...drivers, ...(isLoaded(root, st.netmapModule) ? [st.netmapModule] : [])];
        const problems = holderProblems(findHolders(root, toUnload), toUnload);
        if (problems.length > 0)
          throw new BlockedError(
            `cannot unload ${toUnload.join(", ")}:\n  ${problems.join("\n  ")}`,
            "stop the programs using netmap or the interfaces, then run `down` again",
          );
        st.interfaces = await recordInterfaceState(exec, [...st.ifnames]);
        for (const m of toUnload) {
          await rmmod(exec, m);
          st.unloaded.push(m);
        }
      },
    },
    {
      describe: () => ({
        id: "restore",
        title: "Put every original file back (sha256 checked) and run depmod",
        mutates: true,
        dependsOn: ["unload"],
        commands: [],
        files: [],
        checks: ["each restored file has its original sha256", "each module resolves to its stock file"],
      }),
      run: async () => {
        const r = await restore({ root, stateDir, exec, force: o.force, warn });
        for (const f of r.restored)
          report.restored.push({ ...f, matches: sha256IfExists(f.path) === f.sha256 });
        for (const [m, p] of Object.entries(r.resolved))
          if (p && !st.stockPaths.has(m)) st.stockPaths.set(m, p);
        if (existsSync(loadRecordPath(stateDir))) unlinkSync(loadRecordPath(stateDir));
      },
    },
    {
      describe: () => ({
        id: "reload",
        title: "Load the stock drivers and bring the interfaces back as they were",
        mutates: true,
        dependsOn: ["restore"],
        commands: [],
        files: [],
        checks: [],
      }),
      run: async () => {
        for (const d of st.drivers) if (!isLoaded(root, d)) await modprobe(exec, d);
        for (const f of await restoreInterfaceState(exec, root, st.interfaces)) warn(f);
      },
    },
    {
      describe: () => ({
        id: "check",
        title: "Check: /dev/netmap gone, the stock drivers bound and resolving to their stock files",
        mutates: false,
        dependsOn: ["reload"],
        commands: [],
        files: [],
        checks: [],
      }),
      run: async () => {
        const problems: string[] = [];
        report.devNetmapGone =
          !existsSync(underRoot(root, "/dev/netmap")) && !isLoaded(root, st.netmapModule);
        if (!report.devNetmapGone)
          problems.push(`/dev/netmap is still there (or ${st.netmapModule} is still loaded)`);
        const nics = boundInterfaces(root);
        for (const ifname of st.ifnames) {
          const nic = nics.find((n) => n.ifname === ifname);
          report.stockBound.push({ ifname, driver: nic?.driver ?? null });
          if (!nic?.driver) problems.push(`${ifname} has no driver bound`);
        }
        for (const d of st.drivers) {
          const r = await exec.run(["modinfo", "-n", d], { reject: false, timeoutMs: 10_000 });
          const want = st.stockPaths.get(d);
          if (want && r.stdout.trim() !== want)
            problems.push(`${d} resolves to ${r.stdout.trim() || "nothing"}, not to the stock ${want}`);
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
    },
  ];

  try {
    await withLock(stateDir, { command: process.argv.slice(1).join(" ") || "down", warn }, async () => {
      // Every state file read and checked before the first change (the timer, an unload): a
      // damaged or forged record or journal is refused with nothing touched.
      const pending = pendingTransaction(stateDir);
      if (pending) checkRecoverable(pending, stateDir, root);
      const installed = readInstalled(stateDir);
      if (installed) checkRestorable(installed, root, stateDir);
      if (!o.fromDeadman) {
        const d = disarmDeadman(stateDir);
        if (d) warn(`stopped the dead-man timer (pid ${d.pid}): down is running now`);
      }
      const ctx: StepContext = { exec, dryRun: false, data: {} };
      const res = await runSteps(steps, ctx, { renderer: o.renderer, rollbackOnFailure: false });
      report.steps = res.outcomes.map(reportStep);
      if (!res.ok) throw res.error;
      report.ok = true;
    });
  } catch (err) {
    if (!(err instanceof ProvisionError)) throw err;
    report.error = reportError(err);
  }
  return report;
}
