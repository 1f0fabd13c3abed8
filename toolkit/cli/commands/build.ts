import type { Command } from "commander";
import { writeBundle } from "../../build/bundle.js";
import { runBuild } from "../../build/pipeline.js";
import { UserError } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import { badge, color, err, out, printJson } from "../output.js";
import { addRecipeOptions, loadRunRecipe, type RecipeRunFlags } from "../recipe-options.js";

export interface BuildFlags extends RecipeRunFlags {
  offline?: boolean;
  jobs?: string;
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
    const cmd = program
      .command("build")
      .description(
        "build netmap and its patched drivers for the target kernel: verified, cached, offline-capable",
      )
      .option("--out <file>", "also write a bundle (artifacts + manifest + resolved recipe) for `up --from`")
      .option("--offline", "never use the network: every download must already be in the cache")
      .option("-j, --jobs <n>", "parallel make jobs (default: all cores)")
      .addHelpText(
        "after",
        "\nA build whose inputs (kernel release and .config, netmap commit, drivers, options, compiler) were built before\nis taken from the cache without running configure or make.",
      );
    addRecipeOptions(cmd, { host: false }).action(async (opts: BuildFlags & { out?: string }) => {
      const { recipe, recipeFile: file, overrides: applied, cacheDir } = loadRunRecipe(opts);
      const exec = createExec();
      const started = performance.now();
      const res = await runBuild(
        { recipe, cacheDir, offline: opts.offline, jobs: jobsFlag(opts.jobs) },
        { exec, renderer: opts.json ? "silent" : "auto" },
      );
      if (!res.ok) {
        err(`${color.dim(`logs kept in ${res.workDir}/logs`)}\n`);
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
      out(`${badge("ok")} ${res.cacheHit ? `cache hit ${res.key}` : `built ${res.key}`} in ${seconds} s\n`);
      for (const mod of m?.modules ?? []) {
        out(
          `        ${mod.path}  ${color.dim(`vermagic ${mod.vermagic.split(" ")[0]}, depends ${mod.depends.join(",") || "-"}`)}\n`,
        );
      }
      for (const e of m?.emulated ?? []) out(`${badge("warn")} ${e.driver}: emulated mode (${e.reason})\n`);
      out(`        artifacts: ${res.artifactsDir}\n`);
      if (bundle) out(`        bundle: ${bundle}\n`);
    });
  },
};
