import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { arch } from "node:os";
import { join } from "node:path";
import { defaultJobs, runMake } from "../build/make.js";
import { StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";

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
    args: [`O=${o.out}`, ...buildTargets()],
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
  const run = (args: string[]) =>
    o.exec.run(["make", `O=${o.out}`, ...args], { cwd: o.src, logFile: o.logFile, mutates: o.mutates });
  mkdirSync(o.modPath, { recursive: true });
  // INSTALL_MOD_STRIP keeps the staged tree small; depmod runs as part of modules_install.
  await run([`INSTALL_MOD_PATH=${o.modPath}`, "INSTALL_MOD_STRIP=1", "modules_install"]);
  if (o.bootDir !== undefined) {
    mkdirSync(o.bootDir, { recursive: true });
    await run([`INSTALL_PATH=${o.bootDir}`, "install"]);
  }
  return { release, moduleDir: join(o.modPath, "lib", "modules", release) };
}

/** The commands that make the new kernel boot once (grub-reboot: a failed boot falls back). */
export function nextBootArgv(release: string, grubEntry?: string): string[] {
  // Debian's menu entry for a kernel in the submenu: "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux <release>".
  return [
    "grub-reboot",
    grubEntry ?? `Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux ${release}`,
  ];
}
