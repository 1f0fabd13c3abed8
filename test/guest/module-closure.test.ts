import test from "ava";
import { BlockedError } from "../../toolkit/core/errors.js";
import { findGuestKernel } from "../../toolkit/guest/guest-kernel.js";
import {
  moduleClosureFor,
  moduleName,
  parseModulesDep,
  resolveModuleClosure,
} from "../../toolkit/guest/module-closure.js";
import { debianKernelImage } from "../helpers/debian-kernel.js";

const DEP = `kernel/fs/netfs/netfs.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/overlayfs/overlay.ko.zst:
`;

test("names drop the directory and any compression suffix, and treat - as _", (t) => {
  t.is(moduleName("kernel/net/9p/9pnet_virtio.ko.xz"), "9pnet_virtio");
  t.is(moduleName("kernel/a/snd-hda.ko.zst"), "snd_hda");
  t.is(moduleName("virtio-pci"), "virtio_pci");
});

test("closure lists dependencies before their users, each once", (t) => {
  const order = resolveModuleClosure(["9pnet_virtio", "9p", "overlay"], parseModulesDep(DEP)).map(
    (m) => m.name,
  );
  t.deepEqual(new Set(order).size, order.length);
  for (const [before, after] of [
    ["9pnet", "9pnet_virtio"],
    ["virtio_ring", "virtio"],
    ["virtio", "9pnet_virtio"],
    ["netfs", "fscache"],
    ["fscache", "9p"],
  ] as const) {
    t.true(order.indexOf(before) < order.indexOf(after), `${before} before ${after} in ${order.join(" ")}`);
  }
  t.deepEqual(order.slice(-1), ["overlay"]);
  t.is(
    resolveModuleClosure(["overlay"], parseModulesDep(DEP))[0]?.relPath,
    "kernel/fs/overlayfs/overlay.ko.zst",
  );
});

test("built-in modules are skipped, unknown ones are a blocker naming who needs them", (t) => {
  const order = resolveModuleClosure(["9p"], parseModulesDep(DEP), new Set(["fscache", "netfs"])).map(
    (m) => m.name,
  );
  t.deepEqual(order, ["9pnet", "9p"]);
  const broken = parseModulesDep("kernel/a.ko: kernel/missing.ko\n");
  const err = t.throws(() => resolveModuleClosure(["a"], broken), { instanceOf: BlockedError });
  t.regex(err?.message ?? "", /"missing" \(needed by a\)/);
});

// Needs an installed guest kernel, like the rest of the guest tier.
test("guest: the installed guest kernel's boot-module closure resolves (real modules.dep)", (t) => {
  const { kernelRelease } = findGuestKernel("/", debianKernelImage().release);
  const order = moduleClosureFor("/", kernelRelease, ["virtio_pci", "9pnet_virtio", "9p", "overlay"]);
  const names = order.map((m) => m.name);
  t.true(names.indexOf("virtio_pci_modern_dev") < names.indexOf("virtio_pci"));
  t.true(names.includes("netfs"));
  t.throws(() => moduleClosureFor("/nonexistent-root", kernelRelease, ["9p"]), { instanceOf: BlockedError });
});
