import { posix } from "node:path";
import { escapeControl } from "../core/terminal-text.js";
import {
  hostExists,
  hostJoin,
  listHostDir,
  readHostLine,
  readHostLink,
  readHostText,
  resolveHostPath,
} from "./host-fs.js";

/** How a NIC's driver is present in the running kernel: only a module can be swapped. */
export type DriverKind = "module" | "builtin" | "unknown";

/** What the NIC facts need from the driver catalog (toolkit/catalog/drivers.ts). */
export interface NicDriverLookup {
  /** The netmap configure token of the driver whose module is `module`, if netmap has one. */
  tokenForModule(module: string): string | null;
  /** Whether netmap has a native patch for `token` on kernel `version` (x.y.z). */
  nativeOn(token: string, version: string): boolean;
}

export interface NicFacts {
  ifname: string;
  /** The bound driver's name (sysfs), or null when no driver is bound. */
  driver: string | null;
  /** The module providing the driver (may differ from the driver name, e.g. dashes vs underscores). */
  module: string | null;
  /** The device the interface sits on: a PCI address such as 0000:00:03.0, or virtio0 etc. */
  busAddress: string | null;
  driverKind: DriverKind;
  operstate: string | null;
  mac: string | null;
  mtu: number | null;
  /** The netmap driver (configure token) for this module, or null when netmap has none. */
  netmapDriver: string | null;
  /** True when netmap has a native patch for this driver on the running kernel. */
  native: boolean;
  /** Why native is what it is, in words. */
  reason: string;
}

const shown = (s: string | null): string | null => (s === null ? null : escapeControl(s));

/** Module names in /sys/module and /proc/modules use underscores where file names may use dashes. */
export const moduleName = (name: string): string => name.replaceAll("-", "_");

/** Module names listed in modules.builtin (paths such as kernel/drivers/net/.../e1000.ko). */
export function parseModulesBuiltin(text: string | null): Set<string> {
  const out = new Set<string>();
  for (const line of (text ?? "").split("\n")) {
    const base = posix.basename(line.trim());
    if (base.endsWith(".ko")) out.add(moduleName(base.slice(0, -3)));
  }
  return out;
}

/**
 * Module vs built-in: a loaded module has /sys/module/<m>/initstate; a built-in driver has a
 * /sys/module/<m> directory without it, or is named in modules.builtin.
 */
export function driverKindOf(root: string, module: string, builtin: Set<string>): DriverKind {
  if (hostExists(root, `/sys/module/${module}/initstate`)) return "module";
  if (builtin.has(module) || hostExists(root, `/sys/module/${module}`)) return "builtin";
  return "unknown";
}

/**
 * Every physical interface in /sys/class/net: virtual ones (lo, bridges, veth, tun, ifb) have no
 * `device` link and are skipped, since no driver swap applies to them. Linux lets a name hold
 * control characters (ESC, BEL): `ifname` is reported with them escaped, as management.ts does,
 * so the two still match and no report can drive a terminal with it.
 */
export function readNicFacts(
  root: string,
  kernel: { release: string; version: string | null },
  lookup: NicDriverLookup,
): NicFacts[] {
  const builtin = parseModulesBuiltin(readHostText(root, `/lib/modules/${kernel.release}/modules.builtin`));
  const nics: NicFacts[] = [];
  for (const name of listHostDir(root, "/sys/class/net")) {
    const ifDir = hostJoin("/sys/class/net", name);
    if (name === "lo" || !hostExists(root, hostJoin(ifDir, "device"))) continue;
    const ifname = escapeControl(name);
    const deviceDir = resolveHostPath(root, hostJoin(ifDir, "device"));
    const driverLink = readHostLink(root, hostJoin(ifDir, "device/driver"));
    const driver = driverLink ? escapeControl(posix.basename(driverLink)) : null;
    // The driver's `module` link names the module even for built-ins; fall back to the driver name.
    const moduleLink = driver ? readHostLink(root, hostJoin(ifDir, "device/driver/module")) : null;
    const module = moduleLink ? moduleName(posix.basename(moduleLink)) : driver ? moduleName(driver) : null;
    const driverKind = module ? driverKindOf(root, module, builtin) : "unknown";
    const mtuText = readHostLine(root, hostJoin(ifDir, "mtu"));
    const netmapDriver = module ? lookup.tokenForModule(module) : null;
    const native =
      netmapDriver !== null && kernel.version !== null && lookup.nativeOn(netmapDriver, kernel.version);
    nics.push({
      ifname,
      driver,
      module,
      busAddress: deviceDir ? escapeControl(posix.basename(deviceDir)) : null,
      driverKind,
      operstate: shown(readHostLine(root, hostJoin(ifDir, "operstate"))),
      mac: shown(readHostLine(root, hostJoin(ifDir, "address"))),
      mtu: mtuText && /^\d+$/.test(mtuText) ? Number(mtuText) : null,
      netmapDriver,
      native,
      reason: nativeReason(module, netmapDriver, native, kernel.version),
    });
  }
  return nics;
}

function nativeReason(
  module: string | null,
  token: string | null,
  native: boolean,
  version: string | null,
): string {
  if (module === null) return "no driver bound: netmap can only use it once a driver is";
  if (token === null) return `netmap has no patched driver for ${module}: emulated (generic) mode only`;
  if (version === null) return `the kernel version is unknown, so whether ${token} has a native patch is too`;
  if (native) return `netmap's ${token} has a native patch for ${version}`;
  return `netmap's ${token} has no native patch for ${version}: emulated (generic) mode only`;
}
