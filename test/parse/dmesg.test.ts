import test from "ava";
import {
  explainModuleLoadError,
  isHarmlessNoise,
  linesSince,
  type ModuleLoadErrorKind,
  netmapEvents,
  parseDmesg,
} from "../../toolkit/parse/dmesg.js";
import { section } from "./capture.js";

const realDmesg = () => parseDmesg(section("dmesg"));

test("real dmesg: timestamps and text", (t) => {
  const lines = realDmesg();
  t.is(lines.length, 33);
  t.deepEqual(lines[0], { ts: 3.692168, text: "e1000: loading out-of-tree module taints kernel." });
  const mknod = lines.find((l) => l.text.includes("mknod"));
  t.is(mknod?.ts, 4.636868);
  t.regex(mknod?.text ?? "", /^125\.798897 \[4633\] netmap_init\s+run mknod/);
});

test("real dmesg: /dev/netmap minor 124, loaded, e1000 native with TX 1/256 RX 1/256", (t) => {
  const ev = netmapEvents(realDmesg());
  t.deepEqual(ev.mknod, { major: 10, minor: 124, err: 0 });
  t.true(ev.loaded);
  t.is(ev.loadedAt, 4.637603);
  t.false(ev.unloaded);
  t.deepEqual(ev.native, [{ ifname: "eth0", tx: { rings: 1, slots: 256 }, rx: { rings: 1, slots: 256 } }]);
  t.deepEqual(ev.emulated, []);
});

test("real dmesg: the patched e1000 loaded before netmap lists 10 distinct unknown symbols, one error", (t) => {
  const ev = netmapEvents(realDmesg());
  t.is(ev.unknownSymbols.length, 10, "the 20 lines are two attempts at the same 10 symbols");
  t.deepEqual(ev.unknownSymbols[0], { module: "e1000", symbol: "netmap_reset" });
  t.true(ev.unknownSymbols.some((s) => s.symbol === "netmap_attach"));
  t.is(ev.errors.length, 1);
  t.is(ev.errors[0]?.kind, "unknown-symbol");
  t.is(ev.errors[0]?.module, "e1000");
  t.is(ev.errors[0]?.text, "e1000: Unknown symbol netmap_reset (err -2)");
  t.regex(ev.errors[0]?.hint ?? "", /load netmap\.ko before/);
});

test("real dmesg: taint and unenforced signature messages are noise, not errors", (t) => {
  const ev = netmapEvents(realDmesg());
  t.deepEqual(
    ev.noise.map((l) => l.text),
    [
      "e1000: loading out-of-tree module taints kernel.",
      "e1000: module verification failed: signature and/or required key missing - tainting kernel",
    ],
  );
  t.false(isHarmlessNoise("e1000: Unknown symbol netmap_attach (err -2)"));
});

test("linesSince keeps what followed the load", (t) => {
  const lines = realDmesg();
  const after = linesSince(lines, netmapEvents(lines).loadedAt ?? 0);
  t.is(after.length, 6);
  t.is(netmapEvents(after).unknownSymbols.length, 0);
  t.is(netmapEvents(after).native.length, 1);
});

test("the 2012 form: no timestamps, '# error 0', minor 59", (t) => {
  const lines = parseDmesg("netmap_init run mknod /dev/netmap c 10 59 # error 0\nnetmap: loaded module\n");
  t.deepEqual(lines[0], { ts: null, text: "netmap_init run mknod /dev/netmap c 10 59 # error 0" });
  const ev = netmapEvents(lines);
  t.deepEqual(ev.mknod, { major: 10, minor: 59, err: 0 });
  t.true(ev.loaded);
  t.is(ev.loadedAt, null);
});

