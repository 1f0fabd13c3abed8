import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BlockedError, UserError } from "../core/errors.js";
import { underRoot } from "../core/paths.js";
import { releaseFromImage } from "../guest/guest-kernel.js";
import { kernelReleaseMatches, parseKernelVersion } from "../recipe/kernel-version.js";
import type { Recipe } from "../recipe/schema.js";
import { kernelReleaseFromBzImage } from "./bzimage-release.js";

/** The kernel the rehearsal boots, the release the build targets, and why that one. */
export interface TryKernel {
  image: string;
  release: string;
  why: string;
}

const hasModules = (root: string, release: string): boolean =>
  existsSync(underRoot(root, join("/lib/modules", release, "modules.dep")));

/** Releases with both /boot/vmlinuz-<release> and /lib/modules/<release>/modules.dep, newest first. */
function bootableReleases(root: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(underRoot(root, "/boot"));
  } catch {
    // no /boot: none
  }
  return names
    .map((n) => releaseFromImage(n))
    .filter((r): r is string => r !== undefined && hasModules(root, r))
    .sort((a, b) => b.localeCompare(a, "en", { numeric: true }));
}

/**
 * Pick the guest kernel: `--kernel FILE` (release read from its boot header), else the host's
 * /boot/vmlinuz-<release> for the release the recipe targets. "running" means the running
 * kernel when it is installed with modules; the host may run one that is not (a cloud or
 * container kernel), and then the newest installed kernel is the one a reboot would give.
 */
export function chooseTryKernel(o: { root: string; recipe: Recipe; kernelFile?: string }): TryKernel {
  const spec = parseKernelVersion(o.recipe.kernel.version);
  if ("error" in spec) throw new UserError(`kernel.version: ${spec.error}`, spec.hint);
  if (o.kernelFile) {
    if (!existsSync(o.kernelFile)) throw new UserError(`--kernel ${o.kernelFile} does not exist`);
    const release = kernelReleaseFromBzImage(o.kernelFile) ?? releaseFromImage(o.kernelFile);
    if (!release) {
      throw new UserError(
        `cannot read the kernel release of ${o.kernelFile}: not an x86 bzImage with a version string`,
        "pass an arch/x86/boot/bzImage or a /boot/vmlinuz-<release> file",
      );
    }
    if (!hasModules(o.root, release)) {
      throw new BlockedError(
        `${o.kernelFile} is kernel ${release}, but /lib/modules/${release}/modules.dep does not exist`,
        "install that kernel's modules (make modules_install, or the distro's linux-image package) so the guest can load them",
      );
    }
    if (spec.kind !== "running" && !kernelReleaseMatches(spec, release)) {
      throw new UserError(
        `${o.kernelFile} is kernel ${release}, but the recipe targets ${o.recipe.kernel.version}`,
        "pass a kernel the recipe allows, or a recipe for this kernel",
      );
    }
    return { image: o.kernelFile, release, why: "--kernel, release read from its boot header" };
  }
  const installed = bootableReleases(o.root);
  const image = (r: string) => underRoot(o.root, `/boot/vmlinuz-${r}`);
  if (spec.kind === "exact") {
    if (!installed.includes(spec.release)) {
      throw new BlockedError(
        `the recipe targets ${spec.release}, but /boot/vmlinuz-${spec.release} with its modules is not installed`,
        `install linux-image-${spec.release}, or pass --kernel <bzImage>`,
      );
    }
    return { image: image(spec.release), release: spec.release, why: "the release the recipe names" };
  }
  if (spec.kind === "range") {
    const r = installed.find((x) => kernelReleaseMatches(spec, x));
    if (!r) {
      throw new BlockedError(
        `no installed kernel matches the recipe's ${o.recipe.kernel.version} (installed: ${installed.join(", ") || "none"})`,
        "install a distro kernel in that range, or pass --kernel <bzImage>",
      );
    }
    return { image: image(r), release: r, why: `newest installed kernel in ${o.recipe.kernel.version}` };
  }
  const osrelease = underRoot(o.root, "/proc/sys/kernel/osrelease");
  const running = existsSync(osrelease) ? readFileSync(osrelease, "utf8").trim() : "";
  if (running && installed.includes(running)) {
    return { image: image(running), release: running, why: "the running kernel" };
  }
  const newest = installed[0];
  if (!newest) {
    throw new BlockedError(
      "no bootable kernel for the guest: no /boot/vmlinuz-<release> with /lib/modules/<release>/modules.dep",
      "install a distro kernel (Debian: apt-get install linux-image-amd64), or pass --kernel <bzImage>",
    );
  }
  return {
    image: image(newest),
    release: newest,
    why: `the running kernel ${running || "?"} is not installed under /boot with modules; newest installed one`,
  };
}
