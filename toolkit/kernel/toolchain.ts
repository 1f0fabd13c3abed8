import type { KernelCatalog } from "../catalog/kernels.js";
import { BlockedError } from "../core/errors.js";

/**
 * Refuse a compiler the kernel series cannot be built with, before anything is downloaded or
 * unpacked: a 2.6 tree stops on gcc 5+ only after minutes of work, with an error that does not
 * say "wrong compiler".
 */
export function assertCompilerFits(kernels: KernelCatalog, version: string, gcc: string | null): void {
  if (gcc === null)
    throw new BlockedError(
      `no C compiler found to build kernel ${version}`,
      "install gcc (Debian/Ubuntu: apt-get install build-essential)",
    );
  const c = kernels.compilerOk(version, gcc);
  if (!c.ok)
    throw new BlockedError(
      `gcc ${gcc} cannot build Linux ${version}: this series needs ${c.need}`,
      `build on a host (or in a container or VM) with ${c.need}, e.g. a distribution of that kernel's era`,
    );
}
