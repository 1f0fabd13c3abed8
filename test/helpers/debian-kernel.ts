import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { underRoot } from "../../toolkit/core/paths.js";
import { distroSourceTarball, readKernelTarget } from "../../toolkit/sources/target-kernel-sources.js";

/*
 * The installed Debian kernel the real-kernel tests build against and boot, discovered from what
 * apt put on this machine (linux-image-amd64, linux-headers-amd64, linux-source-X.Y), never named
 * in a test: apt moves the ABI release on (6.1.0-56-amd64, then 6.1.0-57-amd64, ...). When a part
 * is missing, the error names the Debian package to install, so a test fails saying so instead of
 * skipping. `root` (default "/") is for the helper's own tests: paths returned carry it.
 */

/** A kernel image with its modules: enough to boot a guest. */
export interface DebianKernelImage {
  /** The ABI release (`uname -r` form), e.g. 6.1.0-57-amd64. */
  release: string;
  /** /boot/vmlinuz-<release> */
  image: string;
  /** /boot/config-<release> (shipped by linux-image-<release>). */
  config: string;
  /** /lib/modules/<release> */
  moduleDir: string;
}

/** The image, its headers and the matching linux-source package: enough to build modules and kernels. */
export interface DebianKernel extends DebianKernelImage {
  /** /lib/modules/<release>/build */
  buildDir: string;
  /** Where the build link points (/usr/src/linux-headers-<release>). */
  headersDir: string;
  /** Upstream x.y.z, read by the toolkit from the headers (6.1.0-57-amd64 is 6.1.192). */
  version: string;
  /** netmap's configure code for it (601c0 for 6.1.192). */
  versionCode: string;
  /** x.y (6.1): names the source package. */
  series: string;
  /** linux-source-<series> */
  sourcePackage: string;
  /** /usr/src/linux-source-<series>.tar.xz */
  sourceTarball: string;
}

/** Debian's ABI releases: 6.1.0-57-amd64 (bookworm and before), 6.12.48+deb13-amd64 (trixie on). */
const DEBIAN_RELEASE = /^\d+\.\d+\.\d+(?:-\d+|\+deb\d+)-[a-z0-9][a-z0-9-]*$/;

const newestFirst = (a: string, b: string): number => b.localeCompare(a, "en", { numeric: true });

const IMAGE_PACKAGE = "linux-image-amd64";
const HEADERS_PACKAGE = "linux-headers-amd64";

/** Every installed Debian kernel image that has its modules, newest release first. */
export function debianKernelImages(root = "/"): DebianKernelImage[] {
  const boot = underRoot(root, "/boot");
  return (existsSync(boot) ? readdirSync(boot) : [])
    .map((n) => /^vmlinuz-(.+)$/.exec(n)?.[1])
    .filter((r): r is string => r !== undefined && DEBIAN_RELEASE.test(r))
    .filter((r) => existsSync(underRoot(root, `/lib/modules/${r}/modules.dep`)))
    .sort(newestFirst)
    .map((release) => ({
      release,
      image: underRoot(root, `/boot/vmlinuz-${release}`),
      config: underRoot(root, `/boot/config-${release}`),
      moduleDir: underRoot(root, `/lib/modules/${release}`),
    }));
}

function withConfig(k: DebianKernelImage): DebianKernelImage {
  if (!existsSync(k.config)) {
    throw new Error(
      `/boot/config-${k.release} is missing: reinstall linux-image-${k.release} (apt-get install --reinstall linux-image-${k.release})`,
    );
  }
  return k;
}

/** The newest installed Debian kernel image (for the guest tier); throws naming linux-image-amd64. */
export function debianKernelImage(root = "/"): DebianKernelImage {
  const newest = debianKernelImages(root)[0];
  if (!newest) {
    throw new Error(
      `no Debian kernel installed (no /boot/vmlinuz-<release> with /lib/modules/<release>/modules.dep): install ${IMAGE_PACKAGE}`,
    );
  }
  return withConfig(newest);
}

