/**
 * Child process for the crash tests: runs one "up" (install + commit) or one "down" (restore) on a
 * sysroot. The parent sets NETMAP_PROVISION_STOP_AT_STEP so this process SIGKILLs itself right
 * after journaling step N. Usage: node crash-child.js '<json {mode, root, stateDir, strategy, persist?}>'
 */
import { createExec } from "../../toolkit/core/exec.js";
import { type InstallStrategy, installModules } from "../../toolkit/modules/install.js";
import { persistModules } from "../../toolkit/modules/persist.js";
import { restore } from "../../toolkit/modules/restore.js";
import { commit, openTransaction } from "../../toolkit/state/journal.js";
import { kver, standinArtifacts } from "./sysroot.js";

const args = JSON.parse(process.argv[2] ?? "{}") as {
  mode: "up" | "down";
  root: string;
  stateDir: string;
  strategy: InstallStrategy;
  /** Also make the load persistent (modules-load.d; a sysroot has no initramfs generator). */
  persist?: boolean;
};
const exec = createExec();
if (args.mode === "up") {
  const tx = openTransaction(args.stateDir, "up", { root: args.root });
  const inst = await installModules({
    root: args.root,
    kver,
    artifacts: standinArtifacts(),
    strategy: args.strategy,
    stateDir: args.stateDir,
    exec,
    journal: tx,
  });
  if (args.persist)
    await persistModules({
      root: args.root,
      kver,
      stateDir: args.stateDir,
      exec,
      tx,
      record: inst.record,
      load: ["netmap", "e1000"],
      artifacts: standinArtifacts(),
      initramfs: "auto",
    });
  commit(tx);
} else {
  await restore({ root: args.root, stateDir: args.stateDir, exec });
}
