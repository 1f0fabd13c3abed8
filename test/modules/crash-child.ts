/**
 * Child process for the crash tests: runs one "up" (install + commit) or one "down" (restore) on a
 * sysroot. The parent sets NETMAP_PROVISION_STOP_AT_STEP so this process SIGKILLs itself right
 * after journaling step N. Usage: node crash-child.js '<json {mode, root, stateDir, strategy}>'
 */
import { createExec } from "../../toolkit/core/exec.js";
import { type InstallStrategy, installModules } from "../../toolkit/modules/install.js";
import { restore } from "../../toolkit/modules/restore.js";
import { commit, openTransaction } from "../../toolkit/state/journal.js";
import { kver, standinArtifacts } from "./sysroot.js";

const args = JSON.parse(process.argv[2] ?? "{}") as {
  mode: "up" | "down";
  root: string;
  stateDir: string;
  strategy: InstallStrategy;
};
const exec = createExec();
if (args.mode === "up") {
  const tx = openTransaction(args.stateDir, "up", { root: args.root });
  await installModules({
    root: args.root,
    kver,
    artifacts: standinArtifacts(),
    strategy: args.strategy,
    stateDir: args.stateDir,
    exec,
    journal: tx,
  });
  commit(tx);
} else {
  await restore({ root: args.root, stateDir: args.stateDir, exec });
}
