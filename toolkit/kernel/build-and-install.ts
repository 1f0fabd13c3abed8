import { loadKernelCatalog } from "../catalog/kernels.js";
import { gccVersion } from "../plan/inputs.js";
import type { StepReporter } from "../runner/step.js";
import { bootImage } from "./build.js";
import { kernelConfigPath } from "./config.js";
import {
  type KernelBuildRequest,
  type KernelPhaseContext,
  kernelBuildLog,
  kernelPhaseSteps,
  resolveKernelPhase,
} from "./phase.js";
import { assertCompilerFits } from "./toolchain.js";

export type { KernelBuildRequest } from "./phase.js";

/**
 * `kernel build` and the kernel part of `up`: sources -> config -> build -> install, with a
 * cache of built trees keyed by everything that shapes the result, so a second run with the
 * same inputs reuses the tree instead of compiling again. The phase is resolved once
 * (toolkit/kernel/phase.ts) and run as its steps, the same steps `plan` describes.
 */

export interface KernelBuildResult {
  release: string;
  version: string;
  srcDir: string;
  /** The O= dir: the kernel build dir netmap builds against (--kernel-dir). */
  buildDir: string;
  configPath: string;
  bootImage: string;
  key: string;
  /** True when the cache had this exact build: nothing was compiled. */
  cached: boolean;
  compiled: number;
  buildMs: number;
  logFile: string;
  warnings: string[];
  /** Set when installed: the module tree of the release. */
  moduleDir?: string;
  /** The command that was run (real host) to boot the kernel once. */
  nextBoot?: string[];
  /** kernel.install "deb": the packages made (under <buildDir>/debs). */
  debs?: string[];
}

/** Build (or reuse) and optionally install the recipe's kernel. */
export async function buildAndInstallKernel(req: KernelBuildRequest): Promise<KernelBuildResult> {
  const kernels = req.kernels ?? loadKernelCatalog();
  const gcc = req.gcc === undefined ? await gccVersion(req.exec) : req.gcc;
  const phase = await resolveKernelPhase(req);
  // Compiler first, before any download or unpack, when the version is known up front.
  if (phase.pinned) assertCompilerFits(kernels, phase.pinned, gcc);
  const progress = req.onProgress ?? (() => {});
  const ctx: KernelPhaseContext = {
    exec: req.exec,
    dryRun: req.exec.dryRun,
    data: {},
    req,
    phase,
    kernels,
    gcc,
    progress,
    result: { compiled: 0, buildMs: 0, warnings: [] },
  };
  const reporter: StepReporter = {
    progress,
    get logFile() {
      return ctx.phase.key ? kernelBuildLog(ctx.phase.out) : undefined;
    },
  };
  for (const step of kernelPhaseSteps(phase)) await step.run(ctx, reporter);

  const p = ctx.phase;
  const r = ctx.result;
  return {
    release: p.release,
    version: p.version as string,
    srcDir: p.sources.dir,
    buildDir: p.out,
    configPath: kernelConfigPath(p.out),
    bootImage: bootImage(p.out),
    key: p.key as string,
    cached: p.cached,
    compiled: r.compiled,
    buildMs: r.buildMs,
    logFile: kernelBuildLog(p.out),
    warnings: r.warnings,
    ...(r.moduleDir !== undefined ? { moduleDir: r.moduleDir } : {}),
    ...(r.nextBoot ? { nextBoot: r.nextBoot } : {}),
    ...(r.debs ? { debs: r.debs } : {}),
  };
}
