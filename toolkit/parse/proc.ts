/** Parsers for /proc/modules, /proc/misc and `lsmod`: which modules are loaded, who holds them. */

export type ModuleState = "Live" | "Loading" | "Unloading";

/** One loaded module. */
export interface LoadedModule {
  name: string;
  size: number;
  /** Users of the module; null when the kernel cannot unload it at all ("-"). */
  refcount: number | null;
  /** Modules that depend on this one (the "used by" column): netmap lists its patched drivers. */
  deps: string[];
  state?: ModuleState;
  address?: string;
  /** Taint flags without parentheses, e.g. "OE" (out-of-tree, unsigned); "" when none. */
  taints: string;
}

const list = (field: string | undefined): string[] =>
  field === undefined || field === "-" ? [] : field.split(",").filter((s) => s !== "" && s !== "[permanent]");

/** Parse /proc/modules: `netmap 253952 1 e1000, Live 0xffffffffc03c7000 (OE)`. */
export function parseProcModules(text: string): LoadedModule[] {
  const out: LoadedModule[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m =
      /^(\S+) (\d+) (\d+|-) (\S+) (Live|Loading|Unloading)(?: (0x[0-9a-f]+))?(?: \(([A-Z]+)\))?\s*$/.exec(
        line,
      );
    if (!m) continue;
    const mod: LoadedModule = {
      name: m[1] ?? "",
      size: Number(m[2]),
      refcount: m[3] === "-" ? null : Number(m[3]),
      deps: list(m[4]),
      state: m[5] as ModuleState,
      taints: m[7] ?? "",
    };
    if (m[6]) mod.address = m[6];
    out.push(mod);
  }
  return out;
}

/** Parse /proc/misc (`124 netmap`) into name -> minor; /dev/netmap's minor is dynamic, read it here. */
export function parseProcMisc(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(\d+)\s+(\S+)\s*$/.exec(line);
    if (m) out.set(m[2] ?? "", Number(m[1]));
  }
  return out;
}

/** Parse kmod's `lsmod` table (`Module  Size  Used by` header; `netmap  253952  1 e1000`). */
export function parseLsmod(text: string): LoadedModule[] {
  const out: LoadedModule[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^(\S+)\s+(\d+)\s+(\d+|-)(?:\s+(\S+))?\s*$/.exec(line);
    if (!m) continue;
    out.push({
      name: m[1] ?? "",
      size: Number(m[2]),
      refcount: m[3] === "-" ? null : Number(m[3]),
      deps: list(m[4]),
      taints: "",
    });
  }
  return out;
}
