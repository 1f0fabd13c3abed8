import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BlockedError } from "../core/errors.js";
import { underRoot } from "../core/paths.js";

/**
 * Which kernel modules an initramfs must carry, and in which order to load them, read from the
 * kernel's own modules.dep (what modprobe uses), so nothing is hard-coded per kernel version.
 */

/** One module to load: its name ("9pnet_virtio") and its path relative to /lib/modules/<kver>. */
export interface ModuleFile {
  name: string;
  relPath: string;
}

/** Module names treat "-" and "_" alike (modprobe does too). */
export const moduleName = (pathOrName: string): string =>
  (pathOrName.split("/").pop() ?? pathOrName).replace(/\.ko(\.(xz|zst|gz))?$/, "").replaceAll("-", "_");

/** Parse modules.dep: module name -> its file and the files it needs. */
export function parseModulesDep(text: string): Map<string, { relPath: string; deps: string[] }> {
  const map = new Map<string, { relPath: string; deps: string[] }>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const relPath = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    map.set(moduleName(relPath), { relPath, deps });
  }
  return map;
}

/**
 * The load order for `wanted` and everything they depend on, dependencies first (depth-first
 * post-order), each module once. Modules built into the kernel (modules.builtin) are skipped.
 */
export function resolveModuleClosure(
  wanted: readonly string[],
  dep: Map<string, { relPath: string; deps: string[] }>,
  builtin: ReadonlySet<string> = new Set(),
): ModuleFile[] {
  const order: ModuleFile[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (name: string, neededBy: string | undefined): void => {
    const n = moduleName(name);
    if (done.has(n) || builtin.has(n)) return;
    const entry = dep.get(n);
    if (!entry) {
      const why = neededBy ? ` (needed by ${neededBy})` : "";
      throw new BlockedError(
        `kernel module "${n}"${why} is neither in modules.dep nor built in`,
        "check that the guest kernel's modules are installed (linux-image package) and run depmod",
      );
    }
    if (visiting.has(n)) return; // modules.dep has no cycles; guard anyway
    visiting.add(n);
    for (const d of entry.deps) visit(d, n);
    visiting.delete(n);
    done.add(n);
    order.push({ name: n, relPath: entry.relPath });
  };
  for (const w of wanted) visit(w, undefined);
  return order;
}

/** Read modules.dep and modules.builtin of `kernelRelease` under `root`, and resolve the closure. */
export function moduleClosureFor(
  root: string,
  kernelRelease: string,
  wanted: readonly string[],
): ModuleFile[] {
  const dir = underRoot(root, join("/lib/modules", kernelRelease));
  let depText: string;
  try {
    depText = readFileSync(join(dir, "modules.dep"), "utf8");
  } catch (cause) {
    throw new BlockedError(
      `cannot read ${join(dir, "modules.dep")}: ${(cause as Error).message}`,
      `install the modules of kernel ${kernelRelease} (e.g. linux-image-${kernelRelease}) and run depmod ${kernelRelease}`,
    );
  }
  let builtin = new Set<string>();
  try {
    builtin = new Set(
      readFileSync(join(dir, "modules.builtin"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => moduleName(l.trim())),
    );
  } catch {
    // No modules.builtin: assume everything wanted is a loadable module.
  }
  return resolveModuleClosure(wanted, parseModulesDep(depText), builtin);
}
