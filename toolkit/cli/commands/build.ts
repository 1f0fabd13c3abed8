import { join } from "node:path";
import type { Command } from "commander";
import { writeBundle } from "../../build/bundle.js";
import { runBuild } from "../../build/pipeline.js";
import { loadDriverCatalog } from "../../catalog/drivers.js";
import { UserError } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import { catalogDir } from "../../core/paths.js";
import { loadRecipe } from "../../recipe/load.js";
import { applyOverrides } from "../../recipe/overrides.js";
import type { Recipe } from "../../recipe/schema.js";
import { resolveCacheDir } from "../../sources/download.js";
import { badge, color, printJson } from "../output.js";

export interface BuildFlags {
  recipe?: string;
  netmapSource?: string;
  kernelDir?: string;
  kernelSources?: string;
  drivers?: string;
  cacheDir?: string;
  offline?: boolean;
  jobs?: string;
}

/** Load the recipe (recipes/default.yaml without --recipe) and apply the command-line overrides. */
export function recipeFromFlags(flags: BuildFlags): { recipe: Recipe; file: string; applied: string[] } {
  const catalog = loadDriverCatalog();
  const knownDrivers = catalog.list().map((d) => d.token);
  const file = flags.recipe ?? join(catalogDir("recipes"), "default.yaml");
  const { recipe } = loadRecipe(file, { knownDrivers });
  const { recipe: r, applied } = applyOverrides(
    recipe,
    {
      netmapSource: flags.netmapSource,
      kernelDir: flags.kernelDir,
      kernelSources: flags.kernelSources,
      drivers: flags.drivers,
    },
    { knownDrivers },
  );
  return { recipe: r, file, applied };
}

export function jobsFlag(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    throw new UserError(`--jobs ${v}: expected a whole number of jobs, 1 or more`);
  return n;
}

/** `build`: sources, configure (drops checked), make, manifest (vermagic checked), cache; optionally a bundle. */
export const buildCommand = {
  register(program: Command): void {
    program
      .command("build")
      .description(
        "build netmap and its patched drivers for the target kernel: verified, cached, offline-capable",
      )
      .option("--recipe <file>", "the recipe (default: recipes/default.yaml)")
      .option("--netmap-source <dir>", "build netmap from this local checkout")
      .option("--kernel-dir <dir>", "the configured kernel build dir (default /lib/modules/<release>/build)")
      .option(
        "--kernel-sources <dir>",
        "full kernel sources of the target version (default: the distro's linux-source, unpacked once)",
      )
      .option("--drivers <list>", 'drivers to build, comma-separated, or "auto"')
      .option("--out <file>", "also write a bundle (artifacts + manifest + resolved recipe) for `up --from`")
      .option(
        "--cache-dir <dir>",
        "cache dir (default $NETMAP_PROVISION_CACHE, $XDG_CACHE_HOME/netmap-provision, ~/.cache/netmap-provision)",
      )
      .option("--offline", "never use the network: every download must already be in the cache")
      .option("-j, --jobs <n>", "parallel make jobs (default: all cores)")
      .option("--json", "print the result as JSON")
      .addHelpText(
        "after",
        "\nA build whose inputs (kernel release and .config, netmap commit, drivers, options, compiler) were built before\nis taken from the cache without running configure or make.",
      )
      .action(async (opts: BuildFlags & { out?: string; json?: boolean }) => {
        const { recipe, file, applied } = recipeFromFlags(opts);
        const cacheDir = resolveCacheDir(opts.cacheDir);
        const exec = createExec();
        const started = performance.now();
        const res = await runBuild(
          { recipe, cacheDir, offline: opts.offline, jobs: jobsFlag(opts.jobs) },
          { exec, renderer: opts.json ? "silent" : "auto" },
        );
        if (!res.ok) {
          if (!opts.json) process.stderr.write(`${color.dim(`logs kept in ${res.workDir}/logs`)}\n`);
          throw res.error;
        }
        const m = res.manifest;
        let bundle: string | undefined;
        if (opts.out && m && res.artifactsDir) {
          bundle = await writeBundle({
            file: opts.out,
            artifactsDir: res.artifactsDir,
            manifest: m,
            recipe,
            exec,
          });
        }
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        if (opts.json) {
          printJson({
            ok: true,
            recipe: file,
            overrides: applied,
            cacheHit: res.cacheHit,
            key: res.key,
            artifactsDir: res.artifactsDir,
            bundle,
            seconds: Number(seconds),
            manifest: m,
          });
          return;
        }
        const out = process.stdout;
        out.write(
          `${badge("ok")} ${res.cacheHit ? `cache hit ${res.key}` : `built ${res.key}`} in ${seconds} s\n`,
        );
        for (const mod of m?.modules ?? []) {
          out.write(
            `        ${mod.path}  ${color.dim(`vermagic ${mod.vermagic.split(" ")[0]}, depends ${mod.depends.join(",") || "-"}`)}\n`,
          );
        }
        for (const e of m?.emulated ?? [])
          out.write(`${badge("warn")} ${e.driver}: emulated mode (${e.reason})\n`);
        out.write(`        artifacts: ${res.artifactsDir}\n`);
        if (bundle) out.write(`        bundle: ${bundle}\n`);
      });
  },
};
