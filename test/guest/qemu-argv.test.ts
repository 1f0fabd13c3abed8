import test from "ava";
import { qemuArgv } from "../../toolkit/guest/qemu.js";

const base = {
  qemu: "qemu-system-x86_64",
  kernel: "/k",
  initrd: "/i",
  memoryMb: 1024,
  cpus: 2,
  serialLog: "/w/serial.log",
  pidFile: "/w/qemu.pid",
  xferDir: "/w/xfer",
  rootDir: "/",
};

test("TCG guest: no default devices, both 9p shares, serial to a file, one netdev per NIC", (t) => {
  const argv = qemuArgv({
    ...base,
    accel: "tcg",
    nics: [
      { model: "e1000", id: "n0" },
      { model: "virtio-net-pci", id: "n1", mac: "52:54:00:12:34:57" },
    ],
    extraAppend: "loglevel=7",
  });
  const s = argv.join(" ");
  t.true(
    s.includes("-accel tcg -m 1024 -smp 2 -nodefaults -display none -no-reboot -serial file:/w/serial.log"),
  );
  t.false(s.includes("-cpu"));
  t.is(argv[argv.indexOf("-append") + 1], "console=ttyS0 panic=-1 quiet loglevel=7");
  t.true(argv.includes("local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"));
  t.true(argv.includes("local,path=/w/xfer,mount_tag=xfer,security_model=none,multidevs=remap"));
  t.deepEqual(argv.slice(-8), [
    "-netdev",
    "user,id=n0",
    "-device",
    "e1000,netdev=n0",
    "-netdev",
    "user,id=n1",
    "-device",
    "virtio-net-pci,netdev=n1,mac=52:54:00:12:34:57",
  ]);
});

test("KVM guest uses the host CPU model, as the probe did", (t) => {
  const argv = qemuArgv({ ...base, accel: "kvm", nics: [] });
  t.deepEqual(argv.slice(1, 5), ["-accel", "kvm", "-cpu", "host"]);
  t.false(argv.includes("-netdev"));
});
