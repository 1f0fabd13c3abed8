import { hostExists, listHostDir, readHostLine, readHostText } from "../host/host-fs.js";
import { parseProcMisc, parseProcModules } from "../parse/proc.js";

/** Whether netmap is loaded and usable right now, read from /proc, /sys and /dev. */
export interface NetmapState {
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

export function readNetmapState(root: string, moduleName = "netmap"): NetmapState {
  const procModules = readHostText(root, "/proc/modules");
  const modules = parseProcModules(procModules ?? "");
  const netmap = modules.find((m) => m.name === moduleName);
  const params: Record<string, string> = {};
  if (netmap) {
    for (const p of listHostDir(root, `/sys/module/${moduleName}/parameters`)) {
      const v = readHostLine(root, `/sys/module/${moduleName}/parameters/${p}`);
      if (v !== null) params[p] = v;
    }
  }
  return {
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
