import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { debianKernel } from "./debian-kernel.js";
import { repoRoot } from "./paths.js";

/** The netmap stand-in source tree the tests build (not netmap: see its README.md). */
export const standinDir: string = join(repoRoot, "test", "fixtures", "netmap-standin");

/** The same stand-in in netmap's old layout (v11.0: no configure, `make KSRC=`, netmap_lin.ko). */
export const legacyStandinDir: string = join(repoRoot, "test", "fixtures", "netmap-standin-legacy");

/** Where unpacked kernel sources are kept between test runs (gitignored). */
export const ksrcCacheDir: string = join(repoRoot, ".cache", "ksrc");

/** The parts of the kernel tree the stand-in needs: `find <src>/drivers` for the e1000 sources. */
const members = ["drivers/net", "Makefile"];

/**
 * The linux-source tarball of the installed Debian kernel's series (`/usr/src/linux-source-X.Y.tar.xz`);
 * a missing one is an error naming the package, not a skip (see debian-kernel.ts).
 */
export const linuxSourceTarball = (): string => debianKernel().sourceTarball;

/** What the stamp of an unpack records: the tarball and its size and mtime, so an apt upgrade of it re-unpacks. */
const stampText = (tarball: string): string => {
  const st = statSync(tarball);
  return `${tarball}\n${st.size} ${st.mtimeMs}\n${members.join("\n")}\n`;
};

const readIf = (p: string): string | undefined => (existsSync(p) ? readFileSync(p, "utf8") : undefined);

/** The driver sources already unpacked from the current tarball, if they are (nothing is unpacked here). */
export function unpackedDriverSources(tarball: string = linuxSourceTarball()): string | undefined {
  const dest = join(ksrcCacheDir, basename(tarball, ".tar.xz"));
  return readIf(join(dest, ".np-unpacked")) === stampText(tarball) ? dest : undefined;
}

/**
 * The kernel driver sources unpacked once per machine under .cache/ksrc (only drivers/net and
 * the top Makefile: 136 MB instead of 1.5 GB). Unpacks into a private directory and renames it
 * into place, so test processes racing here never see a half-written tree.
 */
export function ensureKernelDriverSources(tarball: string = linuxSourceTarball()): string {
  const top = basename(tarball, ".tar.xz");
  const dest = join(ksrcCacheDir, top);
  const stamp = join(dest, ".np-unpacked");
  const expected = stampText(tarball);
  const current = () => readIf(stamp) === expected;
  if (current()) return dest;
  mkdirSync(ksrcCacheDir, { recursive: true });
  const scratch = join(ksrcCacheDir, `.unpack-${process.pid}-${Date.now()}`);
  mkdirSync(scratch);
  try {
    execFileSync("tar", ["-xf", tarball, "-C", scratch, ...members.map((m) => `${top}/${m}`)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    writeFileSync(join(scratch, top, ".np-unpacked"), expected);
    // Not stamped for this tarball: a killed unpack, or one of an older linux-source package.
    if (existsSync(dest) && !current()) rmSync(dest, { recursive: true, force: true });
    try {
      renameSync(join(scratch, top), dest);
    } catch (e) {
      // Another process won the race: its tree is complete, use it.
      if (!current()) throw e;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return dest;
}

/** The installed Debian kernel's headers to build against: its release and /lib/modules/<release>/build. */
export function kernelHeaders(): { kver: string; kdir: string } {
  const k = debianKernel();
  return { kver: k.release, kdir: k.buildDir };
}
