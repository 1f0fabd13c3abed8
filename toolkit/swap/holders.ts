import { hostExists, listHostDir, readHostLink, readHostText } from "../host/host-fs.js";
import { parseProcModules } from "../parse/proc.js";

/** Who would stop a module unload: modules that depend on it, and processes holding /dev/netmap open. */
export interface Holders {
  /** Loaded modules among the ones to unload, with their refcount and dependants. */
  modules: Array<{ name: string; refcount: number | null; usedBy: string[] }>;
  /** Processes with an open file descriptor on /dev/netmap. */
  devNetmap: Array<{ pid: number; comm: string }>;
}

/** Processes whose fd table links to /dev/netmap (what `fuser /dev/netmap` would list). */
export function devNetmapHolders(root: string): Array<{ pid: number; comm: string }> {
  const out: Array<{ pid: number; comm: string }> = [];
  if (!hostExists(root, "/dev/netmap")) return out;
  for (const pid of listHostDir(root, "/proc").filter((p) => /^\d+$/.test(p))) {
    for (const fd of listHostDir(root, `/proc/${pid}/fd`)) {
      if (readHostLink(root, `/proc/${pid}/fd/${fd}`) === "/dev/netmap") {
        out.push({ pid: Number(pid), comm: (readHostText(root, `/proc/${pid}/comm`) ?? "?").trim() });
        break;
      }
    }
  }
  return out;
}

/**
 * What holds the modules we are about to unload. A dependant that we unload too (the patched
 * driver on netmap) does not count; anything else, or an open /dev/netmap, does.
 */
export function findHolders(root: string, toUnload: readonly string[]): Holders {
  const loaded = parseProcModules(readHostText(root, "/proc/modules") ?? "");
  const modules = loaded
    .filter((m) => toUnload.includes(m.name))
    .map((m) => ({ name: m.name, refcount: m.refcount, usedBy: m.deps }));
  return { modules, devNetmap: devNetmapHolders(root) };
}

/** One sentence per holder that would make an unload fail; empty when the way is clear. */
export function holderProblems(h: Holders, toUnload: readonly string[]): string[] {
  const problems: string[] = [];
  for (const m of h.modules) {
    const foreign = m.usedBy.filter((u) => !toUnload.includes(u));
    if (foreign.length > 0) problems.push(`${m.name} is used by ${foreign.join(", ")}`);
    // A refcount above the dependants we unload means open users (sockets, /dev/netmap, ...).
    else if (m.refcount !== null && m.refcount > m.usedBy.length)
      problems.push(`${m.name} has ${m.refcount - m.usedBy.length} open user(s) besides its dependants`);
  }
  for (const p of h.devNetmap) problems.push(`process ${p.pid} (${p.comm}) holds /dev/netmap open`);
  return problems;
}
