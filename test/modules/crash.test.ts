import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { restore } from "../../toolkit/modules/restore.js";
import { readInstalled } from "../../toolkit/state/installed.js";
import { pendingTransaction, readJournal, stopAtStepEnv } from "../../toolkit/state/journal.js";
import { runDown } from "../../toolkit/up/down.js";
import { repoRoot } from "../helpers/paths.js";
import {
  makeSysroot,
  type Sysroot,
  sha256,
  snapshotTree,
  standinArtifacts,
  standinModules,
  sysrootKmod,
  upOnSysroot,
} from "./sysroot.js";

const exec = createExec();
const child = join(repoRoot, "dist", "test", "modules", "crash-child.js");

type ChildMode = "up" | "down" | "up-swap" | "up-again";

/** Run the child, with the crash hook at `step` (none: undefined); killed: it died there. */
function spawnChild(
  sr: Sysroot,
  mode: ChildMode,
  strategy: string,
  step: number | undefined,
  persist = false,
): { killed: boolean; stdout: string } {
  const env = { ...process.env };
  delete env[stopAtStepEnv];
  if (step !== undefined) env[stopAtStepEnv] = String(step);
  const r = spawnSync(
    process.execPath,
    [child, JSON.stringify({ mode, root: sr.root, stateDir: sr.stateDir, strategy, persist })],
    { env, encoding: "utf8" },
  );
  if (r.signal === "SIGKILL") return { killed: true, stdout: r.stdout };
  if (r.status === 0) return { killed: false, stdout: r.stdout };
  throw new Error(`crash child ${mode} failed (crash hook at step ${step}): status ${r.status}\n${r.stderr}`);
}

/** Run the child with the crash hook at `step`; true if it was killed there, false if it finished. */
function runChild(sr: Sysroot, mode: ChildMode, strategy: string, step: number, persist = false): boolean {
  return spawnChild(sr, mode, strategy, step, persist).killed;
}

async function installInProcess(sr: Sysroot, strategy: "updates" | "replace"): Promise<void> {
  await upOnSysroot(sr, { strategy, exec });
}

test.before(() => {
  standinArtifacts();
});

const scenarios = [
  { mode: "up", strategy: "updates", compress: undefined },
  { mode: "up", strategy: "updates", compress: undefined, persist: true },
  { mode: "up", strategy: "replace", compress: "xz" },
  { mode: "up", strategy: "replace", compress: undefined },
  { mode: "down", strategy: "updates", compress: undefined },
  { mode: "down", strategy: "replace", compress: "zst" },
] as const;

for (const s of scenarios) {
  const persist = "persist" in s && s.persist;
  const name = `crash at every journaled step of "${s.mode}" (${s.strategy}${s.compress ? `, stock .ko.${s.compress}` : ""}${persist ? ", persistent" : ""}), then restore: tree byte-identical`;
  test(name, async (t) => {
    const fresh = makeSysroot(s.compress ? { compress: s.compress } : {});
    const before = snapshotTree(fresh.root);
    let crashed = 0;
    for (let step = 1; step < 100; step++) {
      // A fresh state dir each time: a backup kept from the previous round would not be journaled
      // again, shifting step numbers so that some step would never be crashed at.
      const sr = { ...fresh, stateDir: `${fresh.stateDir}-${step}` };
      if (s.mode === "down") await installInProcess(sr, s.strategy);
      const killed = runChild(sr, s.mode, s.strategy, step, persist);
      if (killed) {
        crashed++;
        t.truthy(pendingTransaction(sr.stateDir), `step ${step}: the killed run left a pending journal`);
      }
      const rep = await restore({ root: sr.root, stateDir: sr.stateDir, exec });
      if (killed) t.truthy(rep.recovered, `step ${step}: restore recovered the pending transaction`);
      t.deepEqual(snapshotTree(sr.root), before, `after a crash at step ${step}`);
      t.false(existsSync(join(sr.root, "etc")), `after a crash at step ${step}: no modules-load.d left`);
      t.is(readInstalled(sr.stateDir), undefined);
      t.is(pendingTransaction(sr.stateDir), undefined);
      if (!killed) break; // the run got past its last step
    }
    t.log(
      `${s.mode}/${s.strategy}${s.compress ? `/${s.compress}` : ""}${persist ? "/persist" : ""}: crashed and recovered at ${crashed} journaled steps`,
    );
    t.true(crashed >= (s.mode === "up" ? (persist ? 9 : 6) : 4), `only ${crashed} steps were journaled`);
  });
}

