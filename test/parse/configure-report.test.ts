import test from "ava";
import { parseConfigureLog } from "../../toolkit/parse/configure-report.js";
import { capture } from "./capture.js";

const REQUESTED = ["e1000", "e1000e", "igb", "ixgbe", "r8169.c", "virtio_net.c", "veth.c"];
const real = () => parseConfigureLog(capture("netmap-configure-debian12-6.1.192-offline.log"), REQUESTED);

// Synthetic boxes in configure's own frame, for the cases the offline capture lacks.
const box = (kind: string, ...lines: string[]): string =>
  [
    `********************************** ${kind} **********************************`,
    ...lines.map((l) => `*** ${l}`),
    "*****************************************************************************",
  ].join("\n");

const reportTail = (native: string): string =>
  [
    "kernel directory            /lib/modules/6.1.0-56-amd64/build",
    "kernel sources              /usr/src/linux-source-6.1",
    "linux version               601c0  [6.1.192]",
    "module file                 netmap.ko",
    "",
    "subsystems                  null generic vale ",
    "apps                        pkt-gen ",
    `native drivers              ${native}`,
    "",
  ].join("\n");

test("real offline log: the report fields", (t) => {
  const r = real();
  t.is(r.kernelDir, "/lib/modules/6.1.0-56-amd64/build");
  t.is(r.kernelDirResolved, "/usr/src/linux-headers-6.1.0-56-amd64");
  t.is(r.kernelSources, "/usr/src/linux-source-6.1");
  t.is(r.kernelSourcesResolved, undefined);
  t.is(r.versionCode, "601c0");
  t.is(r.kernelVersion, "6.1.192");
  t.is(r.moduleFile, "netmap.ko");
  t.deepEqual(r.subsystems, ["null", "ptnetmap", "generic", "monitor", "pipe", "vale"]);
  t.deepEqual(r.apps, ["dedup", "vale-ctl", "nmreplay", "tlem", "lb", "bridge", "pkt-gen"]);
  t.deepEqual(r.native, ["e1000"]);
  t.is(r.fatal, undefined);
});

test("real offline log: every dropped driver with its reason, in configure's order", (t) => {
  const r = real();
  t.deepEqual(
    r.dropped.map((d) => [d.driver, d.reason]),
    [
      ["ixgbe", "download-failed"],
      ["igb", "download-failed"],
      ["e1000e", "download-failed"],
      ["virtio_net.c", "download-failed"],
      ["r8169.c", "no-sources"],
      ["veth.c", "patch-failed"],
    ],
  );
});

test("real offline log: download failures carry the wget URL, the archive path, wget's error and a hint", (t) => {
  const by = new Map(real().dropped.map((d) => [d.driver, d]));
  t.is(by.get("ixgbe")?.url, "https://github.com/intel/ethernet-linux-ixgbe/archive/refs/tags/v5.15.2.zip");
  t.is(by.get("igb")?.url, "https://github.com/intel/ethernet-linux-igb/archive/refs/tags/v5.10.2.zip");
  t.is(
    by.get("e1000e")?.url,
    "https://sourceforge.net/projects/e1000/files/e1000e%20historic%20archive/3.8.7/e1000e-3.8.7.tar.gz",
  );
  t.is(
    by.get("virtio_net.c")?.url,
    "https://raw.githubusercontent.com/torvalds/linux/v4.9/drivers/net/virtio_net.c",
  );
  t.is(by.get("ixgbe")?.archive, "/src/netmap/LINUX/ext-drivers/ixgbe/v5.15.2.zip");
  t.is(by.get("e1000e")?.archive, "/src/netmap/LINUX/ext-drivers/e1000e-3.8.7.tar.gz");
  const ixgbe = by.get("ixgbe");
  t.regex(ixgbe?.detail ?? "", /wget: unable to resolve host address ‘github.com’/);
  t.regex(ixgbe?.detail ?? "", /Unable to fetch the sources for driver ixgbe\. Disabling driver\./);
  t.notRegex(ixgbe?.detail ?? "", /igb/, "one driver's detail does not leak into another's");
  t.regex(ixgbe?.hint ?? "", /ext-drivers\/ixgbe\/v5\.15\.2\.zip/);
  t.regex(ixgbe?.hint ?? "", /sha256/);
});

test("real offline log: no-sources and patch-failed details and hints", (t) => {
  const by = new Map(real().dropped.map((d) => [d.driver, d]));
  t.is(by.get("r8169.c")?.detail, "'r8169.c': sources not found.  Disabling driver.");
  t.regex(by.get("r8169.c")?.hint ?? "", /emulated/);
  t.is(by.get("r8169.c")?.url, undefined);
  t.regex(by.get("veth.c")?.detail ?? "", /There were problems patching the driver veth\.c\./);
  t.regex(by.get("veth.c")?.hint ?? "", /netmap commit/);
});

