import { statSync } from "node:fs";
import { resolve } from "node:path";
import { UserError } from "../core/errors.js";
import { firstShellMeta } from "./safe-text.js";
import type { Recipe } from "./schema.js";
import { didYouMean } from "./suggest.js";

/** Command-line overrides for one run; they never change the recipe file. */
export interface RunOverrides {
  /** --netmap-source DIR: build netmap from this checkout instead of the recipe's source. */
  netmapSource?: string;
  /** --kernel-dir DIR: the configured kernel build dir (netmap's --kernel-dir). */
  kernelDir?: string;
  /** --kernel-sources DIR: full kernel sources (netmap's --kernel-sources). */
  kernelSources?: string;
  /** --drivers a,b: the drivers to build, instead of the recipe's list ("auto" allowed). */
  drivers?: string;
}

export interface OverrideOptions {
  knownDrivers: readonly string[];
  /** Relative flag paths are resolved against this (default: process.cwd()). */
  cwd?: string;
}

/**
 * Apply the overrides to a loaded recipe, checking each flag the way the recipe field is checked.
 * Returns a new recipe and one line per override applied (for the run record).
 */
export function applyOverrides(
  recipe: Recipe,
  o: RunOverrides,
  opts: OverrideOptions,
): { recipe: Recipe; applied: string[] } {
  const cwd = opts.cwd ?? process.cwd();
  const applied: string[] = [];
  let r: Recipe = structuredClone(recipe);

  if (o.netmapSource !== undefined) {
    const path = directoryFlag("--netmap-source", o.netmapSource, cwd);
    r = { ...r, netmap: { ...r.netmap, source: { kind: "local", path } } };
    applied.push(`netmap.source = local ${path} (--netmap-source)`);
  }
  if (o.kernelDir !== undefined) {
    const path = directoryFlag("--kernel-dir", o.kernelDir, cwd);
    r = { ...r, kernel: { ...r.kernel, buildDir: path } };
    applied.push(`kernel.buildDir = ${path} (--kernel-dir)`);
  }
  if (o.kernelSources !== undefined) {
    const path = directoryFlag("--kernel-sources", o.kernelSources, cwd);
    r = { ...r, kernel: { ...r.kernel, sources: { kind: "local", path } } };
    applied.push(`kernel.sources = local ${path} (--kernel-sources)`);
  }
  if (o.drivers !== undefined) {
    const drivers = driversFlag(o.drivers, opts.knownDrivers);
    // emulatedOk may only name drivers being built; drop the ones the flag left out.
    const emulatedOk =
      Array.isArray(r.emulatedOk) && Array.isArray(drivers)
        ? r.emulatedOk.filter((d) => drivers.includes(d))
        : r.emulatedOk;
    r = { ...r, drivers, emulatedOk };
    applied.push(`drivers = ${Array.isArray(drivers) ? drivers.join(",") || "(none)" : drivers} (--drivers)`);
  }
  return { recipe: r, applied };
}

function directoryFlag(flag: string, value: string, cwd: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (value.trim() === "" || /[\u0000-\u001f]/.test(value))
    throw new UserError(
      `${flag}: "${value}" is not a usable path`,
      `pass a directory, e.g. ${flag} /usr/src/netmap`,
    );
  const path = resolve(cwd, value);
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new UserError(
      `${flag} ${value}: no such directory (${path})`,
      "check the path, or drop the flag to use the recipe's value",
    );
  }
  if (!isDir)
    throw new UserError(
      `${flag} ${value}: is a file, not a directory`,
      "pass the directory that holds the tree",
    );
  return path;
}

function driversFlag(value: string, known: readonly string[]): "auto" | string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 1 && items[0] === "auto") return "auto";
  if (items.length === 0)
    throw new UserError(
      "--drivers: no driver given",
      'pass a comma-separated list such as --drivers e1000,igb, or "auto"',
    );
  const seen = new Set<string>();
  for (const d of items) {
    const meta = firstShellMeta(d);
    if (meta)
      throw new UserError(
        `--drivers: "${d}" contains ${meta}, a shell metacharacter`,
        "driver names are catalog tokens such as e1000",
      );
    if (d === "auto")
      throw new UserError(
        '--drivers: "auto" cannot be combined with driver names',
        'pass either "auto" or a list',
      );
    if (!known.includes(d))
      throw new UserError(
        `--drivers: "${d}" is not a known netmap driver${didYouMean(d, known)}`,
        `known drivers: ${known.join(", ")}`,
      );
    if (seen.has(d)) throw new UserError(`--drivers: "${d}" is listed twice`, "list each driver once");
    seen.add(d);
  }
  return items;
}
