import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { arch } from "node:os";
import { dirname, join } from "node:path";
import { defaultJobs, makeArgv, runMake } from "../build/make.js";
import { StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { kernelMakeArgv } from "./config.js";

/**
 * Compile and install a configured kernel (O= build dir). Progress is the count of kbuild `CC`
 * lines; the number expected is only known from an earlier build of the same config (the
 * `.o` count it left), so a first build reports the count alone.
 */

export interface KernelBuildOptions {
  src: string;
  out: string;
  exec: Exec;
  jobs?: number;
  logFile?: string;
  onProgress?: (text: string) => void;
  /** Objects the build should compile, when known. */
  expected?: number;
}

/** The release the configured tree builds (`include/config/kernel.release`, written by make). */
export function builtRelease(out: string): string | undefined {
  const p = join(out, "include", "config", "kernel.release");
  return existsSync(p) ? readFileSync(p, "utf8").trim() || undefined : undefined;
}

/** Targets for the host architecture: the boot image and the modules, not the whole `all`. */
export function buildTargets(hostArch: string = arch()): string[] {
  return hostArch === "x64" ? ["bzImage", "modules"] : ["all"];
}

/** The make arguments of the compile (runMake adds `make -j<jobs>`): the O= dir and the targets. */
export const kernelBuildArgs = (out: string): string[] => [`O=${out}`, ...buildTargets()];

/** The compile as run in the source tree: runMake's argv of kernelBuildArgs. */
export const kernelBuildArgv = (out: string, jobs: number): string[] => makeArgv(jobs, kernelBuildArgs(out));

/** The boot image a build made. */
export function bootImage(out: string, hostArch: string = arch()): string {
  return hostArch === "x64" ? join(out, "arch", "x86", "boot", "bzImage") : join(out, "vmlinux");
}

export async function buildKernel(
  o: KernelBuildOptions,
): Promise<{ compiled: number; durationMs: number; release: string }> {
  const r = await runMake({
    dir: o.src,
    exec: o.exec,
    jobs: o.jobs ?? defaultJobs(),
    args: kernelBuildArgs(o.out),
    expected: o.expected,
    logFile: o.logFile,
    onProgress: o.onProgress,
  });
  const release = builtRelease(o.out);
  if (!release || !existsSync(bootImage(o.out)))
    throw new StepError(
      "kernel-build",
      `make finished but ${o.out} has no kernel image or release`,
      "read the build log",
    );
  return { ...r, release };
}

export interface KernelInstallOptions {
  src: string;
  out: string;
  exec: Exec;
  /** Root the modules go under (INSTALL_MOD_PATH): "/" on a real host, a staging dir in tests. */
  modPath: string;
  /** Where vmlinuz/System.map/config go (INSTALL_PATH); undefined: modules only. */
  bootDir?: string;
  logFile?: string;
  /** True on a real host: the install step runs the distro's installkernel hooks. */
  mutates?: boolean;
}

/**
 * `make modules_install` then `make install`. Debian's installkernel runs the postinst hooks
 * (initramfs, update-grub) only when INSTALL_PATH is /boot, so installing into a sysroot touches
 * nothing outside it.
 */
export async function installKernel(
  o: KernelInstallOptions,
): Promise<{ release: string; moduleDir: string }> {
  const release = builtRelease(o.out);
  if (!release)
    throw new StepError("kernel-install", `${o.out} is not a built kernel tree`, "build it first");
  const [modules, image] = kernelInstallArgvs(o.out, o.modPath, o.bootDir);
  const run = (argv: string[]) => o.exec.run(argv, { cwd: o.src, logFile: o.logFile, mutates: o.mutates });
  mkdirSync(o.modPath, { recursive: true });
  await run(modules as string[]);
  if (o.bootDir !== undefined && image) {
    mkdirSync(o.bootDir, { recursive: true });
    await run(image);
  }
  return { release, moduleDir: join(o.modPath, "lib", "modules", release) };
}

/**
 * `make modules_install` (and `make install` when a boot dir is given), run in the source tree.
 * INSTALL_MOD_STRIP keeps the staged tree small; depmod runs as part of modules_install.
 */
export function kernelInstallArgvs(out: string, modPath: string, bootDir?: string): string[][] {
  return [
    kernelMakeArgv(out, `INSTALL_MOD_PATH=${modPath}`, "INSTALL_MOD_STRIP=1", "modules_install"),
    ...(bootDir !== undefined ? [kernelMakeArgv(out, `INSTALL_PATH=${bootDir}`, "install")] : []),
  ];
}

/** The kernel's own Debian packaging target, with the package version it is given. */
export const debPackageArgs = (jobs: number): string[] => [`-j${jobs}`, "bindeb-pkg"];

/** `make O=<out> -j<jobs> bindeb-pkg`, run in the source tree. */
export const debPackageArgv = (out: string, jobs: number): string[] =>
  kernelMakeArgv(out, ...debPackageArgs(jobs));

/** The Debian architecture name of the host's (kbuild names the package by it). */
const debArch = (hostArch: string = arch()): string =>
  ({ x64: "amd64", arm64: "arm64", ia32: "i386", arm: "armhf", ppc64: "ppc64el", s390x: "s390x" })[
    hostArch
  ] ?? hostArch;

/** The image package bindeb-pkg makes, as `plan` names it: kbuild picks `<version>` (the package version). */
export const planDebImage = (out: string, release: string): string =>
  join(out, "debs", `linux-image-${release}_<version>_${debArch()}.deb`);

/** Install the image package: `dpkg -i` on the real host, else `dpkg -x` into the root then depmod there. */
export function debInstallArgvs(image: string, release: string, root: string): string[][] {
  const realHost = root === "/" || root === "";
  return realHost
    ? [["dpkg", "-i", image]]
    : [
        ["dpkg", "-x", image, root],
        ["depmod", "-b", root, release],
      ];
}

/**
 * `make bindeb-pkg`: the built tree as Debian packages (linux-image-<release>, headers, libc-dev),
 * so removing the kernel later is `apt remove linux-image-<release>`. kbuild writes the .deb files
 * next to the O= dir, which other cached builds share: they are moved into `<out>/debs/`.
 */
export async function packageKernelDeb(o: {
  src: string;
  out: string;
  exec: Exec;
  jobs?: number;
  logFile?: string;
}): Promise<{ release: string; debs: string[]; image: string }> {
  const release = builtRelease(o.out);
  if (!release)
    throw new StepError("kernel-package", `${o.out} is not a built kernel tree`, "build it first");
  const started = Date.now();
  try {
    await o.exec.run(debPackageArgv(o.out, o.jobs ?? defaultJobs()), {
      cwd: o.src,
      logFile: o.logFile,
    });
  } catch (err) {
    throw new StepError(
      "kernel-package",
      `make bindeb-pkg failed: ${(err as Error).message}`,
      "kbuild's Debian packaging needs dpkg-dev, fakeroot and rsync (apt-get install dpkg-dev fakeroot rsync); or set kernel.install: make",
      err,
    );
  }
  const parent = dirname(o.out);
  const dest = join(o.out, "debs");
  mkdirSync(dest, { recursive: true });
  const debs: string[] = [];
  for (const n of readdirSync(parent)) {
    const p = join(parent, n);
    if (!n.endsWith(".deb") || !n.includes(release) || statSync(p).mtimeMs < started - 1000) continue;
    renameSync(p, join(dest, n));
    debs.push(join(dest, n));
  }
  const image = debs.find((d) => d.includes(`/linux-image-${release}_`));
  if (!image)
    throw new StepError(
      "kernel-package",
      `make bindeb-pkg finished but no linux-image-${release}_*.deb appeared in ${parent}`,
      "read the build log; dpkg-buildpackage (dpkg-dev) and fakeroot must be installed",
    );
  return { release, debs: debs.sort(), image };
}

/**
 * Install the image package: `dpkg -i` on the real host (its maintainer scripts build the
 * initramfs and update grub), or `dpkg -x` into a staging root (no scripts run) then depmod there.
 */
export async function installKernelDeb(o: {
  image: string;
  release: string;
  root: string;
  exec: Exec;
  logFile?: string;
}): Promise<{ moduleDir: string; argv: string[] }> {
  const argvs = debInstallArgvs(o.image, o.release, o.root);
  for (const argv of argvs) await o.exec.run(argv, { logFile: o.logFile, mutates: true });
  return { moduleDir: join(o.root, "lib", "modules", o.release), argv: argvs[0] as string[] };
}

/** The commands that make the new kernel boot once (grub-reboot: a failed boot falls back). */
export function nextBootArgv(release: string, grubEntry?: string): string[] {
  // Debian's menu entry for a kernel in the submenu: "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux <release>".
  return [
    "grub-reboot",
    grubEntry ?? `Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux ${release}`,
  ];
}
