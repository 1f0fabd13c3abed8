import { type ProvisionError, StepError, TimeoutError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { readHostText } from "../host/host-fs.js";
import { runDepmod } from "../modules/depmod.js";
import { explainModuleLoadError } from "../parse/dmesg.js";
import { parseProcModules } from "../parse/proc.js";
import type { Transaction } from "../state/journal.js";
import type { UndoContext } from "../state/undo.js";
import { type InterfaceState, restoreInterfaceState } from "./iface-state.js";

/** Unloading can block on a busy device; loading probes hardware: neither may hang a run. */
export const UNLOAD_TIMEOUT_MS = 30_000;
export const LOAD_TIMEOUT_MS = 60_000;

export const isLoaded = (root: string, module: string): boolean =>
  parseProcModules(readHostText(root, "/proc/modules") ?? "").some((m) => m.name === module);

/** A failed modprobe/rmmod as a StepError that says what the kernel's message means. */
function moduleError(
  step: string,
  what: string,
  err: unknown,
  stderr: string,
  timedOut: boolean,
): ProvisionError {
  if (timedOut)
    return new TimeoutError(
      `${what} did not finish within its timeout`,
      "something holds the device (a process, a bridge, a bond); check `lsmod`, `fuser -v /dev/netmap` and dmesg",
    );
  const why = explainModuleLoadError(stderr);
  return new StepError(
    step,
    `${what} failed${why ? `: ${why.line}` : stderr.trim() ? `: ${stderr.trim()}` : ""}`,
    why?.hint ?? "read dmesg for the kernel's reason",
    err,
  );
}

/** The argv that unloads `module` (the one place it is made: rmmod runs it, plans print it). */
export const rmmodArgv = (module: string): string[] => ["rmmod", module];

/** The argv that loads `module` through modules.dep (the one place it is made). */
export const modprobeArgv = (module: string): string[] => ["modprobe", module];

/** `rmmod <module>` with a timeout (not journaled: callers journal the intent). */
export async function rmmod(exec: Exec, module: string): Promise<void> {
  const r = await exec.run(rmmodArgv(module), { mutates: true, timeoutMs: UNLOAD_TIMEOUT_MS, reject: false });
  if (r.exitCode !== 0) throw moduleError("swap", `rmmod ${module}`, undefined, r.stderr, r.timedOut);
}

/** `modprobe <module>` (resolves through modules.dep, so dependencies load first) with a timeout. */
export async function modprobe(exec: Exec, module: string): Promise<void> {
  const r = await exec.run(modprobeArgv(module), {
    mutates: true,
    timeoutMs: LOAD_TIMEOUT_MS,
    reject: false,
  });
  if (r.exitCode !== 0) throw moduleError("swap", `modprobe ${module}`, undefined, r.stderr, r.timedOut);
}

/** Journal args of an "unload": what to bring back, and the interfaces to restore after it. */
export interface UnloadArgs extends Record<string, unknown> {
  module: string;
  root: string;
  kver: string;
  interfaces: InterfaceState[];
}

/** Unload a module, journaled as "unload" before it happens (undo: load it again, restore interfaces). */
export async function unloadJournaled(tx: Transaction, exec: Exec, args: UnloadArgs): Promise<void> {
  await tx.step("unload", args, async () => {
    if (isLoaded(args.root, args.module)) await rmmod(exec, args.module);
  });
}

/** Load a module, journaled as "load" before it happens (undo: unload it if it is loaded). */
export async function loadJournaled(
  tx: Transaction,
  exec: Exec,
  args: { module: string; root: string },
): Promise<void> {
  await tx.step("load", args, async () => {
    if (!isLoaded(args.root, args.module)) await modprobe(exec, args.module);
  });
}

/** Undo of "load" (undo-table.ts): the module may or may not have been loaded when the run stopped; look first. */
export async function undoLoad(args: Record<string, unknown>, ctx: UndoContext): Promise<void> {
  const module = String(args.module);
  const root = String(args.root ?? "/");
  if (isLoaded(root, module)) await rmmod(ctx.exec, module);
}

/**
 * Undo of "unload" (undo-table.ts): the stock module can only come back once every file is back and depmod has
 * run, which the journal's later steps (undone first) do not guarantee yet. So the reloads are
 * collected and run once, deferred to after all file undos: depmod, modprobe in unload order
 * reversed, then the interfaces' addresses and routes.
 */
const reloads = new WeakMap<UndoContext, UnloadArgs[]>();
export function undoUnload(args: Record<string, unknown>, ctx: UndoContext): void {
  const a = args as UnloadArgs;
  let list = reloads.get(ctx);
  if (!list) {
    const mine: UnloadArgs[] = [];
    list = mine;
    reloads.set(ctx, mine);
    ctx.defer("reload unloaded modules", async () => {
      const first = mine[0];
      if (!first) return;
      await runDepmod({ root: first.root, kver: first.kver, exec: ctx.exec });
      const failures: string[] = [];
      for (const u of mine) {
        try {
          if (!isLoaded(u.root, u.module)) await modprobe(ctx.exec, u.module);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      for (const u of mine) failures.push(...(await restoreInterfaceState(ctx.exec, u.root, u.interfaces)));
      if (failures.length > 0) throw new Error(failures.join("; "));
    });
  }
  list.push(a);
}
