/**
 * Child process for the crash tests: runs one "up" (install + commit) or one "down" (restore) on a
 * sysroot. The parent sets NETMAP_PROVISION_STOP_AT_STEP so this process SIGKILLs itself right
 * after journaling step N. Usage: node crash-child.js '<json {mode, root, stateDir, strategy, persist?}>'
 */
import { createExec } from "../../toolkit/core/exec.js";
import type { InstallStrategy } from "../../toolkit/modules/install.js";
import { restore } from "../../toolkit/modules/restore.js";
import { upOnSysroot } from "./sysroot.js";

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
  await upOnSysroot(args, { strategy: args.strategy, persist: args.persist ?? false, exec });
} else {
  await restore({ root: args.root, stateDir: args.stateDir, exec });
}
