import { join } from "node:path";
import { checkBundleRelease, readBundle } from "../build/bundle.js";
import type { BuildManifest } from "../build/manifest.js";
import { runBuild } from "../build/pipeline.js";
import { ProvisionError, StepError } from "../core/errors.js";
import { underRoot } from "../core/paths.js";
import { installModules, type ModuleArtifact } from "../modules/install.js";
import { persistenceInPlace, persistModules } from "../modules/persist.js";
import { runSteps } from "../pipeline/runner.js";
import type { Step, StepContext, StepDescription } from "../pipeline/step.js";
import type { gatherPlanInputs } from "../plan/inputs.js";
import type { Plan } from "../plan/plan.js";
import { sha256IfExists } from "../state/atomic-file.js";
import { type InstalledRecord, readInstalled } from "../state/installed.js";
import {
  commit,
  markRolledBack,
  openTransaction,
  readJournal,
  resumeTransaction,
  type Transaction,
} from "../state/journal.js";
import { undoJournal } from "../state/undo.js";
import { swapDrivers } from "../swap/swap.js";
import { type DmesgCursor, takeCursor } from "../verify/dmesg-cursor.js";
import type { VerifyReport } from "../verify/report.js";
import { pktgenOptions, type VerifyOptions, verifyLoad } from "../verify/verify.js";
import { armDeadman, type DeadmanInfo, disarmDeadman } from "./deadman.js";
import { inputsDigest, type LoadRecord, readLoadRecord, writeLoadRecord } from "./in-place.js";
import { reportStep, type UpReport } from "./report.js";
import type { UpOptions } from "./up.js";

interface Artifacts {
  manifest: BuildManifest;
  artifactsDir: string;
  modules: ModuleArtifact[];
  pktgen: string | undefined;
  cleanup?: () => void;
}

function artifactsOf(manifest: BuildManifest, artifactsDir: string): Omit<Artifacts, "cleanup"> {
  const app = manifest.apps.find((a) => a.name === "pkt-gen");
  return {
    manifest,
    artifactsDir,
    modules: manifest.modules.map((m) => ({
      module: m.name,
      file: join(artifactsDir, m.path),
      sha256: m.sha256,
    })),
    pktgen: app ? join(artifactsDir, app.path) : undefined,
  };
}

/** Build (or hit the cache), or open a bundle checked against the target release. */
async function getArtifacts(o: UpOptions, plan: Plan): Promise<Artifacts> {
  if (o.bundle && o.from) {
    // Opened and checked by runUp before anything else; here only the release is left to check.
    checkBundleRelease(o.from, o.bundle.manifest, plan.targetRelease);
    return artifactsOf(o.bundle.manifest, o.bundle.artifactsDir);
  }
  if (o.from) {
    const b = await readBundle(o.from, { exec: o.exec, release: plan.targetRelease });
    return { ...artifactsOf(b.manifest, b.artifactsDir), cleanup: b.dispose };
  }
  const res = await runBuild(
    { recipe: o.run.recipe, cacheDir: o.run.cacheDir, root: o.run.root, catalog: o.run.catalog },
    { exec: o.exec, renderer: "silent" },
  );
  if (!res.ok || !res.manifest || !res.artifactsDir) {
    if (res.error instanceof ProvisionError) throw res.error;
    throw new StepError("build", `the build failed (logs in ${res.workDir}/logs)`, undefined, res.error);
  }
  return artifactsOf(res.manifest, res.artifactsDir);
}

/** True when installed.json records exactly these modules, with these bytes on disk. */
function alreadyInstalled(o: UpOptions, plan: Plan, a: Artifacts): boolean {
  const rec = readInstalled(o.run.stateDir);
  if (!rec || rec.kernelRelease !== plan.targetRelease || rec.strategy !== o.run.recipe.modules.strategy)
    return false;
  if (o.run.recipe.modules.persist && !persistenceInPlace(o.run.root, rec)) return false;
  return a.modules.every((m) => {
    const r = rec.modules.find((x) => x.module === m.module);
    return (
      r !== undefined && r.sha256 === m.sha256 && sha256IfExists(underRoot(o.run.root, r.path)) === m.sha256
    );
  });
}

