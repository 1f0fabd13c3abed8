import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { type InstalledRecord, writeInstalled } from "../../toolkit/state/installed.js";
import { openTransaction } from "../../toolkit/state/journal.js";
import { downTargets } from "../../toolkit/up/down.js";
import { FIXTURE_RELEASE, hostTree } from "../helpers/hosts.js";

/*
 * What `down` takes back, read from the state dir before it changes anything. The seed recipe's
 * netmap is netmap_lin.ko (netmap v11.0): down must unload it after the drivers and must never
 * treat it as a stock driver to reload (modprobe) and check (modinfo -n).
 */

const kver = FIXTURE_RELEASE;
const e1000 = `/lib/modules/${kver}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko`;
// debian12-e1000: eth0 is bound to e1000 (sysfs links), nothing loaded by netmap-provision.
const root = hostTree("debian12-e1000");

const stateDir = (t: { teardown(fn: () => void): void }): string => {
  const d = mkdtempSync(join(tmpdir(), "np-down-targets-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

/** installed.json as the replace strategy writes it for the seed recipe. */
function seedRecord(state: string, netmapModule?: string): InstalledRecord {
  const sha = "a".repeat(64);
  return {
    kernelRelease: kver,
    strategy: "replace",
    ...(netmapModule ? { netmapModule } : {}),
    modules: [
      {
        module: "netmap_lin",
        path: `/lib/modules/${kver}/updates/netmap/netmap_lin.ko`,
        sha256: "b".repeat(64),
      },
      {
        module: "e1000",
        path: e1000,
        sha256: "c".repeat(64),
        replacedOriginal: {
          path: e1000,
          backupPath: join(state, "backups", kver, `${sha}.ko`),
          sha256: sha,
          mode: 0o644,
          uid: 0,
          gid: 0,
          mtimeMs: 0,
          size: 1,
          movedAside: `${e1000}-bak`,
        },
        shadowed: e1000,
      },
    ],
    files: [],
    createdDirs: [`/lib/modules/${kver}/updates`, `/lib/modules/${kver}/updates/netmap`],
    installedAt: new Date(0).toISOString(),
  };
}

test("the seed's record (netmap_lin, replace): netmap_lin is netmap, e1000 is the one driver to bring back", (t) => {
  const state = stateDir(t);
  writeInstalled(state, seedRecord(state, "netmap_lin"));
  const d = downTargets(root, state);
  t.is(d.netmapModule, "netmap_lin");
  t.deepEqual([...d.drivers], ["e1000"]);
  t.deepEqual([...d.stockPaths], [["e1000", join(root, e1000)]]);
  t.deepEqual([...d.ifnames], ["eth0"]);
});

test("an interrupted up of the seed (no installed.json yet): its journal names netmap_lin", (t) => {
  const state = stateDir(t);
  const tx = openTransaction(state, "up", { root, kver, netmapModule: "netmap_lin" });
  // Drivers then netmap, as the swap unloads them (netmap_lin was loaded before that up).
  tx.begin("unload", { module: "e1000", root, kver, interfaces: [{ ifname: "eth0" }] });
  tx.begin("unload", { module: "netmap_lin", root, kver, interfaces: [] });
  const d = downTargets(root, state);
  t.is(d.netmapModule, "netmap_lin");
  t.deepEqual([...d.drivers], ["e1000"]);
  t.deepEqual([...d.ifnames], ["eth0"]);
});

test("a record from before netmapModule was kept means netmap.ko; a forged journal name is not used", (t) => {
  const state = stateDir(t);
  const rec = seedRecord(state);
  rec.modules[0] = {
    module: "netmap",
    path: `/lib/modules/${kver}/updates/netmap/netmap.ko`,
    sha256: "b".repeat(64),
  };
  writeInstalled(state, rec);
  t.is(downTargets(root, state).netmapModule, "netmap");
  t.deepEqual([...downTargets(root, state).drivers], ["e1000"]);

  const other = stateDir(t);
  openTransaction(other, "up", { root, kver, netmapModule: "../../etc/x" });
  t.is(downTargets(root, other).netmapModule, "netmap");
});
