import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import test from "ava";
import { BlockedError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import { PROBE_MARKER } from "../../toolkit/guest/guest-scripts.js";
import { buildGuestInitramfs, buildProbeInitramfs } from "../../toolkit/guest/initramfs.js";
import { tempDirs } from "../helpers/temp.js";

const tempDir = tempDirs(test);

const KVER = "9.9.9-fixture";
const exec = createExec();

/** A host tree with a fake busybox and modules in all four formats, compressed by the real tools. */
async function fixtureRoot(): Promise<string> {
  const root = tempDir("np-initramfs-");
  const mods = join(root, "lib/modules", KVER, "kernel");
  mkdirSync(join(root, "bin"), { recursive: true });
  mkdirSync(mods, { recursive: true });
  writeFileSync(join(root, "bin/busybox"), "fake busybox\n");
  const body = (name: string) => Buffer.from(`\x7fELF module ${name}\n`);
  writeFileSync(join(mods, "virtio_ring.ko"), body("virtio_ring"));
  writeFileSync(join(mods, "virtio.ko.gz"), gzipSync(body("virtio")));
  writeFileSync(join(mods, "virtio_pci.ko"), body("virtio_pci"));
  writeFileSync(join(mods, "9pnet.ko"), body("9pnet"));
  writeFileSync(join(mods, "9pnet_virtio.ko"), body("9pnet_virtio"));
  writeFileSync(join(mods, "9p.ko"), body("9p"));
  writeFileSync(join(mods, "overlay.ko"), body("overlay"));
  await exec.run(["xz", "-z", join(mods, "9pnet.ko")]);
  await exec.run(["zstd", "-q", "--rm", join(mods, "overlay.ko")]);
  writeFileSync(
    join(root, "lib/modules", KVER, "modules.dep"),
    [
      "kernel/virtio_ring.ko:",
      "kernel/virtio.ko.gz: kernel/virtio_ring.ko",
      "kernel/virtio_pci.ko: kernel/virtio.ko.gz kernel/virtio_ring.ko",
      "kernel/9pnet.ko.xz:",
      "kernel/9pnet_virtio.ko: kernel/9pnet.ko.xz kernel/virtio.ko.gz kernel/virtio_ring.ko",
      "kernel/9p.ko: kernel/9pnet.ko.xz",
      "kernel/overlay.ko.zst:",
      "",
    ].join("\n"),
  );
  return root;
}

async function member(image: Buffer, path: string): Promise<string> {
  const file = join(tempDir("np-initramfs-out-"), "i.cpio");
  writeFileSync(file, image);
  return (await exec.run(["cpio", "-i", "--quiet", "--to-stdout", "-F", file, path])).stdout;
}

test("the guest initramfs carries busybox, /init and the module closure, decompressed", async (t) => {
  const root = await fixtureRoot();
  const { image, modules } = await buildGuestInitramfs(exec, { root, kernelRelease: KVER });
  t.deepEqual(
    modules.map((m) => m.name),
    ["virtio_ring", "virtio", "virtio_pci", "9pnet", "9pnet_virtio", "9p", "overlay"],
  );
  t.is(await member(image, "etc/guest-modules"), modules.map((m) => m.name).join("\n"));
  // gz, xz and zst modules arrive as plain .ko files the guest's insmod can load.
  t.is(await member(image, "lib/modules/virtio.ko"), "\x7fELF module virtio");
  t.is(await member(image, "lib/modules/9pnet.ko"), "\x7fELF module 9pnet");
  t.is(await member(image, "lib/modules/overlay.ko"), "\x7fELF module overlay");
  t.is(await member(image, "bin/busybox"), "fake busybox");
  const init = await member(image, "init");
  t.regex(init, /^#!\/bin\/busybox sh/);
  t.regex(init, /mount -t 9p -o trans=virtio,version=9p2000\.L,ro,.* hostroot \/lower/);
  t.regex(init, /switch_root \/newroot/);
});

test("extra modules join the closure; a missing one is a blocker", async (t) => {
  const root = await fixtureRoot();
  await t.throwsAsync(buildGuestInitramfs(exec, { root, kernelRelease: KVER, extraModules: ["e1000"] }), {
    instanceOf: BlockedError,
    message: /"e1000"/,
  });
  await t.throwsAsync(buildGuestInitramfs(exec, { root, kernelRelease: KVER, busybox: "/nope" }), {
    instanceOf: BlockedError,
    message: /busybox/,
  });
});

test("the probe initramfs has an /init that prints the marker and powers off", async (t) => {
  const root = await fixtureRoot();
  const init = await member(buildProbeInitramfs({ root }), "init");
  t.true(init.includes(PROBE_MARKER));
  t.regex(init, /poweroff -f/);
});
