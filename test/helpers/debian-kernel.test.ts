import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import test from "ava";
import {
  debianKernel,
  debianKernelImage,
  debianKernelImages,
  dpkgVersion,
  staticBusybox,
  upstreamVersion,
} from "./debian-kernel.js";
import { FIXTURE_RELEASE } from "./hosts.js";
import { tempDirs } from "./temp.js";

/*
 * The discovery the real-kernel tests rely on, on a fake root built up one Debian package at a
 * time: each missing part fails naming the package that installs it. Releases are the fixture's
 * (and the next ABI number), not this machine's.
 */

const tempDir = tempDirs(test);
const rel = FIXTURE_RELEASE;
const next = rel.replace(/-(\d+)-/, (_, n: string) => `-${Number(n) + 1}-`);
const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const put = (root: string, path: string, text = ""): void => {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
};

const image = (root: string, release: string): void => {
  put(root, `boot/vmlinuz-${release}`, "bzImage");
  put(root, `lib/modules/${release}/modules.dep`);
};

const headers = (root: string, release: string, configured = true): void => {
  const build = `lib/modules/${release}/build`;
  mkdirSync(join(root, build), { recursive: true });
  if (!configured) return;
  put(root, `${build}/.config`, "CONFIG_E1000=m\n");
  put(
    root,
    `${build}/include/generated/uapi/linux/version.h`,
    "#define LINUX_VERSION_CODE 393664\n#define LINUX_VERSION_MAJOR 6\n#define LINUX_VERSION_PATCHLEVEL 1\n#define LINUX_VERSION_SUBLEVEL 192\n",
  );
  put(root, `${build}/include/generated/utsrelease.h`, `#define UTS_RELEASE "${release}"\n`);
};

const dpkgStatus = (root: string, pkgs: Record<string, string>): void =>
  put(
    root,
    "var/lib/dpkg/status",
    Object.entries(pkgs)
      .map(([p, v]) => `Package: ${p}\nStatus: install ok installed\nVersion: ${v}\n`)
      .join("\n"),
  );

test("each missing Debian package is named: image, config, headers, configured headers, source", (t) => {
  const root = tempDir("np-debk-");
  t.throws(() => debianKernel(root), { message: /: install linux-image-amd64$/ });
  t.throws(() => debianKernelImage(root), { message: /: install linux-image-amd64$/ });

  image(root, rel);
  t.throws(() => debianKernelImage(root), {
    message: new RegExp(`^/boot/config-${re(rel)} is missing: reinstall linux-image-${re(rel)}`),
  });
  put(root, `boot/config-${rel}`, "CONFIG_E1000=m\n");
  t.is(debianKernelImage(root).release, rel);
  t.throws(() => debianKernel(root), {
    message: new RegExp(`install linux-headers-amd64 \\(linux-headers-${re(rel)}\\)$`),
  });

  headers(root, rel, false);
  t.throws(() => debianKernel(root), { message: new RegExp(`reinstall linux-headers-${re(rel)}$`) });
  headers(root, rel);
  t.throws(() => debianKernel(root), {
    message: /\/usr\/src\/linux-source-6\.1\.tar\.xz .*: install linux-source-6\.1$/,
  });

  put(root, "usr/src/linux-source-6.1.tar.xz", "not really xz");
  dpkgStatus(root, { "linux-source-6.1": "6.1.180-1" });
  t.throws(() => debianKernel(root), {
    message:
      /^linux-source-6\.1 is 6\.1\.180-1, but .* is Linux 6\.1\.192: .*apt-get install linux-image-amd64 linux-headers-amd64 linux-source-6\.1\)$/,
  });

  dpkgStatus(root, { "linux-source-6.1": "6.1.192-3" });
  t.like(debianKernel(root), {
    release: rel,
    image: join(root, "boot", `vmlinuz-${rel}`),
    config: join(root, "boot", `config-${rel}`),
    moduleDir: join(root, "lib/modules", rel),
    buildDir: join(root, "lib/modules", rel, "build"),
    version: "6.1.192",
    versionCode: "601c0",
    series: "6.1",
    sourcePackage: "linux-source-6.1",
    sourceTarball: join(root, "usr/src/linux-source-6.1.tar.xz"),
  });
});

test("the newest Debian image with headers is the one; other kernels in /boot are not Debian's", (t) => {
  const root = tempDir("np-debk-");
  for (const r of [rel, next, "6.18.44-fc-v1045"]) {
    image(root, r);
    put(root, `boot/config-${r}`);
  }
  put(root, `boot/vmlinuz-${next}.old`); // no modules of that name: not a kernel to boot
  t.deepEqual(
    debianKernelImages(root).map((k) => k.release),
    [next, rel],
  );
  t.is(debianKernelImage(root).release, next);
  // Only the older one has its headers (apt upgraded the image, not yet the headers): that one builds.
  headers(root, rel);
  put(root, "usr/src/linux-source-6.1.tar.xz");
  t.is(debianKernel(root).release, rel);
  rmSync(join(root, "lib/modules", rel, "build"), { recursive: true });
  t.throws(() => debianKernel(root), { message: new RegExp(`linux-headers-${re(next)}\\)$`) });
});

test("dpkg versions: installed packages only, upstream part without epoch or Debian revision", (t) => {
  const root = tempDir("np-debk-");
  t.is(dpkgVersion("linux-source-6.1", root), undefined, "no dpkg database");
  put(
    root,
    "var/lib/dpkg/status",
    "Package: linux-source-6.1\nStatus: deinstall ok config-files\nVersion: 6.1.170-1\n\nPackage: linux-source-6.12\nStatus: install ok installed\nVersion: 6.12.48-1\n",
  );
  t.is(dpkgVersion("linux-source-6.1", root), undefined, "removed, only its config files left");
  t.is(dpkgVersion("linux-source-6.12", root), "6.12.48-1");
  t.is(upstreamVersion("6.1.192-3"), "6.1.192");
  t.is(upstreamVersion("1:6.1.192-3~bpo11+1"), "6.1.192");
  t.is(upstreamVersion("6.12.48"), "6.12.48");
});

test("busybox: the static one, found in /bin or /usr/bin; a dynamic one or none names busybox-static", (t) => {
  const root = tempDir("np-debk-bb-");
  t.throws(() => staticBusybox(root), {
    message: /^no \/bin\/busybox or \/usr\/bin\/busybox: install busybox-static$/,
  });
  // A minimal ELF64 header with one program header of type PT_INTERP (3), then of type PT_LOAD (1).
  const elf = (phType: number): Buffer => {
    const b = Buffer.alloc(64 + 56);
    b.writeUInt32BE(0x7f454c46, 0);
    b[4] = 2;
    b.writeBigUInt64LE(64n, 0x20);
    b.writeUInt16LE(56, 0x36);
    b.writeUInt16LE(1, 0x38);
    b.writeUInt32LE(phType, 64);
    return b;
  };
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  writeFileSync(join(root, "usr/bin/busybox"), elf(3));
  t.throws(() => staticBusybox(root), { message: /dynamically linked.*: install busybox-static$/ });
  writeFileSync(join(root, "usr/bin/busybox"), elf(1));
  t.is(staticBusybox(root), join(root, "usr/bin/busybox"));
  // This machine's, as the kernel tier copies it.
  t.notThrows(() => staticBusybox());
});
