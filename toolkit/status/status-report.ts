import type { DriverCatalog } from "../catalog/drivers.js";
import { ProvisionError } from "../core/errors.js";
import { catalogLookup } from "../host/facts.js";
import { readKernelFacts } from "../host/kernel-facts.js";
import { readManagementFacts } from "../host/management.js";
import { type DriverKind, readNicFacts } from "../host/nics.js";
import { describeResume, readResume } from "../kernel/resume.js";
import { type InstalledSummary, readInstalledSummary } from "./installed-summary.js";
import { type NetmapState, readNetmapState } from "./netmap-state.js";

/** How an interface runs netmap right now. */
export type NetmapMode = "native" | "emulated" | "not-netmap";

export interface InterfaceStatus {
  ifname: string;
  driver: string | null;
  module: string | null;
  driverKind: DriverKind;
  mode: NetmapMode;
  /** Why mode is what it is. */
  reason: string;
  /** Whether netmap has a native patch for this driver on this kernel (what `up` could achieve). */
  nativeAvailable: boolean;
  management: boolean;
}

export interface StatusReport {
  root: string;
  kernelRelease: string;
  netmap: NetmapState;
  interfaces: InterfaceStatus[];
  installed: InstalledSummary;
  /** Where a kernel-building `up` is (resume.json in the state dir), null when none is in progress. */
  kernelBuild: string | null;
  /** State files that are damaged (installed.json, resume.json): status reports them, then exits 2. */
  stateErrors: Array<{ message: string; hint?: string }>;
}

/**
 * Native when the interface's driver module depends on netmap (it is a patched driver: netmap's
 * "used by" column lists it); emulated when netmap is loaded but the driver is stock; otherwise
 * netmap is not in play.
 */
export function interfaceMode(
  netmap: NetmapState,
  module: string | null,
): { mode: NetmapMode; reason: string } {
  if (!netmap.loaded) return { mode: "not-netmap", reason: "netmap is not loaded" };
  if (module !== null && netmap.usedBy.includes(module)) {
    return { mode: "native", reason: `${module} depends on netmap (a patched driver is loaded)` };
  }
  return {
    mode: "emulated",
    reason: `${module ?? "the driver"} is not a netmap-patched driver: netmap opens it in emulated (generic) mode`,
  };
}

/** Read what `status` shows: files only, so it answers in well under a second. */
export function readStatus(
  root: string,
  stateDir: string,
  catalog: DriverCatalog,
  env = process.env,
): StatusReport {
  const kernel = readKernelFacts(root);
  const installed = readInstalledSummary(stateDir);
  const netmap = readNetmapState(root, installed.netmapModule ?? undefined);
  const management = readManagementFacts(root, env);
  const interfaces = readNicFacts(root, kernel, catalogLookup(catalog)).map((n) => ({
    ifname: n.ifname,
    driver: n.driver,
    module: n.module,
    driverKind: n.driverKind,
    ...interfaceMode(netmap, n.module),
    nativeAvailable: n.native,
    management: management.managementIfs.includes(n.ifname),
  }));
  const stateErrors: StatusReport["stateErrors"] = [];
  if (installed.state === "unreadable" && installed.problem)
    stateErrors.push(
      installed.hint ? { message: installed.problem, hint: installed.hint } : { message: installed.problem },
    );
  let kernelBuild: string | null = null;
  try {
    const s = readResume(stateDir);
    kernelBuild = s ? describeResume(s, kernel.release) : null;
  } catch (e) {
    if (!(e instanceof ProvisionError)) throw e;
    kernelBuild = `kernel resume record unreadable: ${e.message}`;
    stateErrors.push(e.hint ? { message: e.message, hint: e.hint } : { message: e.message });
  }
  return {
    root,
    kernelRelease: kernel.release,
    netmap,
    interfaces,
    installed,
    kernelBuild,
    stateErrors,
  };
}
