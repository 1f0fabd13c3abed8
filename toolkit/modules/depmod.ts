import { join } from "node:path";
import { StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import type { Transaction } from "../state/journal.js";
import type { UndoContext } from "../state/undo.js";

/** argv for depmod on `root` ("/" is the host itself; anything else is a sysroot, via -b). */
export function depmodArgv(root: string, kver: string): string[] {
  return root === "/" || root === "" ? ["depmod", kver] : ["depmod", "-b", root, kver];
}

/**
 * The files depmod rewrites, for a plan: its indexes under <root>/lib/modules/<kver>, one path with
 * the placeholder `<index>` (dep, dep.bin, alias, symbols...: which ones depends on kmod's version).
 */
export const depmodIndexes = (root: string, kver: string): string =>
  join(root === "" ? "/" : root, "lib", "modules", kver, "modules.<index>");

/**
 * Regenerate modules.dep & co. for `kver` (journaled as op "depmod" when a transaction is given).
 * depmod writes its indexes atomically itself, so a crash leaves the old or the new ones.
 */
export async function runDepmod(opts: {
  root: string;
  kver: string;
  exec: Exec;
  tx?: Transaction;
}): Promise<void> {
  const argv = depmodArgv(opts.root, opts.kver);
  const run = async () => {
    try {
      await opts.exec.run(argv, { mutates: true });
    } catch (err) {
      throw new StepError(
        "depmod",
        `depmod failed for kernel ${opts.kver} under ${opts.root}`,
        "read depmod's message above; a broken module file in the tree is the usual cause",
        err,
      );
    }
  };
  if (opts.tx) await opts.tx.step("depmod", { root: opts.root, kver: opts.kver }, run);
  else await run();
}

/**
 * Undo of "depmod" (undo-table.ts): run it again once every file is back; running it when nothing
 * changed rewrites the same indexes (depmod output is deterministic), so it is harmless after a crash.
 */
export function undoDepmod(args: Record<string, unknown>, ctx: UndoContext): void {
  const root = String(args.root);
  const kver = String(args.kver);
  ctx.defer(`depmod ${root} ${kver}`, () => runDepmod({ root, kver, exec: ctx.exec }));
}
