import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { repoRoot } from "./paths.js";

/** The netmap stand-in source tree the tests build (not netmap: see its README.md). */
export const standinDir: string = join(repoRoot, "test", "fixtures", "netmap-standin");

/** Where unpacked kernel sources are kept between test runs (gitignored). */
export const ksrcCacheDir: string = join(repoRoot, ".cache", "ksrc");

/** The parts of the kernel tree the stand-in needs: `find <src>/drivers` for the e1000 sources. */
const members = ["drivers/net", "Makefile"];

/**
 * A Debian linux-source tarball (`/usr/src/linux-source-X.Y.tar.xz`), newest first;
 * CI installs linux-source-6.1, so a missing tarball is an error, not a skip.
 */
export function linuxSourceTarball(): string {
  const found = readdirSync("/usr/src")
    .filter((f) => /^linux-source-\d+\.\d+\.tar\.xz$/.test(f))
    .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
  if (found[0] === undefined) {
    throw new Error("no /usr/src/linux-source-X.Y.tar.xz: install the linux-source-6.1 package");
  }
  return join("/usr/src", found[0]);
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
  if (existsSync(stamp)) return dest;
  mkdirSync(ksrcCacheDir, { recursive: true });
  const scratch = join(ksrcCacheDir, `.unpack-${process.pid}-${Date.now()}`);
  mkdirSync(scratch);
  try {
    execFileSync("tar", ["-xf", tarball, "-C", scratch, ...members.map((m) => `${top}/${m}`)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    writeFileSync(join(scratch, top, ".np-unpacked"), `${tarball}\n${members.join("\n")}\n`);
    if (existsSync(dest) && !existsSync(stamp)) rmSync(dest, { recursive: true, force: true });
    try {
      renameSync(join(scratch, top), dest);
    } catch (e) {
      // Another process won the race: its tree is complete, use it.
      if (!existsSync(stamp)) throw e;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return dest;
}

/**
 * The installed kernel headers to build against: /lib/modules/<kver>/build for the kernel
 * release whose major.minor matches the source tarball (6.1 for linux-source-6.1).
 */
export function kernelHeaders(tarball: string = linuxSourceTarball()): { kver: string; kdir: string } {
  const series = /linux-source-(\d+\.\d+)/.exec(tarball)?.[1] ?? "";
  const kvers = existsSync("/lib/modules") ? readdirSync("/lib/modules") : [];
  for (const kver of kvers.sort().reverse()) {
    const kdir = join("/lib/modules", kver, "build");
    const uts = join(kdir, "include", "generated", "utsrelease.h");
    if (kver.startsWith(`${series}.`) && existsSync(uts) && readFileSync(uts, "utf8").includes(`"${kver}"`)) {
      return { kver, kdir };
    }
  }
  throw new Error(`no kernel headers for ${series} in /lib/modules/*/build: install linux-headers-amd64`);
}
