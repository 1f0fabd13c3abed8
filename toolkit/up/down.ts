import { ProvisionError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { DEFAULT_NETMAP_MODULE } from "../modules/install.js";
import { checkRecoverable, checkRestorable } from "../modules/restore.js";
import { commandLog } from "../runner/command-log.js";
import { runSteps } from "../runner/runner.js";
import type { StepContext } from "../runner/step.js";
import { readInstalled } from "../state/installed.js";
import { pendingTransaction } from "../state/journal.js";
import { withLock } from "../state/lock.js";
import { disarmDeadman } from "./deadman.js";
import { type DownPreview, type DownRun, downSteps, readDownPreview } from "./down-steps.js";
import { type DownReport, emptyDownReport, reportError, reportStep } from "./up-report.js";

// The steps themselves, and what `down --plan` prints of them, are in down-steps.ts.
export { type DownTargets, downTargets } from "./down-steps.js";

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

/**
 * Every state file down reads, checked before the first change (the timer, an unload), and by
 * `down --plan` before it describes anything: a damaged or forged record or journal is refused
 * with nothing touched.
 */
export function checkDownState(root: string, stateDir: string): void {
  const pending = pendingTransaction(stateDir);
  if (pending) checkRecoverable(pending, stateDir, root);
  const installed = readInstalled(stateDir);
  if (installed) checkRestorable(installed, root, stateDir);
}

/**
 * `down`: finish or undo an interrupted transaction, unload the patched drivers and netmap, put
 * every original file back (sha256 checked) and depmod, reload the stock drivers, restore the
 * interfaces, then prove it: /dev/netmap gone, each interface bound to its stock driver, each
 * module resolving to its stock file. Safe to run again at any point (every step looks first).
 */
export async function runDown(o: DownOptions): Promise<DownReport> {
  const report = emptyDownReport();
  const warn = (m: string) => {
    report.warnings.push(m);
    o.warn?.(m);
  };
  const { root, stateDir } = o;
  const { exec, tag } = commandLog(o.exec, report.commands, "recover");
  let preview: DownPreview | undefined;
  const r: DownRun = {
    root,
    stateDir,
    exec,
    force: o.force,
    warn,
    report,
    // Read when the runner first asks for a title: inside the lock, after checkDownState.
    preview: () => {
      preview ??= readDownPreview(root, stateDir);
      return preview;
    },
    st: {
      netmapModule: DEFAULT_NETMAP_MODULE,
      drivers: new Set(),
      ifnames: new Set(),
      stockPaths: new Map(),
      interfaces: [],
      unloaded: [],
    },
  };

  try {
    await withLock(stateDir, { command: process.argv.slice(1).join(" ") || "down", warn }, async () => {
      checkDownState(root, stateDir);
      if (!o.fromDeadman) {
        const d = disarmDeadman(stateDir);
        if (d) warn(`stopped the dead-man timer (pid ${d.pid}): down is running now`);
      }
      const ctx: StepContext = { exec, dryRun: false, data: {} };
      const res = await runSteps(downSteps(r).map(tag), ctx, {
        renderer: o.renderer,
        rollbackOnFailure: false,
      });
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
