import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { underRoot } from "../../toolkit/core/paths.js";
import { defaultStateDir } from "../../toolkit/state/lock.js";
import { readInstalledSummary } from "../../toolkit/status/installed-summary.js";
import { readNetmapState } from "../../toolkit/status/netmap-state.js";
import { interfaceMode, readStatus } from "../../toolkit/status/status-report.js";
import { FIXTURE_RELEASE, hostTree, legacyNetmapHost } from "../helpers/hosts.js";

const catalog = loadDriverCatalog();
const statusAt = (root: string) => readStatus(root, underRoot(root, defaultStateDir), catalog, {});
const statusOf = (name: string) => statusAt(hostTree(name));

test("netmap-loaded: module, refcount, users, /dev/netmap and its minor, parameters", (t) => {
  const n = readNetmapState(hostTree("netmap-loaded"));
  t.true(n.moduleSupport);
  t.true(n.loaded);
  t.is(n.refcount, 1);
  t.deepEqual(n.usedBy, ["e1000"]);
  t.true(n.devNetmap);
  t.is(n.miscMinor, 124);
  t.deepEqual(n.params, { admode: "0", ring_num: "200" });
});

test("netmap-loaded: the patched e1000 is native, the stock virtio_net emulated; installed.json listed", (t) => {
  const s = statusOf("netmap-loaded");
  t.deepEqual(
    s.interfaces.map((i) => [i.ifname, i.mode, i.management]),
    [
      ["eth0", "native", true],
      ["eth1", "emulated", false],
    ],
  );
  t.is(s.installed.state, "present");
  t.deepEqual(
    s.installed.modules.map((m) => m.module),
    ["netmap", "e1000"],
  );
  t.is(s.installed.kernelRelease, FIXTURE_RELEASE);
});

test("debian12-e1000: netmap not loaded, nothing installed", (t) => {
  const s = statusOf("debian12-e1000");
  t.false(s.netmap.loaded);
  t.false(s.netmap.devNetmap);
  t.is(s.netmap.miscMinor, null);
  t.deepEqual(
    s.interfaces.map((i) => i.mode),
    ["not-netmap"],
  );
  t.true(s.interfaces[0]?.nativeAvailable);
  t.is(s.installed.state, "absent");
});

test("interface mode rules", (t) => {
  const loaded = readNetmapState(hostTree("netmap-loaded"));
  t.is(interfaceMode(loaded, "e1000").mode, "native");
  t.is(interfaceMode(loaded, "igb").mode, "emulated");
  t.is(interfaceMode(loaded, null).mode, "emulated");
  t.is(interfaceMode(readNetmapState(hostTree("debian12-e1000")), "e1000").mode, "not-netmap");
});

test("a damaged installed.json is reported, not thrown", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "np-state-"));
  writeFileSync(join(dir, "installed.json"), "{ not json");
  const s = readInstalledSummary(dir);
  t.is(s.state, "unreadable");
  t.regex(s.problem ?? "", /not valid JSON/);
});

test("the seed's netmap_lin loaded: status sees netmap loaded, its parameters, and the patched e1000 native", (t) => {
  const root = legacyNetmapHost();
  t.teardown(() => rmSync(dirname(root), { recursive: true, force: true }));
  const s = statusAt(root);
  t.true(s.netmap.loaded);
  t.is(s.netmap.module, "netmap_lin");
  t.deepEqual(s.netmap.usedBy, ["e1000"]);
  t.is(s.netmap.miscMinor, 124);
  t.deepEqual(s.netmap.params, { admode: "0", ring_num: "200" });
  t.deepEqual(
    s.interfaces.map((i) => [i.ifname, i.mode]),
    [
      ["eth0", "native"],
      ["eth1", "emulated"],
    ],
  );
  t.is(s.installed.netmapModule, "netmap_lin");
  // Loaded by hand (nothing recorded), netmap_lin is found among netmap's names all the same.
  rmSync(join(root, "var/lib/netmap-provision/installed.json"));
  t.is(readNetmapState(root).module, "netmap_lin");
  t.true(statusAt(root).netmap.loaded);
});
