import { basename, join } from "node:path";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { readHostText } from "../host/host-fs.js";

/** `<root>/lib/modules/<kver>` as a real path. */
export const modulesDir = (root: string, kver: string): string => underRoot(root, join("/lib/modules", kver));

/** Module name of a .ko path: basename without the suffix, with `-` folded to `_` as kmod does. */
export function moduleNameOf(path: string): string {
  return basename(path)
    .replace(/\.ko(\.xz|\.zst|\.gz)?$/, "")
    .replaceAll("-", "_");
}

/**
 * modules.dep as name -> path relative to the modules dir. depmod writes exactly one entry per
 * module name, the one that wins its search order (updates/ before the built-in tree), so this is
 * already "what modprobe would load".
 */
export function readModulesDep(root: string, kver: string): Map<string, string> {
  const out = new Map<string, string>();
  // Read as a host file (bounded, regular files only): a FIFO or device there reads as missing.
  const text = readHostText(root, join("/lib/modules", kver, "modules.dep"));
  if (text === null) return out;
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const rel = line.slice(0, colon);
    out.set(moduleNameOf(rel), rel);
  }
  return out;
}

let basedirSupport: boolean | undefined;

/** kmod's modinfo has had -b/--basedir for years, but busybox's does not: ask once. */
export async function modinfoSupportsBasedir(exec: Exec): Promise<boolean> {
  if (basedirSupport === undefined) {
    const r = await exec.run(["modinfo", "--help"], { reject: false });
    basedirSupport = /--basedir/.test(`${r.stdout}\n${r.stderr}`);
  }
  return basedirSupport;
}

const isSysroot = (root: string): boolean => !(root === "/" || root === "");

/**
 * The `modinfo -n` argv resolveModule runs for `module` (with -b for a sysroot), or undefined when
 * it reads modules.dep instead (a sysroot and a modinfo without -b). The one place it is made.
 */
export function resolveArgv(
  root: string,
  kver: string,
  module: string,
  basedirSupported: boolean,
): string[] | undefined {
  if (!isSysroot(root)) return ["modinfo", "-k", kver, "-n", module];
  return basedirSupported ? ["modinfo", "-b", root, "-k", kver, "-n", module] : undefined;
}

/** The argv that asks which file `modprobe <module>` loads for the running kernel (down's check). */
export const runningResolveArgv = (module: string): string[] => ["modinfo", "-n", module];

export interface Resolution {
  /** Real path of the file modprobe would load, or undefined when the name resolves to nothing. */
  path: string | undefined;
  via: "modinfo" | "modules.dep";
}

/**
 * Which file `modprobe <module>` would load for `kver` under `root`: `modinfo -n` (with -b for a
 * sysroot) when it supports it, else the modules.dep entry. modinfo also answers for built-in
 * modules ("(builtin)"), which we report as no file.
 */
export async function resolveModule(opts: {
  root: string;
  kver: string;
  module: string;
  exec: Exec;
}): Promise<Resolution> {
  const { root, kver, module, exec } = opts;
  const argv = resolveArgv(root, kver, module, isSysroot(root) ? await modinfoSupportsBasedir(exec) : true);
  if (argv) {
    const r = await exec.run(argv, { reject: false });
    const out = r.stdout.trim();
    if (r.exitCode !== 0 || out === "" || out.startsWith("(builtin)"))
      return { path: undefined, via: "modinfo" };
    return { path: out, via: "modinfo" };
  }
  return { path: resolveFromModulesDep(root, kver, module), via: "modules.dep" };
}

/** The modules.dep answer alone (real path), for modinfo builds without -b. */
export function resolveFromModulesDep(root: string, kver: string, module: string): string | undefined {
  const rel = readModulesDep(root, kver).get(moduleNameOf(module));
  return rel === undefined ? undefined : join(modulesDir(root, kver), rel);
}
