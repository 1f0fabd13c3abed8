import { mkdirSync } from "node:fs";
import type { FileChange, PlannedCommand, Step } from "../runner/step.js";
import { configureKernel, configureOps, type KernelConfigSpec, oldConfigTarget } from "./config.js";
import { type KernelPhase, type KernelPhaseContext, kernelBuildLog } from "./phase.js";

/** What configureKernel is given for the phase's O= dir. */
export function kernelConfigSpec(p: KernelPhase): KernelConfigSpec {
  return {
    src: p.sources.dir,
    out: p.out,
    version: p.version ?? "0.0.0",
    base: p.base,
    fragments: p.fragments,
    ...(p.localmodconfig ? { localmodconfig: p.localmodconfig } : {}),
    modules: p.symbols,
    ...(p.localversion !== undefined ? { localversion: p.localversion } : {}),
  };
}

const cacheHitNote = (p: KernelPhase): string =>
  `cache hit ${p.key}: ${p.out} was built from these inputs, nothing to configure or compile`;

/**
 * kernel-config: the .config of the O= dir (base, fragments merged, signing keys, localversion,
 * olddefconfig, localmodconfig, the NIC drivers forced to =m), as configureOps lists it.
 * Nothing on a cache hit.
 */
export function kernelConfigStep(p: KernelPhase): Step<KernelPhaseContext> {
  const spec = kernelConfigSpec(p);
  const ops = p.cached ? [] : configureOps(spec);
  const commands: PlannedCommand[] = ops.flatMap((op) =>
    op.kind === "run"
      ? [
          op.cwd === undefined
            ? { argv: op.argv, mutates: true }
            : { argv: op.argv, cwd: op.cwd, mutates: true },
        ]
      : [],
  );
  const files: FileChange[] = ops.flatMap((op): FileChange[] =>
    op.kind === "write-base"
      ? [{ action: "copy", path: p.baseSource, to: op.path }]
      : op.kind === "merge-fragments"
        ? op.fragments.length > 0
          ? [{ action: "replace", path: op.path }]
          : []
        : op.kind === "write-lsmod"
          ? [{ action: "create", path: op.path }]
          : [],
  );
  const old = oldConfigTarget(spec.version);
  return {
    describe: () => ({
      id: "kernel-config",
      title: p.cached
        ? `Configure the kernel: cached (${p.out})`
        : `Configure the kernel from ${p.baseSource}`,
      mutates: commands.length > 0,
      dependsOn: ["kernel-fetch"],
      commands,
      files,
      checks: p.cached
        ? []
        : [
            ...p.fragments.map((f) => `fragment kernels/fragments/${f}.config merged before ${old}`),
            ...p.symbols.map((x) => `CONFIG_${x}=m after ${old}`),
          ],
      notes: p.cached
        ? [cacheHitNote(p)]
        : [
            `${p.out}: the O= dir, named by the key of every input (sources, base config, fragments, module list, drivers, localversion, compiler)`,
          ],
    }),
    async run(ctx, report) {
      const ph = ctx.phase;
      mkdirSync(ph.out, { recursive: true });
      if (ph.cached) return report.progress(`kernel config: cache hit ${ph.key}`);
      report.progress(`kernel config (${ph.base.kind === "running" ? "running kernel's" : ph.base.kind})`);
      const cfg = await configureKernel({
        ...kernelConfigSpec(ph),
        exec: ctx.exec,
        logFile: kernelBuildLog(ph.out),
      });
      for (const l of cfg.droppedFragmentLines)
        ctx.result.warnings.push(`fragment line not honoured (a dependency is off): ${l}`);
    },
  };
}

export { cacheHitNote };
