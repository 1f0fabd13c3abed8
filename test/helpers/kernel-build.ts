import { join } from "node:path";
import { repoRoot } from "./paths.js";

/** The cache the kernel tests share (gitignored): unpacked 6.1 sources and built kernel trees. */
export const kernelTestCache: string = join(repoRoot, ".cache", "kernel-test");

/** The Debian source package tarball CI installs. */
export const linuxSource61 = "/usr/src/linux-source-6.1.tar.xz";