const savedCursor = (stateDir: string): DmesgCursor => readLoadRecord(stateDir)?.cursor ?? { ts: null };

const describeFrom = (plan: Plan, id: string, over: Partial<StepDescription> = {}): StepDescription => {
  const d = plan.steps.find((s) => s.id === id);
  return {
    id,
    title: id,
    mutates: true,
    commands: [],
    files: [],
    checks: [],
    ...d,
    ...over,
    dependsOn: over.dependsOn ?? [],
  };
};

interface UpState {
  artifacts?: Artifacts;
  record?: InstalledRecord;
  tx?: Transaction;
  cursor?: DmesgCursor;
  verify?: VerifyReport;
  deadman?: DeadmanInfo;
}

export async function transact(
  o: UpOptions,
  plan: Plan,
  facts: Awaited<ReturnType<typeof gatherPlanInputs>>["facts"],
  report: UpReport,
): Promise<void> {
  const { run, exec } = o;
  const swapped = plan.drivers.filter((d) => d.mode === "native").map((d) => d.module);
  const expected = plan.drivers
    .filter((d) => d.mode !== "unsupported")
    .map((d) => ({ module: d.module, mode: d.mode as "native" | "emulated" }));
  const affected = facts.nics
    .filter((n) => n.module !== null && swapped.includes(n.module))
    .map((n) => n.ifname);
  const management = affected.filter((i) => facts.management.managementIfs.includes(i));
  const st: UpState = {};
  // What the artifacts call netmap (a bundle's manifest says so), else what the recipe asks for.
  const netmapModule = (): string => st.artifacts?.manifest.netmapModule ?? run.recipe.netmap.moduleName;
  const verifyOpts = (cursor: DmesgCursor): VerifyOptions => {
    const v: VerifyOptions = {
      exec,
      root: run.root,
      cursor,
      netmapModule: netmapModule(),
      drivers: expected,
      dmesgExpect: run.recipe.verify.dmesg.expect,
    };
    const pktgen = pktgenOptions(run.recipe.verify.pktgen, st.artifacts?.pktgen);
    if (pktgen) v.pktgen = pktgen;
    return v;
  };

  const build: Step = {
    describe: () =>
      describeFrom(plan, "make", {
        id: "build",
        title: o.from
          ? `Open the bundle ${o.from} (sha256 and release checked)`
          : "Build netmap and the patched drivers, or take them from the cache",
        mutates: false,
      }),
    run: async () => {
      st.artifacts = await getArtifacts(o, plan);
    },
  };
  const install: Step = {
    describe: () =>
      describeFrom(plan, "install", {
        title: `Back up the stock modules and install the patched ones (${run.recipe.modules.strategy})`,
        dependsOn: ["build"],
      }),
    run: async () => {
      const a = st.artifacts as Artifacts;
      st.tx = openTransaction(run.stateDir, "up", {
        root: run.root,
        kver: plan.targetRelease,
        netmapModule: a.manifest.netmapModule,
      });
      report.transaction = st.tx.txid;
      const res = await installModules({
        root: run.root,
        kver: plan.targetRelease,
        artifacts: a.modules,
        strategy: run.recipe.modules.strategy,
        stateDir: run.stateDir,
        exec,
        journal: st.tx,
        netmapModule: a.manifest.netmapModule,
        recipe: run.recipe.name,
        warn: o.warn,
      });
      st.record = res.record;
    },
    // Undoes the whole transaction, swap included, in reverse journal order: the stock drivers can
    // only be reloaded once their files are back, which a per-step undo could not order.
    undo: async () => {
      if (st.tx) await undoJournal(readJournal(st.tx.file), { exec, stateDir: run.stateDir, warn: o.warn });
    },
  };
  const swap: Step = {
    describe: () => describeFrom(plan, "swap", { dependsOn: ["install"] }),
    run: async () => {
      const tx = st.tx as Transaction;
      if (management.length > 0) {
        const timeoutSec = o.confirmTimeoutSec ?? run.recipe.guard.confirmTimeoutSec;
        st.deadman = armDeadman({ stateDir: run.stateDir, root: run.root, txid: tx.txid, timeoutSec });
        report.deadman = { pid: st.deadman.pid, timeoutSec, deadline: st.deadman.deadline };
      }
      st.cursor = await takeCursor(exec);
      await swapDrivers({
        exec,
        root: run.root,
        kver: plan.targetRelease,
        tx,
        netmapModule: netmapModule(),
        drivers: swapped,
        interfaces: affected,
        warn: o.warn,
      });
    },
  };
  const verify: Step = {
    describe: () => describeFrom(plan, "verify", { dependsOn: ["swap"] }),
    run: async () => {
      st.verify = await verifyLoad(verifyOpts(st.cursor ?? { ts: null }));
      report.verify = st.verify;
      if (!st.verify.ok)
        throw new StepError(
          "verify",
          `verify found no proof that netmap works:\n  ${st.verify.failures.join("\n  ")}`,
          "everything was rolled back; the dmesg excerpt in `up --json` shows what the kernel said",
        );
    },
  };
  // After verify: only a load proven to work is made to survive a reboot.
  const persist: Step = {
    describe: () => describeFrom(plan, "persist", { dependsOn: ["verify"] }),
    run: async () => {
      report.persist = await persistModules({
        root: run.root,
        kver: plan.targetRelease,
        stateDir: run.stateDir,
        exec,
        tx: st.tx as Transaction,
        record: st.record as InstalledRecord,
        load: [netmapModule(), ...swapped],
        artifacts: (st.artifacts as Artifacts).modules,
        initramfs: run.recipe.modules.initramfs,
      });
    },
  };
  const record: Step = {
    describe: () => describeFrom(plan, "record", { dependsOn: ["verify"] }),
    run: async () => {
      const rec: LoadRecord = {
        cursor: st.cursor ?? { ts: null },
        at: new Date().toISOString(),
        inputs: inputsDigest(run, o.from),
        netmapModule: netmapModule(),
        expected,
      };
      if (st.tx) rec.txid = st.tx.txid;
      if (st.artifacts?.pktgen && !o.from) rec.pktgen = st.artifacts.pktgen;
      writeLoadRecord(run.stateDir, rec);
      commit(st.tx as Transaction);
    },
  };

  const ctx: StepContext = { exec, dryRun: false, data: {} };
  // Idempotence: the same bytes installed, loaded and verified means there is nothing to do.
  const first = await runSteps([build], ctx, { renderer: o.renderer });
  report.steps.push(...first.outcomes.map(reportStep));
  if (!first.ok) throw first.error;
  try {
    const a = st.artifacts as Artifacts;
    if (alreadyInstalled(o, plan, a)) {
      const started = performance.now();
      const v = await verifyLoad(verifyOpts(savedCursor(run.stateDir)));
      if (v.ok) {
        report.verify = v;
        report.ok = true;
        report.changed = false;
        for (const s of [install, swap]) {
          const d = s.describe();
          report.steps.push({
            id: d.id,
            title: d.title,
            status: "skipped",
            durationMs: 0,
            message: "already in place",
          });
        }
        report.steps.push({
          id: "verify",
          title: verify.describe().title,
          status: "passed",
          durationMs: Math.round(performance.now() - started),
        });
        return;
      }
      o.warn?.(`the installed modules do not verify (${v.failures[0]}); swapping them again`);
    }
    report.changed = true;
    const steps = run.recipe.modules.persist
      ? [install, swap, verify, persist, record]
      : [install, swap, verify, record];
    const res = await runSteps(steps, ctx, { renderer: o.renderer });
    report.steps.push(...res.outcomes.map(reportStep));
    if (res.ok) {
      report.ok = true;
      return;
    }
    if (st.deadman) disarmDeadman(run.stateDir);
    if (st.tx) {
      const j = readJournal(st.tx.file);
      if (!j.closed && j.steps.every((s) => s.undone)) markRolledBack(resumeTransaction(j, run.stateDir));
      // The swap was undone with install's undo (one reverse pass over the journal).
      const installUndone = report.steps.find((s) => s.id === "install")?.status === "undone";
      if (installUndone)
        for (const s of report.steps) if (s.id === "swap" && s.status === "passed") s.status = "undone";
    }
    throw res.error;
  } finally {
    st.artifacts?.cleanup?.();
  }
}
