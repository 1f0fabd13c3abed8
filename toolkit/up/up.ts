import { release as osRelease } from "node:os";
import type { OpenedBundle } from "../build/bundle.js";
import { BlockedError, ProvisionError, StepError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { recoverPending } from "../modules/restore.js";
import type { RunRecipe } from "../recipe/run-recipe.js";
import { withLock } from "../state/lock.js";
import { verifyInPlace } from "./in-place.js";
import type { KernelUpOptions } from "./kernel-phase.js";
import type { UpReport } from "./up-report.js";
import { reportError } from "./up-report.js";

export interface UpOptions extends KernelUpOptions {
  run: RunRecipe;
  exec: Exec;
  /** A bundle written by `build --out` instead of building here. */
  from?: string;
  /** `from`, opened and checked (runUp does it first; transact installs from it). */
  bundle?: OpenedBundle;
  allowManagement?: boolean;
  /** Dead-man timeout override (seconds). */
  confirmTimeoutSec?: number;
  renderer: "auto" | "plain" | "silent";
  warn?: (m: string) => void;
}

/**
 * `up`: take the lock; finish or roll back an interrupted transaction; plan (refuse on blockers);
 * build or hit the cache (or open a bundle); when the same modules are installed, loaded and
 * verify passes, change nothing; otherwise one journaled transaction: back up + install, swap,
 * verify with evidence, record. Any failure undoes the whole transaction in reverse journal order.
 */
export async function runUp(o: UpOptions): Promise<UpReport> {
  const report: UpReport = {
    ok: false,
    changed: false,
    transaction: null,
    steps: [],
    verify: null,
    commands: [],
    warnings: [],
  };
  const warn = (m: string) => {
    report.warnings.push(m);
    o.warn?.(m);
  };
  // A bundle is input: it is unpacked and checked first, before the lock, the plan or any change
  // to the host or the state dir; a refused one leaves nothing behind.
  const bundle =
    o.from !== undefined
      ? await (await import("../build/bundle.js")).readBundle(o.from, { exec: o.exec })
      : undefined;
  try {
    return await runUpWith(bundle ? { ...o, bundle } : o, report, warn);
  } finally {
    bundle?.dispose();
  }
}

async function runUpWith(o: UpOptions, report: UpReport, warn: (m: string) => void): Promise<UpReport> {
  const { run } = o;
  if (run.root !== "/")
    throw new UserError(
      "`up` loads kernel modules, so it only runs on the host itself (--root /)",
      "use `plan --root` to see what up would do on a host tree",
    );
  try {
    await withLock(run.stateDir, { command: process.argv.slice(1).join(" ") || "up", warn }, async () => {
      const rec = await recoverPending(run.stateDir, { exec: o.exec, warn });
      if (rec) report.resumed = rec.kind === "up" ? "rolled-back" : "finished";
      // kernel.build recipes: build and install the kernel and stop for the reboot, or, once it
      // runs, go on with the recipe rewritten to build netmap against it (toolkit/up/kernel-phase.ts).
      const kp = run.recipe.kernel.build ? await import("./kernel-phase.js") : undefined;
      let ko = o;
      let kernelRun = false;
      if (kp) {
        const kernel = await kp.runKernelPhase({
          run,
          exec: o.exec,
          recipePath: o.recipePath ?? run.recipeFile,
          runningRelease: osRelease(),
          reboot: o.reboot ?? false,
          driverCatalog: run.catalog,
          onProgress: o.renderer === "silent" ? undefined : (t) => process.stderr.write(`${t}\n`),
        });
        report.kernel = kp.kernelReport(kernel);
        if (!kernel.proceed) {
          report.changed = kernel.installed;
          if (kernel.rebooting) {
            report.ok = true;
            return;
          }
          throw new BlockedError(
            kernel.message,
            `boot ${kernel.release} (set for the next boot only), then run up again; up --reboot reboots and continues by itself`,
          );
        }
        ko = { ...o, run: { ...run, recipe: kp.recipeAfterKernel(run.recipe, kernel) } };
        kernelRun = kernel.phase !== undefined;
      }
      // After netmap is up against the built kernel: close resume.json and remove the unit.
      const finishKernel = async () => {
        if (!kp || !kernelRun) return;
        const f = await kp.finishKernelPhase(run.stateDir, kp.resumeUnitDir("/"), true, o.exec);
        if (report.kernel) report.kernel.finished = f.finished;
      };
      if (!rec && (await alreadyUp(ko, report))) return await finishKernel();
      // The transaction's modules (build, plan, swap) load only when there is work to do.
      const { gatherPlanInputs } = await import("../plan/inputs.js");
      const { buildPlan } = await import("../plan/plan.js");
      const { transact } = await import("./transact.js");
      const inputs = await gatherPlanInputs({
        recipe: ko.run.recipe,
        catalog: run.catalog,
        root: run.root,
        exec: o.exec,
        cacheDir: run.cacheDir,
        stateDir: run.stateDir,
        allowManagement: o.allowManagement ?? false,
        // A bundle install plans no build: headers, sources and compilers do not block it.
        ...(o.from !== undefined ? { from: o.from } : {}),
      });
      const plan = buildPlan(inputs);
      for (const w of plan.warnings) warn(w);
      if (plan.blockers.length > 0)
        throw new BlockedError(
          `up is blocked on this host:\n  ${plan.blockers.map((b) => `[${b.id}] ${b.message}`).join("\n  ")}`,
          plan.blockers.map((b) => b.fix).join("\n  "),
        );
      await transact(ko, plan, report);
      await finishKernel();
    });
  } catch (err) {
    const e =
      err instanceof ProvisionError ? err : new StepError("up", (err as Error).message, undefined, err);
    report.ok = false;
    report.error = reportError(e);
    if (!(err instanceof ProvisionError)) throw err;
  }
  return report;
}

/** Nothing changed since the last `up` and its load still verifies: report that, change nothing. */
async function alreadyUp(o: UpOptions, report: UpReport): Promise<boolean> {
  const started = performance.now();
  const v = await verifyInPlace({
    run: o.run,
    exec: o.exec,
    ...(o.from ? { from: o.from } : {}),
    warn: o.warn,
  });
  if (!v) return false;
  report.ok = true;
  report.changed = false;
  report.verify = v;
  for (const [id, title] of [
    ["build", "Build netmap and the patched drivers (inputs unchanged since the last up)"],
    ["install", "Back up and install (the installed files still have their bytes)"],
    ["swap", "Swap drivers (the patched drivers are loaded)"],
  ] as const)
    report.steps.push({ id, title, status: "skipped", durationMs: 0, message: "already in place" });
  report.steps.push({
    id: "verify",
    title: "Verify with evidence from the last load",
    status: "passed",
    durationMs: Math.round(performance.now() - started),
  });
  return true;
}