/*
 * The same kill -9 at every journaled step, of an `up` that also swaps (unload the stock e1000,
 * load netmap, load the patched e1000, through sysrootKmod on <root>/proc/modules), and recovered
 * by `up` run again rather than by `down`: up-again recovers first, in a process that imports only
 * what `up`'s recovery imports (so the swap's undo must come from the undo table, not from an
 * import), then swaps itself. Each run must say it undid the interrupted up, leave that journal
 * rolled back and its own committed, with the patched modules loaded; a final `down` (runDown,
 * through sysrootKmod) must leave the module tree byte-identical and the stock e1000 loaded again.
 */
const swapScenarios = [
  { strategy: "updates", compress: undefined },
  { strategy: "replace", compress: "xz" },
] as const;

for (const s of swapScenarios) {
  test(`crash at every journaled step of "up" with the swap (${s.strategy}${s.compress ? `, stock .ko.${s.compress}` : ""}), then up again: it says it undid the interrupted up and swaps; down after it: tree byte-identical, stock e1000 loaded`, async (t) => {
    const sr0 = makeSysroot(s.compress ? { compress: s.compress } : {});
    const kmod = sysrootKmod(sr0.root);
    await kmod.run(["modprobe", "e1000"]); // the host as it boots: the stock driver loaded
    const stock = join(sr0.modDir, sr0.stockE1000);
    const stockSha = sha256(stock);
    t.is(kmod.loaded().e1000, stock);
    const before = snapshotTree(sr0.root);
    const patched = { e1000: sha256(standinModules().e1000), netmap: sha256(standinModules().netmap) };
    const ops: string[] = [];
    let crashed = 0;
    for (let step = 1; step < 100; step++) {
      const sr = { ...sr0, stateDir: `${sr0.stateDir}-swap-${step}` };
      const killed = runChild(sr, "up-swap", s.strategy, step);
      const at = `killed at step ${step}`;
      if (killed) {
        crashed++;
        const pending = pendingTransaction(sr.stateDir);
        if (!pending) throw new Error(`${at}: no pending journal`);
        const op = pending.steps.at(-1)?.op ?? "?";
        ops.push(op);
        const again = JSON.parse(spawnChild(sr, "up-again", s.strategy, undefined).stdout);
        const what = `${at} (${op}): ${JSON.stringify(again)}`;
        t.deepEqual(again.recovered, { txid: pending.txid, kind: "up", action: "undone" }, what);
        t.true(
          again.warnings.some((w: string) =>
            w.includes(`found the interrupted "up" transaction ${pending.txid}; recovering it`),
          ),
          what,
        );
        t.is(readJournal(pending.file).closed, "rolled-back", what);
        t.is(pendingTransaction(sr.stateDir), undefined, what);
        t.truthy(readInstalled(sr.stateDir), what);
        const loaded = kmod.loaded();
        t.is(loaded.netmap && sha256(loaded.netmap), patched.netmap, `${what}: netmap loaded`);
        t.is(loaded.e1000 && sha256(loaded.e1000), patched.e1000, `${what}: the patched e1000 loaded`);
      }
      const down = await runDown({ root: sr.root, stateDir: sr.stateDir, exec: kmod, renderer: "silent" });
      const what = `down after ${killed ? at : "the run that finished"}: ${JSON.stringify(down.error)}`;
      t.true(down.ok, what);
      t.deepEqual(snapshotTree(sr.root), before, what);
      t.deepEqual(kmod.loaded(), { e1000: stock }, what);
      t.is(sha256(stock), stockSha, what);
      t.is(readInstalled(sr.stateDir), undefined, what);
      t.is(pendingTransaction(sr.stateDir), undefined, what);
      if (!killed) break; // the run got past its last step
    }
    t.log(
      `up-swap/${s.strategy}${s.compress ? `/${s.compress}` : ""}: killed at ${crashed} journaled steps (${ops.join(", ")}), each recovered by up`,
    );
    t.true(crashed >= 9, `only ${crashed} steps were journaled`);
    for (const op of ["install", "depmod", "write-file", "unload", "load"])
      t.true(ops.includes(op), `a kill at a "${op}" step: ${ops.join(", ")}`);
  });
}