test("emulated adapters, unload, and the netmap and kernel error kinds", (t) => {
  const text = [
    "[   10.000001] 010.000001 [1133] generic_netmap_attach     Emulated adapter for enp1s0 created (prev was NULL)",
    "[   10.000002] 010.000002 [ 320] generic_netmap_register   Emulated adapter for enp1s0 activated",
    "[   10.000003] 010.000003 [ 320] generic_netmap_register   Emulated adapter for enp2s0 activated",
    "[   11.000000] 011.000000 [4125] netmap_attach_ext         Error: netmap adapter hook is busy",
    "[   11.100000] 011.100000 [1087] generic_netmap_attach     Device has no hw slots (tx 0, rx 0)",
    "[   12.000000] ixgbe: disagrees about version of symbol netmap_attach",
    "[   12.100000] igb: version magic '6.1.0-55-amd64 SMP mod_unload modversions ' should be '6.1.0-56-amd64 SMP mod_unload modversions '",
    "[   12.200000] Lockdown: insmod: unsigned module loading is restricted; see man kernel_lockdown.7",
    "[   12.300000] Loading of unsigned module is rejected",
    "[   13.000000] 013.000000 [4614] netmap_fini               netmap: unloaded module.",
  ].join("\n");
  const ev = netmapEvents(parseDmesg(text));
  t.deepEqual(ev.emulated, ["enp1s0", "enp2s0"]);
  t.true(ev.unloaded);
  t.false(ev.loaded);
  t.deepEqual(
    ev.errors.map((e) => [e.kind, e.module]),
    [
      ["hook-busy", undefined],
      ["no-hw-slots", undefined],
      ["disagrees-version", "ixgbe"],
      ["invalid-format", "igb"],
      ["lockdown", undefined],
      ["key-rejected", undefined],
    ],
  );
  t.regex(ev.errors[4]?.hint ?? "", /mokutil --import/);
});

test("a driver reloaded twice reports its last ring geometry once", (t) => {
  const ev = netmapEvents(
    parseDmesg(
      [
        "[1.0] net eth0: netmap queues/slots: TX 1/256, RX 1/256",
        "[2.0] ixgbe 0000:01:00.0 eth1: netmap queues/slots: TX 8/1024, RX 8/512",
        "[3.0] net eth0: netmap queues/slots: TX 2/512, RX 2/512",
      ].join("\n"),
    ),
  );
  t.deepEqual(
    ev.native.map((n) => [n.ifname, n.tx.rings, n.tx.slots, n.rx.slots]),
    [
      ["eth1", 8, 1024, 512],
      ["eth0", 2, 512, 512],
    ],
  );
});

test("explainModuleLoadError on the real busybox insmod messages", (t) => {
  const before = explainModuleLoadError(section("insmod patched e1000 before netmap"));
  t.is(before?.kind, "unknown-symbol");
  t.is(before?.line, "insmod: can't insert '/mod/e1000.ko': unknown symbol in module, or unknown parameter");
  t.regex(before?.hint ?? "", /load netmap\.ko before/);
  const twice = explainModuleLoadError(section("insmod netmap again"));
  t.is(twice?.kind, "already-loaded");
  t.is(explainModuleLoadError("rc=0\n"), undefined);
});

test("explainModuleLoadError on kmod wordings", (t) => {
  const cases: Array<[string, ModuleLoadErrorKind, RegExp]> = [
    ["insmod: ERROR: could not insert module e1000.ko: Invalid module format", "invalid-format", /rebuild/],
    [
      "insmod: ERROR: could not insert module netmap.ko: Key was rejected by service",
      "key-rejected",
      /sign-file/,
    ],
    [
      "modprobe: ERROR: could not insert 'netmap': Required key not available",
      "key-rejected",
      /mokutil --import/,
    ],
    [
      "insmod: ERROR: could not insert module netmap.ko: Unknown symbol in module",
      "unknown-symbol",
      /netmap/,
    ],
    ["rmmod: ERROR: Module netmap is in use by: e1000", "in-use", /unload/],
    [
      "modprobe: FATAL: Module netmap not found in directory /lib/modules/6.1.0-56-amd64",
      "not-found",
      /depmod/,
    ],
    [
      "insmod: ERROR: could not insert module netmap.ko: Operation not permitted",
      "not-permitted",
      /lockdown/,
    ],
  ];
  for (const [line, kind, hint] of cases) {
    const e = explainModuleLoadError(line);
    t.is(e?.kind, kind, line);
    t.regex(e?.hint ?? "", hint, line);
  }
});
