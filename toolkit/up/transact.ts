import { underRoot } from "../core/paths.js";
import { persistenceInPlace } from "../modules/persist.js";
import type { Plan } from "../plan/plan.js";
import { commandLog } from "../runner/command-log.js";
import { runSteps } from "../runner/runner.js";
import type { StepContext } from "../runner/step.js";
import { sha256IfExists } from "../state/atomic-file.js";
import { readInstalled } from "../state/installed.js";
import { markRolledBack, readJournal, resumeTransaction } from "../state/journal.js";
import { verifyLoad } from "../verify/verify.js";
import { verifyOptionsFor } from "../verify/verify-step.js";
import { buildStep } from "./build-step.js";
import type { UpArtifacts, UpRun } from "./context.js";
import { disarmDeadman } from "./deadman.js";
import { inputsDigest, readLoadRecord } from "./in-place.js";
import { transactionSteps } from "./steps.js";
import type { UpOptions } from "./up.js";
import { reportStep, type UpReport } from "./up-report.js";

/** True when installed.json records exactly these modules, with these bytes on disk. */
function alreadyInstalled(o: UpOptions, release: string, a: UpArtifacts): boolean {
  const rec = readInstalled(o.run.stateDir);
  if (!rec || rec.kernelRelease !== release || rec.strategy !== o.run.recipe.modules.strategy) return false;
  if (o.run.recipe.modules.persist && !persistenceInPlace(o.run.root, rec)) return false;
  return a.modules.every((m) => {
    const r = rec.modules.find((x) => x.module === m.module);
    return (
      r !== undefined && r.sha256 === m.sha256 && sha256IfExists(underRoot(o.run.root, r.path)) === m.sha256
    );
  });
}

/**
 * Run what the plan describes: the build step (or the bundle), then, unless the same modules are
 * installed and still verify, the transaction's steps (toolkit/up/steps.ts) with the plan's
 * resolve. A failure undoes the whole transaction in reverse journal order (install's undo).
 */
export async function transact(o: UpOptions, plan: Plan, report: UpReport): Promise<void> {
  const { run } = o;
  // Each command is listed with the step running it.
  const { exec, tag: tagged } = commandLog(o.exec, report.commands, "build");
  const r: UpRun = {
    u: plan.up,
    exec,
    st: {},
    report,
    recipe: run.recipe,
    inputs: inputsDigest(run, o.from),
    ...(o.confirmTimeoutSec !== undefined ? { confirmTimeoutSec: o.confirmTimeoutSec } : {}),
    ...(o.warn ? { warn: o.warn } : {}),
  };
  const steps = transactionSteps(plan.up, r).map(tagged);
  const ctx: StepContext = { exec, dryRun: false, data: {} };
  const first = await runSteps([buildStep(o, r)], ctx, { renderer: o.renderer });
  report.steps.push(...first.outcomes.map(reportStep));
  if (!first.ok) throw first.error;
  try {
    const a = r.st.artifacts as UpArtifacts;
    // Idempotence: the same bytes installed, loaded and verified means there is nothing to do.
    if (alreadyInstalled(o, plan.up.release, a)) {
      const started = performance.now();
      const v = await verifyLoad(verifyOptionsFor(r, readLoadRecord(run.stateDir)?.cursor ?? { ts: null }));
      if (v.ok) {
        report.verify = v;
        report.ok = true;
        report.changed = false;
        for (const s of steps) {
          const d = s.describe();
          if (d.id === "verify")
            report.steps.push({
              id: d.id,
              title: d.title,
              status: "passed",
              durationMs: Math.round(performance.now() - started),
            });
          else if (d.id === "install" || d.id === "swap")
            report.steps.push({
              id: d.id,
              title: d.title,
              status: "skipped",
              durationMs: 0,
              message: "already in place",
            });
        }
        return;
      }
      o.warn?.(`the installed modules do not verify (${v.failures[0]}); swapping them again`);
    }
    report.changed = true;
    const res = await runSteps(steps, ctx, { renderer: o.renderer });
    report.steps.push(...res.outcomes.map(reportStep));
    if (res.ok) {
      report.ok = true;
      return;
    }
    if (r.st.deadman) disarmDeadman(run.stateDir);
    if (r.st.tx) {
      const j = readJournal(r.st.tx.file);
      if (!j.closed && j.steps.every((s) => s.undone)) markRolledBack(resumeTransaction(j, run.stateDir));
      // The swap was undone with install's undo (one reverse pass over the journal).
      const installUndone = report.steps.find((s) => s.id === "install")?.status === "undone";
      if (installUndone)
        for (const s of report.steps) if (s.id === "swap" && s.status === "passed") s.status = "undone";
    }
    throw res.error;
  } finally {
    r.st.artifacts?.cleanup?.();
  }
}
