import { renameSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { catalogLookup } from "../../toolkit/host/facts.js";
import { readKernelFacts } from "../../toolkit/host/kernel-facts.js";
import { type NicDriverLookup, parseModulesBuiltin, readNicFacts } from "../../toolkit/host/nics.js";
import { copyHostTree, hostTree } from "../helpers/hosts.js";

const lookup = catalogLookup(loadDriverCatalog());
const nicsOf = (name: string, l: NicDriverLookup = lookup) => {
  const root = hostTree(name);
  return readNicFacts(root, readKernelFacts(root), l);
};

test("debian12-e1000: eth0 on the e1000 module, native on 6.1.192; lo is skipped", (t) => {
  t.deepEqual(nicsOf("debian12-e1000"), [
    {
      ifname: "eth0",
      driver: "e1000",
      module: "e1000",
      busAddress: "0000:00:03.0",
      driverKind: "module",
      operstate: "up",
      mac: "52:54:00:12:34:56",
      mtu: 1500,
      netmapDriver: "e1000",
      native: true,
      reason: "netmap's e1000 has a native patch for 6.1.192",
    },
  ]);
});

test("builtin-nic: e1000 listed in modules.builtin, no /sys/module entry -> builtin", (t) => {
  const [eth0] = nicsOf("builtin-nic");
  t.is(eth0?.driverKind, "builtin");
  t.is(eth0?.module, "e1000");
});

test("netmap-loaded: a virtio NIC sits on virtio1 and its module comes from the driver's module link", (t) => {
  const eth1 = nicsOf("netmap-loaded").find((n) => n.ifname === "eth1");
  t.is(eth1?.driver, "virtio_net");
  t.is(eth1?.busAddress, "virtio1");
  t.is(eth1?.driverKind, "module");
  t.is(eth1?.netmapDriver, "virtio_net.c");
});

test("mgmt-on-swapped-driver: two NICs on one driver are both listed", (t) => {
  t.deepEqual(
    nicsOf("mgmt-on-swapped-driver").map((n) => `${n.ifname}:${n.module}:${n.busAddress}`),
    ["eth0:e1000:0000:00:03.0", "eth1:e1000:0000:00:04.0"],
  );
});

test("no native patch and no netmap driver give emulated-only reasons", (t) => {
  const none: NicDriverLookup = { tokenForModule: () => null, nativeOn: () => false };
  const [a] = nicsOf("debian12-e1000", none);
  t.false(a?.native);
  t.regex(a?.reason ?? "", /no patched driver for e1000: emulated/);
  const old: NicDriverLookup = { tokenForModule: () => "e1000", nativeOn: () => false };
  const [b] = nicsOf("debian12-e1000", old);
  t.regex(b?.reason ?? "", /no native patch for 6\.1\.192/);
});

test("modules.builtin names are normalised to module names", (t) => {
  t.deepEqual(
    [...parseModulesBuiltin("kernel/drivers/net/foo-bar.ko\n\nkernel/x/baz.ko\n")],
    ["foo_bar", "baz"],
  );
});

test("the real host: physical NICs only, each with a driver kind", (t) => {
  const nics = readNicFacts("/", readKernelFacts("/"), lookup);
  for (const n of nics) {
    t.not(n.ifname, "lo");
    t.true(["module", "builtin", "unknown"].includes(n.driverKind));
  }
  t.pass();
});

test("an interface name with terminal control characters is reported escaped", (t) => {
  const root = copyHostTree("debian12-e1000");
  t.teardown(() => rmSync(dirname(root), { recursive: true, force: true }));
  const esc = "eth\u001b]0;pwned\u0007";
  const dev = "sys/devices/pci0000:00/0000:00:03.0/net";
  renameSync(join(root, dev, "eth0"), join(root, dev, esc));
  unlinkSync(join(root, "sys/class/net/eth0"));
  symlinkSync(`../../devices/pci0000:00/0000:00:03.0/net/${esc}`, join(root, "sys/class/net", esc));
  const [nic] = readNicFacts(root, readKernelFacts(root), lookup);
  t.is(nic?.ifname, "eth\\x1b]0;pwned\\x07");
  t.like(nic, { driver: "e1000", driverKind: "module", native: true });
});
