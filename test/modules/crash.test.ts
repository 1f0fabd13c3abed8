import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { restore } from "../../toolkit/modules/restore.js";
import { readInstalled } from "../../toolkit/state/installed.js";
import { pendingTransaction, stopAtStepEnv } from "../../toolkit/state/journal.js";
import { repoRoot } from "../helpers/paths.js";
import { makeSysroot, type Sysroot, snapshotTree, standinArtifacts, upOnSysroot } from "./sysroot.js";

const exec = createExec();
const child = join(repoRoot, "dist", "test", "modules", "crash-child.js");

/** Run the child with the crash hook at `step`; true if it was killed there, false if it finished. */
function runChild(
  sr: Sysroot,
  mode: "up" | "down",
  strategy: string,
  step: number,
  persist = false,
): boolean {
  const r = spawnSync(
    process.execPath,
    [child, JSON.stringify({ mode, root: sr.root, stateDir: sr.stateDir, strategy, persist })],
    {
      env: { ...process.env, [stopAtStepEnv]: String(step) },
      encoding: "utf8",
    },
  );
  if (r.signal === "SIGKILL") return true;
  if (r.status === 0) return false;
  throw new Error(`crash child failed at step ${step}: status ${r.status}\n${r.stderr}`);
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
