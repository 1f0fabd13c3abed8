/**
 * Child process for the crash tests, on a sysroot:
 *   up        one "up" (install [+ persist] + commit)
 *   down      one "down" (restore)
 *   up-swap   one "up" with the swap (install, unload the stock e1000, load netmap and the patched
 *             e1000 through sysrootKmod, commit), holding the lock as `up` does
 *   up-again  what `up` does after a crash, holding the lock: recover the interrupted transaction
 *             first (recoverPending, as up.ts calls it), then its own up-swap; prints
 *             {recovered, warnings} as JSON on stdout
 * The parent sets NETMAP_PROVISION_STOP_AT_STEP so this process SIGKILLs itself right after
 * journaling step N. Usage: node crash-child.js '<json {mode, root, stateDir, strategy, persist?}>'
 *
 * Only what `up`'s recovery imports is imported here (restore.js, lock.js; sysroot.ts loads the
 * swap lazily), so the recovery in up-again can undo exactly what `up`'s can.
 */
import { createExec } from "../../toolkit/core/exec.js";
import type { InstallStrategy } from "../../toolkit/modules/install.js";
import { recoverPending, restore } from "../../toolkit/modules/restore.js";
import { withLock } from "../../toolkit/state/lock.js";
import { sysrootKmod, upOnSysroot } from "./sysroot.js";

const args = JSON.parse(process.argv[2] ?? "{}") as {
  mode: "up" | "down" | "up-swap" | "up-again";
  root: string;
  stateDir: string;
  strategy: InstallStrategy;
  /** Also make the load persistent (modules-load.d; a sysroot has no initramfs generator). */
  persist?: boolean;
};
const exec = args.mode === "up-swap" || args.mode === "up-again" ? sysrootKmod(args.root) : createExec();
const up = { strategy: args.strategy, persist: args.persist ?? false, exec };
if (args.mode === "up") {
  await upOnSysroot(args, up);
} else if (args.mode === "down") {
  await restore({ root: args.root, stateDir: args.stateDir, exec });
} else {
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  await withLock(args.stateDir, { command: `crash-child ${args.mode}`, warn }, async () => {
    const recovered =
      args.mode === "up-again"
        ? await recoverPending(args.stateDir, { exec, warn, root: args.root })
        : undefined;
    await upOnSysroot(args, { ...up, swap: true });
    if (args.mode === "up-again") process.stdout.write(`${JSON.stringify({ recovered, warnings })}\n`);
  });
}
