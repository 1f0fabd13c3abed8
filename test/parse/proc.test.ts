import test from "ava";
import { parseLsmod, parseProcMisc, parseProcModules } from "../../toolkit/parse/proc.js";
import { section } from "./capture.js";

test("real /proc/modules: netmap is used by e1000, both tainted OE", (t) => {
  const mods = parseProcModules(section("lsmod"));
  t.deepEqual(mods, [
    {
      name: "e1000",
      size: 167936,
      refcount: 0,
      deps: [],
      state: "Live",
      address: "0xffffffffc0406000",
      taints: "OE",
    },
    {
      name: "netmap",
      size: 253952,
      refcount: 1,
      deps: ["e1000"],
      state: "Live",
      address: "0xffffffffc03c7000",
      taints: "OE",
    },
  ]);
});

test("/proc/modules variants: several users, no taint, unremovable, unloading", (t) => {
  const mods = parseProcModules(
    [
      "netmap 253952 2 e1000,ixgbe, Live 0x0000000000000000",
      "crc32c_generic 16384 - - Live 0xffffffffc0000000",
      "veth 36864 0 - Unloading 0xffffffffc0500000 (O)",
      "not a module line",
    ].join("\n"),
  );
  t.deepEqual(
    mods.map((m) => [m.name, m.refcount, m.deps, m.state, m.taints]),
    [
      ["netmap", 2, ["e1000", "ixgbe"], "Live", ""],
      ["crc32c_generic", null, [], "Live", ""],
      ["veth", 0, [], "Unloading", "O"],
    ],
  );
});

test("real /proc/misc line: netmap has minor 124", (t) => {
  // The "/dev/netmap" section holds `ls -l /dev/netmap` then `grep netmap /proc/misc`.
  const misc = parseProcMisc(section("/dev/netmap"));
  t.is(misc.get("netmap"), 124);
  t.is(misc.size, 1, "the ls -l line is not a /proc/misc line");
  const full = parseProcMisc(" 58 network_throughput\n124 netmap\n235 autofs\n");
  t.deepEqual(
    [...full],
    [
      ["network_throughput", 58],
      ["netmap", 124],
      ["autofs", 235],
    ],
  );
});

test("kmod lsmod table", (t) => {
  const mods = parseLsmod(
    [
      "Module                  Size  Used by",
      "e1000                 167936  0",
      "netmap                253952  1 e1000",
    ].join("\n"),
  );
  t.deepEqual(
    mods.map((m) => [m.name, m.size, m.refcount, m.deps]),
    [
      ["e1000", 167936, 0, []],
      ["netmap", 253952, 1, ["e1000"]],
    ],
  );
});