/** The Version field of an installed Debian package (from /var/lib/dpkg/status), if dpkg knows it. */
export function dpkgVersion(pkg: string, root = "/"): string | undefined {
  const statusFile = underRoot(root, "/var/lib/dpkg/status");
  if (!existsSync(statusFile)) return undefined;
  for (const stanza of readFileSync(statusFile, "utf8").split(/\n\n+/)) {
    if (!new RegExp(`^Package: ${pkg.replace(/[.+]/g, "\\$&")}$`, "m").test(stanza)) continue;
    if (!/^Status: install ok installed$/m.test(stanza)) return undefined;
    return /^Version: (\S+)$/m.exec(stanza)?.[1];
  }
  return undefined;
}

/** The upstream part of a Debian version: 6.1.192-3 and 1:6.1.192-3~bpo are 6.1.192. */
export const upstreamVersion = (debianVersion: string): string =>
  debianVersion.replace(/^\d+:/, "").replace(/[-~].*$/, "");

let cached: DebianKernel | undefined; // for root "/"

/**
 * The newest installed Debian kernel with image, modules, config and headers, its upstream version
 * (the toolkit's own readKernelTarget) and the linux-source tarball of its series, checked to be
 * the same point release when dpkg can tell. Read once per test process.
 */
export function debianKernel(root = "/"): DebianKernel {
  if (cached && root === "/") return cached;
  const newest = debianKernelImage(root); // throws, naming linux-image-amd64, when there is none
  const withHeaders = debianKernelImages(root).find((k) => existsSync(join(k.moduleDir, "build")));
  if (!withHeaders) {
    throw new Error(
      `no kernel headers for ${newest.release} (/lib/modules/${newest.release}/build is missing): install ${HEADERS_PACKAGE} (linux-headers-${newest.release})`,
    );
  }
  const image = withConfig(withHeaders);
  let target: ReturnType<typeof readKernelTarget>;
  try {
    target = readKernelTarget({ release: image.release, root });
  } catch (e) {
    const err = e as Error & { hint?: string };
    throw new Error(
      `the headers of ${image.release} are unusable: ${err.message}${err.hint ? ` (${err.hint})` : ""}: reinstall linux-headers-${image.release}`,
    );
  }
  const series = target.version.split(".").slice(0, 2).join(".");
  const sourcePackage = `linux-source-${series}`;
  const sourceTarball = distroSourceTarball(target.version, root);
  if (!sourceTarball) {
    throw new Error(
      `no /usr/src/${sourcePackage}.tar.xz for ${image.release} (Linux ${target.version}): install ${sourcePackage}`,
    );
  }
  const sourceVersion = dpkgVersion(sourcePackage, root);
  if (sourceVersion && upstreamVersion(sourceVersion) !== target.version) {
    throw new Error(
      `${sourcePackage} is ${sourceVersion}, but ${image.release} is Linux ${target.version}: ` +
        `upgrade them to the same point release (apt-get install ${IMAGE_PACKAGE} ${HEADERS_PACKAGE} ${sourcePackage})`,
    );
  }
  const found: DebianKernel = {
    ...image,
    buildDir: target.buildDir,
    headersDir: realpathSync(target.buildDir),
    version: target.version,
    versionCode: target.versionCode,
    series,
    sourcePackage,
    sourceTarball,
  };
  if (root === "/") cached = found;
  return found;
}

/** A string matched literally inside a RegExp (releases and versions carry dots and pluses). */
export const reEscape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** True for an x86-64 ELF executable with no program interpreter (PT_INTERP): it runs without libraries. */
function isStaticElf(path: string): boolean {
  const b = readFileSync(path);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false; // ELF64 only
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > b.length) return false;
    if (b.readUInt32LE(at) === 3) return false; // PT_INTERP: dynamically linked
  }
  return true;
}

/**
 * The static busybox the guest initramfs carries (Debian: busybox-static puts it in /bin, which is
 * /usr/bin on a merged-/usr system); throws naming the package, also when only the dynamically
 * linked `busybox` package is there.
 */
export function staticBusybox(root = "/"): string {
  const found = ["/bin/busybox", "/usr/bin/busybox"]
    .map((p) => underRoot(root, p))
    .filter((p) => existsSync(p));
  const staticOne = found.find(isStaticElf);
  if (staticOne) return staticOne;
  throw new Error(
    found.length
      ? `${found.join(" and ")} is dynamically linked, which the initramfs cannot run: install busybox-static`
      : "no /bin/busybox or /usr/bin/busybox: install busybox-static",
  );
}
