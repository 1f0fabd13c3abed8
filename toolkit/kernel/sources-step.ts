import { basename } from "node:path";
import type { PlannedCommand, Step } from "../runner/step.js";
import { ensureBuildSources, fetchSourcesArgvs } from "./build-sources.js";
import type { KernelPhase, KernelPhaseContext } from "./phase.js";
import { settleKernelPhase } from "./phase.js";
import { assertCompilerFits } from "./toolchain.js";

/**
 * kernel-fetch: the kernel's sources on disk, pristine, fetched once into the cache (a kernel.org
 * tarball checked by sha256, a distro source tarball, a git tag) or a local tree used as it is.
 */
export function kernelFetchStep(p: KernelPhase): Step<KernelPhaseContext> {
  const s = p.sources;
  const commands: PlannedCommand[] = fetchSourcesArgvs(s, p.cacheDir).map((argv) => ({
    argv,
    mutates: true,
  }));
  const spec = s.spec;
  const what =
    spec.kind === "kernelorg"
      ? `Fetch linux-${spec.version} from ${new URL(spec.url).host} (sha256 ${spec.sha256.slice(0, 12)}...) and unpack it`
      : spec.kind === "git"
        ? `Clone ${spec.url} at ${spec.tag}`
        : spec.kind === "distro"
          ? `Unpack ${basename(spec.tarball)}${s.version ? ` (Linux ${s.version})` : ""}`
          : `Use the kernel tree at ${spec.path}`;
  const title = s.ready && spec.kind !== "local" ? `Kernel sources ${s.dir} (unpacked before)` : what;
  return {
    describe: () => ({
      id: "kernel-fetch",
      title,
      mutates: commands.length > 0,
      dependsOn: [],
      commands,
      files: [
        ...(spec.kind === "kernelorg" && !s.ready && s.tarball
          ? [{ action: "create" as const, path: s.tarball.file }]
          : []),
        ...(commands.length > 0 ? [{ action: "create" as const, path: s.dir }] : []),
      ],
      checks: [
        ...(spec.kind === "kernelorg" && !s.ready
          ? [`sha256 of ${basename(spec.url)} = ${spec.sha256}`]
          : []),
        `${s.dir}/Makefile: VERSION.PATCHLEVEL.SUBLEVEL${s.version ? ` = ${s.version}` : ""}`,
      ],
      notes: [
        ...(spec.kind === "kernelorg" && !s.ready
          ? [`download ${spec.url} into the content-addressed cache, checked before use`]
          : []),
        ...(commands.length > 0 ? ["<tmp>: a private dir, renamed into place once the tree is checked"] : []),
      ],
    }),
    async run(ctx, report) {
      const { req } = ctx;
      report.progress("kernel sources");
      const located = ctx.phase.sources;
      const src = await ensureBuildSources(located.spec, {
        cacheDir: req.cacheDir,
        exec: ctx.exec,
        offline: req.offline,
        // A distro tarball's version was read from it while resolving: not read again.
        ...(located.spec.kind === "distro" && located.version ? { expectVersion: located.version } : {}),
      });
      if (!ctx.phase.pinned) assertCompilerFits(ctx.kernels, src.version, ctx.gcc);
      ctx.result.src = src;
      // The tree on disk now: its version, and so the key (a git tag nobody pinned is known only now).
      const { key: _k, out: _o, cached: _c, release: _r, ...rest } = ctx.phase;
      ctx.phase = settleKernelPhase({
        ...rest,
        sources: { ...ctx.phase.sources, dir: src.dir, version: src.version, id: src.id, ready: true },
      });
    },
  };
}
