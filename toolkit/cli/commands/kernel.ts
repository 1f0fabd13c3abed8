import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { UserError } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import { readKernelFacts } from "../../host/kernel-facts.js";
import { buildAndInstallKernel } from "../../kernel/build-and-install.js";
import type { KernelSourceSpec } from "../../kernel/build-sources.js";
import type { ConfigBase } from "../../kernel/config.js";
import { parseModuleList } from "../../kernel/config.js";
import { distroSourceTarball } from "../../sources/target-kernel-sources.js";
import { badge, color, err, out, printJson } from "../output.js";
import { addRecipeOptions, loadRunRecipe, type RecipeRunFlags } from "../recipe-options.js";
import { jobsFlag } from "./build.js";

interface KernelBuildFlags extends RecipeRunFlags {
  fragment?: string[];
  localmodconfig?: string | boolean;
  outRoot?: string;
  base?: string;
  jobs?: string;
  offline?: boolean;
  nextBoot?: boolean;
}

/** --base: "running" (the fallback chain), "tiny" (tinyconfig), or a config file. */
function baseFlag(v: string | undefined, root: string): ConfigBase | undefined {
  if (v === undefined) return undefined;
  if (v === "tiny") return { kind: "tiny" };
  if (v === "running") return { kind: "running", root, kernel: readKernelFacts(root) };
  if (!existsSync(v))
    throw new UserError(`--base ${v}: no such config file`, 'use "running", "tiny" or a .config file');
  return { kind: "file", path: resolve(v) };
}

/** `kernel build`: sources, config, build, and optionally install a kernel for netmap. */
export const kernelCommand = {
  register(program: Command): void {
    const kernel = program
      .command("kernel")
      .description("build and install a kernel for netmap (kernel.build recipes)");
    const cmd = kernel
      .command("build")
      .description(
        "unpack the recipe's kernel sources once, configure (fallback chain, fragments, localmodconfig, NIC drivers forced to =m), build with progress, optionally install",
      )
      .option("--fragment <name...>", "add config fragments from kernels/fragments/ (e.g. guest-minimal)")
      .option(
        "--localmodconfig [file]",
        "keep only the modules loaded now (/proc/modules), or those listed in FILE (lsmod format); the recipe's NIC drivers stay =m",
      )
      .option(
        "--base <config>",
        'base config: "running" (default: /boot, /proc/config.gz, headers), "tiny", or a file',
      )
      .option(
        "--out-root <dir>",
        "install modules and the image under DIR (/ = this host: also boots it once via grub-reboot)",
      )
      .option("--no-next-boot", "with --out-root /: do not run grub-reboot")
      .option("--offline", "never use the network")
      .option("-j, --jobs <n>", "parallel make jobs (default: all cores)")
      .addHelpText(
        "after",
        "\nBuilt trees are cached by their inputs (sources, base config, fragments, module list, drivers, compiler):\na second run with the same inputs compiles nothing. Progress counts kbuild CC lines; the expected total is\nnot known before the first build, so it shows the count alone.",
      );
    addRecipeOptions(cmd).action(async (opts: KernelBuildFlags) => {
      const run = loadRunRecipe(opts);
      const exec = createExec();
      let sources: KernelSourceSpec | undefined;
      if (run.recipe.kernel.sources.kind === "running-headers" && !run.recipe.kernel.sources.package) {
        // A recipe for the running kernel: its series' distro source package.
        const facts = readKernelFacts(run.root);
        const tarball = facts.version ? distroSourceTarball(facts.version, run.root) : undefined;
        if (!tarball)
          throw new UserError(
            `the recipe names no kernel sources and no /usr/src/linux-source-* matches the running ${facts.release}`,
            "install the distro's source package (Debian: apt-get install linux-source-6.1) or use a recipe with kernel.sources",
          );
        sources = { kind: "distro", tarball };
      }
      let localmodconfig: "running" | string[] | undefined;
      if (opts.localmodconfig === true) localmodconfig = "running";
      else if (typeof opts.localmodconfig === "string") {
        const { readFileSync } = await import("node:fs");
        localmodconfig = parseModuleList(readFileSync(opts.localmodconfig, "utf8"));
      }
      if (!Array.isArray(run.recipe.drivers) && !opts.json)
        err(
          `${badge("warn")} drivers: auto - no NIC driver is forced to =m; pass --drivers e1000,... to keep them with --localmodconfig\n`,
        );
      const res = await buildAndInstallKernel({
        recipe: run.recipe,
        recipePath: run.recipeFile,
        cacheDir: run.cacheDir,
        exec,
        root: run.root,
        ...(sources ? { sources } : {}),
        ...(opts.base ? { base: baseFlag(opts.base, run.root) } : {}),
        fragments: opts.fragment ?? [],
        ...(localmodconfig ? { localmodconfig } : {}),
        driverCatalog: run.catalog,
        ...(opts.outRoot ? { installRoot: resolve(opts.outRoot), stateDir: run.stateDir } : {}),
        setNextBoot: opts.nextBoot !== false,
        jobs: jobsFlag(opts.jobs),
        offline: opts.offline,
        onProgress: opts.json ? undefined : (t) => err(`${color.dim(t)}\n`),
      });
      if (opts.json) return printJson(res);
      const what = res.cached
        ? "cache hit, nothing compiled"
        : `${res.compiled} objects in ${(res.buildMs / 1000).toFixed(0)} s`;
      out(`${badge("ok")} kernel ${res.release} (${what})\n`);
      out(
        `  build dir  ${res.buildDir}  (netmap: --kernel-dir)\n  sources    ${res.srcDir}\n  image      ${res.bootImage}\n  log        ${res.logFile}\n`,
      );
      if (res.moduleDir) out(`  modules    ${res.moduleDir}\n`);
      if (res.nextBoot) out(`  next boot  ${res.nextBoot.join(" ")} (once)\n`);
      for (const w of res.warnings) out(`${badge("warn")} ${w}\n`);
    });
  },
};
