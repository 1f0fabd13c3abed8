import { join } from "node:path";
import type { DriverCatalog } from "../../toolkit/catalog/drivers.js";
import type { Exec } from "../../toolkit/core/exec.js";
import {
  buildAndInstallKernel,
  type KernelBuildRequest,
  type KernelBuildResult,
} from "../../toolkit/kernel/build-and-install.js";
import type { Recipe } from "../../toolkit/recipe/schema.js";
import { debianKernel } from "./debian-kernel.js";
import { repoRoot } from "./paths.js";

/** The cache the kernel tests share (gitignored): unpacked distro sources and built kernel trees. */
export const kernelTestCache: string = join(repoRoot, ".cache", "kernel-test");

/**
 * The sources of the toolkit-built test kernel: the linux-source-X.Y tarball of the installed
 * Debian kernel's series (linux-source-6.1 on bookworm), found by debian-kernel.ts.
 */
export const testKernelSources = (): { kind: "distro"; tarball: string } => ({
  kind: "distro",
  tarball: debianKernel().sourceTarball,
});

/** The recipe of the toolkit-built test kernel: the distro's linux-source with guest-minimal, e1000 as a module. */
export const testKernelRecipeYaml = (
  name: string,
  src: { dir: string; version: string },
  netmap: string,
): string =>
  `name: ${name}
kernel:
  version: "${src.version}-np"
  build: true
  sources: { kind: local, path: ${src.dir} }
  config: { fragments: [guest-minimal] }
  localversion: np
netmap:
  source: { kind: local, path: ${netmap} }
  apps: [pkt-gen]
drivers: [e1000]
`;

/** Build (a cache hit once built) and optionally stage the test kernel: tinyconfig base, distro sources. */
export const buildTestKernel = (
  recipe: Recipe,
  catalog: DriverCatalog,
  exec: Exec,
  extra: Partial<KernelBuildRequest> = {},
): Promise<KernelBuildResult> =>
  buildAndInstallKernel({
    recipe,
    cacheDir: kernelTestCache,
    exec,
    driverCatalog: catalog,
    sources: testKernelSources(),
    base: { kind: "tiny" },
    ...extra,
  });
