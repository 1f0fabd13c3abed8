import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import {
  type InstalledRecord,
  readInstalled,
  removeInstalled,
  writeInstalled,
} from "../../toolkit/state/installed.js";
import { FIXTURE_RELEASE } from "../helpers/hosts.js";

test("installed.json round-trips, is replaced atomically and leaves no temp file", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "np-installed-"));
  t.is(readInstalled(dir), undefined);
  const rec: InstalledRecord = {
    kernelRelease: FIXTURE_RELEASE,
    strategy: "updates",
    modules: [
      {
        module: "netmap",
        path: `/lib/modules/${FIXTURE_RELEASE}/updates/netmap/netmap.ko`,
        sha256: "ab".repeat(32),
      },
    ],
    files: [],
    createdDirs: [`/lib/modules/${FIXTURE_RELEASE}/updates`],
    installedAt: "2026-01-01T00:00:00.000Z",
    recipe: "debian12-e1000",
  };
  writeInstalled(dir, rec);
  writeInstalled(dir, { ...rec, strategy: "replace" });
  t.deepEqual(readInstalled(dir), { ...rec, strategy: "replace" });
  t.deepEqual(readdirSync(dir), ["installed.json"]);
  removeInstalled(dir);
  t.is(readInstalled(dir), undefined);
});
