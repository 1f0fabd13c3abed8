import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { PlannedCommand, Step } from "../runner/step.js";
import { bootImage, buildKernel, builtRelease, kernelBuildArgv } from "./build.js";
import { cacheHitNote } from "./config-step.js";
import { BUILT_MARKER, type KernelPhase, type KernelPhaseContext, kernelBuildLog } from "./phase.js";
import { startResume, writeResume } from "./resume.js";

/** The recipe file as resume.json records it. */
const resumeRecipePath = (recipePath: string | undefined): string =>
  recipePath ? resolve(recipePath) : "(no recipe file)";

/**
 * kernel-build: compile the boot image and the modules in the O= dir, then mark the dir built
 * with its key. Nothing to compile on a cache hit.
 */
export function kernelBuildStep(p: KernelPhase): Step<KernelPhaseContext> {
  const commands: PlannedCommand[] = p.cached
    ? []
    : [{ argv: kernelBuildArgv(p.out, p.jobs), cwd: p.sources.dir, mutates: true }];
  return {
    describe: () => ({
      id: "kernel-build",
      title: p.cached
        ? `Build the kernel: cached (${p.release})`
        : `Build the kernel (${commands[0]?.argv.join(" ")})`,
      mutates: commands.length > 0,
      dependsOn: ["kernel-config"],
      commands,
      files: [
        ...(p.cached
          ? []
          : [
              { action: "create" as const, path: bootImage(p.out) },
              { action: "create" as const, path: join(p.out, BUILT_MARKER) },
            ]),
        ...(p.stateDir !== undefined
          ? [{ action: "create" as const, path: join(p.stateDir, "resume.json") }]
          : []),
      ],
      checks: [`${p.out}/include/config/kernel.release = ${p.release}`],
      ...(p.cached ? { notes: [cacheHitNote(p)] } : {}),
    }),
    async run(ctx, report) {
      const ph = ctx.phase;
      if (!ph.cached) {
        report.progress("kernel build");
        const b = await buildKernel({
          src: ph.sources.dir,
          out: ph.out,
          exec: ctx.exec,
          jobs: ph.jobs,
          logFile: kernelBuildLog(ph.out),
          onProgress: (t) => report.progress(`kernel build: ${t}`),
        });
        ctx.result.compiled = b.compiled;
        ctx.result.buildMs = b.durationMs;
        writeFileSync(join(ph.out, BUILT_MARKER), `${ph.key}\n`);
      } else report.progress(`kernel build: cache hit ${ph.key}, nothing to compile`);
      ctx.phase = { ...ph, release: builtRelease(ph.out) as string };
      if (ctx.req.stateDir)
        writeResume(
          ctx.req.stateDir,
          startResume({
            release: ctx.phase.release,
            recipe: resumeRecipePath(ctx.req.recipePath),
            buildDir: ph.out,
          }),
        );
    },
  };
}
