import { hostExists, listHostDir, readHostLine, readHostText } from "../host/host-fs.js";
import { parseProcMisc, parseProcModules } from "../parse/proc.js";

/** Whether netmap is loaded and usable right now, read from /proc, /sys and /dev. */
export interface NetmapState {
  /** netmap's module name looked at ("netmap", or "netmap_lin" for the legacy layout). */
  module: string;
  /** False when /proc/modules is missing (a kernel without loadable modules). */
  moduleSupport: boolean;
  loaded: boolean;
  /** Open users of netmap.ko (the refcount), null when not loaded. */
  refcount: number | null;
  /** Modules that depend on netmap: the patched drivers loaded now. */
  usedBy: string[];
  devNetmap: boolean;
  /** /dev/netmap's misc minor from /proc/misc (dynamic), null when not registered. */
  miscMinor: number | null;
  /** /sys/module/netmap/parameters/* (admode: 0 best, 1 native only, 2 emulated only). */
  params: Record<string, string>;
  /** The names of all loaded modules (for per-interface decisions). */
  loadedModules: string[];
}

/** The names netmap's module has had: netmap.ko (v11.1 on), netmap_lin.ko (v11.0 and before). */
export const NETMAP_MODULE_NAMES = ["netmap", "netmap_lin"] as const;

/**
 * netmap's state on the host. The module is `moduleName` when that is loaded (what installed.json
 * records), else whichever of netmap's names is loaded (loaded by hand, or an older netmap), else
 * `moduleName` (default "netmap"), reported as not loaded.
 */
export function readNetmapState(root: string, moduleName?: string): NetmapState {
  const procModules = readHostText(root, "/proc/modules");
  const modules = parseProcModules(procModules ?? "");
  const names = [...new Set([...(moduleName ? [moduleName] : []), ...NETMAP_MODULE_NAMES])];
  const netmap = names.map((n) => modules.find((m) => m.name === n)).find((m) => m !== undefined);
  const name = netmap?.name ?? names[0] ?? "netmap";
  const params: Record<string, string> = {};
  if (netmap) {
    for (const p of listHostDir(root, `/sys/module/${name}/parameters`)) {
      const v = readHostLine(root, `/sys/module/${name}/parameters/${p}`);
      if (v !== null) params[p] = v;
    }
  }
  return {
    module: name,
    moduleSupport: procModules !== null,
    loaded: netmap !== undefined,
    refcount: netmap?.refcount ?? null,
    usedBy: netmap?.deps ?? [],
    devNetmap: hostExists(root, "/dev/netmap"),
    miscMinor: parseProcMisc(readHostText(root, "/proc/misc") ?? "").get("netmap") ?? null,
    params,
    loadedModules: modules.map((m) => m.name),
  };
}
