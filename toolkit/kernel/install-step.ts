import { join } from "node:path";
import type { PlannedCommand, Step } from "../runner/step.js";
import {
  debInstallArgvs,
  debPackageArgv,
  installKernel,
  installKernelDeb,
  kernelInstallArgvs,
  nextBootArgv,
  packageKernelDeb,
  planDebImage,
} from "./build.js";
import { type KernelPhase, type KernelPhaseContext, kernelBuildLog } from "./phase.js";
import { advance, readResume, writeResume } from "./resume.js";

/**
 * kernel-install: modules and image into the install root, by `make modules_install install` or
 * as a Debian package (`make bindeb-pkg`, then `dpkg -i`, or `dpkg -x` + depmod in a staging
 * root); on the real host, grub-reboot sets it for the next boot only.
 */
export function kernelInstallStep(p: KernelPhase): Step<KernelPhaseContext> {
  const inst = p.install;
  const src = p.sources.dir;
  const inSrc = (argv: string[]): PlannedCommand => ({ argv, cwd: src, mutates: true });
  const run = (argv: string[]): PlannedCommand => ({ argv, mutates: true });
  const commands: PlannedCommand[] = !inst
    ? []
    : [
        ...(inst.mode === "deb"
          ? [
              inSrc(debPackageArgv(p.out, p.jobs)),
              ...debInstallArgvs(planDebImage(p.out, p.release), p.release, inst.root).map(run),
            ]
          : kernelInstallArgvs(p.out, inst.root, join(inst.root, "boot")).map(inSrc)),
        ...(inst.realHost && inst.setNextBoot ? [run(nextBootArgv(p.release))] : []),
      ];
  const root = inst?.root ?? "/";
  return {
    describe: () => ({
      id: "kernel-install",
      title: `Install kernel ${p.release} and its modules${inst && !inst.realHost ? ` into ${root}` : ""}${inst?.realHost && inst.setNextBoot ? ", boot it once" : ""}`,
      mutates: true,
      dependsOn: ["kernel-build"],
      commands,
      files: [
        ...(inst?.mode === "deb" ? [{ action: "create" as const, path: join(p.out, "debs") }] : []),
        { action: "create", path: join(root, "lib", "modules", p.release) },
        { action: "create", path: join(root, "boot", `vmlinuz-${p.release}`) },
        { action: "create", path: join(root, "boot", `config-${p.release}`) },
      ],
      checks: [],
      notes: [
        ...(inst?.realHost && inst.setNextBoot
          ? [
              "grub-reboot boots the new kernel once: a kernel that fails to boot falls back to the current one",
            ]
          : []),
        ...(inst?.mode === "deb"
          ? [
              `installed as a package: \`apt remove linux-image-${p.release}\` takes it away again`,
              "<version>: the package version bindeb-pkg gives it",
            ]
          : []),
      ],
    }),
    async run(ctx, report) {
      const ph = ctx.phase;
      const i = ph.install;
      if (!i) return;
      const logFile = kernelBuildLog(ph.out);
      if (i.mode === "deb") {
        report.progress("kernel package (make bindeb-pkg)");
        const pkg = await packageKernelDeb({
          src: ph.sources.dir,
          out: ph.out,
          exec: ctx.exec,
          jobs: ph.jobs,
          logFile,
        });
        ctx.result.debs = pkg.debs;
        report.progress(`kernel install into ${i.root} (${i.realHost ? "dpkg -i" : "dpkg -x"})`);
        const r = await installKernelDeb({
          image: pkg.image,
          release: ph.release,
          root: i.root,
          exec: ctx.exec,
          logFile,
        });
        ctx.result.moduleDir = r.moduleDir;
      } else {
        report.progress(`kernel install into ${i.root}`);
        const r = await installKernel({
          src: ph.sources.dir,
          out: ph.out,
          exec: ctx.exec,
          modPath: i.root,
          bootDir: join(i.root, "boot"),
          logFile,
          mutates: true,
        });
        ctx.result.moduleDir = r.moduleDir;
      }
      if (i.realHost && i.setNextBoot) {
        ctx.result.nextBoot = nextBootArgv(ph.release);
        await ctx.exec.run(ctx.result.nextBoot, { mutates: true, logFile });
      }
      if (ctx.req.stateDir) {
        let s = readResume(ctx.req.stateDir);
        if (s) {
          s = advance(s, "kernel-installed");
          s = advance(s, "awaiting-reboot");
          writeResume(ctx.req.stateDir, s);
        }
      }
    },
  };
}
