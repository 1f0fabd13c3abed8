import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BlockedError } from "../core/errors.js";
import { underRoot } from "../core/paths.js";

/** A kernel a guest can boot: its image and the release whose /lib/modules it needs. */
export interface GuestKernel {
  kernel: string;
  kernelRelease: string;
}

/** The release a /boot/vmlinuz-<release> file name carries, if it follows that convention. */
export const releaseFromImage = (kernelPath: string): string | undefined =>
  /(?:^|\/)vmlinuz-([^/]+)$/.exec(kernelPath)?.[1];

/**
 * The kernel to boot in a guest: /boot/vmlinuz-<release> if `release` is given, otherwise the
 * newest image under /boot whose modules are installed (the host may run another kernel with no
 * /lib/modules at all, so the running one is not a candidate by default).
 */
export function findGuestKernel(root = "/", release?: string): GuestKernel {
  const hasModules = (rel: string) => existsSync(underRoot(root, join("/lib/modules", rel, "modules.dep")));
  if (release) {
    const kernel = `/boot/vmlinuz-${release}`;
    if (!existsSync(underRoot(root, kernel)) || !hasModules(release)) {
      throw new BlockedError(
        `kernel ${release} is not installed for guests: need ${kernel} and /lib/modules/${release}/modules.dep`,
        `install linux-image-${release} (Debian) or pick another release`,
      );
    }
    return { kernel: underRoot(root, kernel), kernelRelease: release };
  }
  let names: string[] = [];
  try {
    names = readdirSync(underRoot(root, "/boot"));
  } catch {
    // no /boot: reported below
  }
  const releases = names
    .map((n) => releaseFromImage(n))
    .filter((r): r is string => r !== undefined && hasModules(r))
    .sort((a, b) => b.localeCompare(a, "en", { numeric: true }));
  const newest = releases[0];
  if (!newest) {
    throw new BlockedError(
      "no bootable guest kernel: no /boot/vmlinuz-<release> with matching /lib/modules/<release>/modules.dep",
      "install a distribution kernel for the guest, e.g. `apt-get install linux-image-amd64`",
    );
  }
  return { kernel: underRoot(root, `/boot/vmlinuz-${newest}`), kernelRelease: newest };
}
