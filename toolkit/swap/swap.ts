import { BlockedError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import type { Transaction } from "../state/journal.js";
import { findHolders, holderProblems } from "./holders.js";
import { type InterfaceState, recordInterfaceState, restoreInterfaceState } from "./iface-state.js";
import { isLoaded, loadJournaled, unloadJournaled } from "./module-ops.js";

export interface SwapOptions {
  exec: Exec;
  root: string;
  kver: string;
  tx: Transaction;
  /** netmap's module name ("netmap"). */
  netmapModule: string;
  /** Driver modules to swap for their patched copies ("e1000"). */
  drivers: readonly string[];
  /** The interfaces those drivers carry now (from host facts). */
  interfaces: readonly string[];
  warn?: (m: string) => void;
}

export interface SwapResult {
  /** Each affected interface as it was before the swap. */
  interfaces: InterfaceState[];
  unloaded: string[];
  loaded: string[];
  /** Interface settings that could not be put back (the swap itself succeeded). */
  restoreFailures: string[];
}

/**
 * Swap the stock drivers for the patched ones: check nothing holds them, record the interfaces,
 * unload the drivers (and a netmap left loaded), load netmap then the drivers (modprobe resolves
 * the patched files after depmod), and put the interfaces back. Every unload and load is
 * journaled before it happens so a crash at any point can be undone.
 */
export async function swapDrivers(o: SwapOptions): Promise<SwapResult> {
  const { exec, root, tx } = o;
  const netmapLoaded = isLoaded(root, o.netmapModule);
  const toUnload = [...o.drivers.filter((d) => isLoaded(root, d)), ...(netmapLoaded ? [o.netmapModule] : [])];
  const problems = holderProblems(findHolders(root, toUnload), toUnload);
  if (problems.length > 0)
    throw new BlockedError(
      `cannot unload ${toUnload.join(", ")}:\n  ${problems.join("\n  ")}`,
      "stop the programs using netmap or the interfaces (pkt-gen, bridges, bonds), then run `up` again",
    );
  const interfaces = await recordInterfaceState(exec, o.interfaces);
  // Drivers before netmap: a patched driver holds a reference on netmap.
  for (const module of toUnload)
    await unloadJournaled(tx, exec, {
      module,
      root,
      kver: o.kver,
      interfaces: module === o.netmapModule ? [] : interfaces,
    });
  await loadJournaled(tx, exec, { module: o.netmapModule, root });
  for (const module of o.drivers) await loadJournaled(tx, exec, { module, root });
  const restoreFailures = await restoreInterfaceState(exec, root, interfaces);
  for (const f of restoreFailures) o.warn?.(f);
  return { interfaces, unloaded: toUnload, loaded: [o.netmapModule, ...o.drivers], restoreFailures };
}