test("real offline log: drivers.mak lists veth.c although its patch test later disabled it", (t) => {
  const r = real();
  t.deepEqual(r.driversMak, [
    {
      driver: "e1000",
      conf: "CONFIG_E1000",
      src: "cp -Rp /usr/src/linux-source-6.1/drivers/net/ethernet/intel/e1000 e1000",
      patch: "patches/vanilla--e1000--31200--99999",
    },
    {
      driver: "veth.c",
      conf: "CONFIG_VETH",
      src: "cp -Rp /usr/src/linux-source-6.1/drivers/net/veth.c veth.c",
      patch: "patches/vanilla--veth.c--41400--60700",
    },
  ]);
  t.deepEqual(r.warnings, [], "every WARNING box of this log is a driver drop");
});

test("a requested driver that is neither native nor explained is 'unknown'", (t) => {
  const r = parseConfigureLog(reportTail("e1000 "), ["e1000", "ice"]);
  t.deepEqual(
    r.dropped.map((d) => [d.driver, d.reason, d.detail]),
    [["ice", "unknown", ""]],
  );
  t.regex(r.dropped[0]?.hint ?? "", /--show-drivers/);
});

test("requested names match configure's with or without .c", (t) => {
  const r = parseConfigureLog(reportTail("e1000 virtio_net.c "), ["virtio_net", "e1000"]);
  t.deepEqual(r.dropped, []);
});

test("CONFIG not set, no applicable patch, unrecognized option", (t) => {
  const text = [
    box("WARNING", "Unrecognized option: --driver=e1000"),
    box("WARNING", "CONFIG_IGC not set in /lib/modules/6.1.0-56-amd64/build/.config, skipping igc"),
    box("WARNING", "'stmmac': no applicable patch found and no override provided.", "Disabling driver."),
    reportTail("e1000 "),
  ].join("\n");
  const r = parseConfigureLog(text, ["e1000", "igc", "stmmac"]);
  t.deepEqual(
    r.dropped.map((d) => [d.driver, d.reason]),
    [
      ["igc", "config-not-set"],
      ["stmmac", "no-patch"],
    ],
  );
  t.regex(r.dropped[0]?.hint ?? "", /CONFIG_IGC=m/);
  t.regex(r.dropped[1]?.hint ?? "", /601c0/);
  t.is(r.warnings.length, 1);
  t.is(r.warnings[0]?.text, "Unrecognized option: --driver=e1000");
  t.regex(r.warnings[0]?.hint ?? "", /--driver=e1000/);
});

test("a built-in (=y) driver stays native but is reported as config-builtin", (t) => {
  const text = [
    box(
      "WARNING",
      "The e1000 driver is not compiled as a module:",
      "you will not be able to load the netmap enabled driver on this kernel.",
      "Please consider setting",
      "",
      "    CONFIG_E1000=m",
      "",
      "in your .config.",
    ),
    reportTail("e1000 "),
  ].join("\n");
  const r = parseConfigureLog(text, ["e1000"]);
  t.deepEqual(r.native, ["e1000"]);
  t.deepEqual(r.builtin, ["e1000"]);
  t.deepEqual(
    r.dropped.map((d) => [d.driver, d.reason]),
    [["e1000", "config-builtin"]],
  );
  t.regex(r.dropped[0]?.hint ?? "", /CONFIG_E1000=m/);
});

test("headers only: the missing-sources warning makes the no-sources hint ask for linux-source", (t) => {
  const text = [
    box("WARNING", "Cannot find full kernel sources.", "", "Please note that most distributions ..."),
    box("WARNING", "'e1000': sources not found.  Disabling driver."),
    reportTail(""),
  ].join("\n");
  const r = parseConfigureLog(text, ["e1000"]);
  t.deepEqual(r.native, []);
  t.is(r.dropped[0]?.reason, "no-sources");
  t.regex(r.dropped[0]?.hint ?? "", /linux-source/);
  t.is(r.warnings[0]?.text, "Cannot find full kernel sources.");
});

for (const [message, hint] of [
  ["Cannot find kernel directory.", /linux-headers/],
  ["kernel not configured.", /modules_prepare/],
  ["It looks like we are not able to build kernel modules for the current", /config\.log/],
] as const) {
  test(`hard error: ${message}`, (t) => {
    const text = box(
      " ERROR ",
      message,
      "",
      "more explanation",
      "",
      "",
      "    Current configuration values:",
      "",
      "kernel directory            /nonexistent",
      "kernel sources              /nonexistent",
      "linux version               -",
      "module file                 netmap.ko",
    );
    const r = parseConfigureLog(text, ["e1000"]);
    t.truthy(r.fatal);
    t.true(r.fatal?.message.startsWith(message));
    t.regex(r.fatal?.hint ?? "", hint);
    t.is(r.kernelDir, "/nonexistent", "the report embedded in the ERROR box is read");
    t.is(r.versionCode, undefined);
    t.deepEqual(r.dropped, [], "no 'unknown' drops when configure never got to the drivers");
  });
}
