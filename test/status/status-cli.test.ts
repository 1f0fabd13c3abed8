import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { StatusReport } from "../../toolkit/status/status-report.js";
import { hostTree } from "../helpers/hosts.js";
import { cliPath } from "../helpers/paths.js";

const status = (...args: string[]) =>
  spawnSync(process.execPath, [cliPath, "status", ...args], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });

test("netmap-loaded: human output", (t) => {
  const r = status("--root", hostTree("netmap-loaded"));
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /netmap loaded: refcount 1, used by e1000/);
  t.regex(r.stdout, /\/dev\/netmap present \(misc minor 124\)/);
  t.regex(r.stdout, /admode=0 \(best\)/);
  t.regex(r.stdout, /^OK {6}eth0 +e1000 +native/m);
  t.regex(r.stdout, /^WARN {4}eth1 +virtio_net +emulated/m);
  t.regex(r.stdout, /updates\/netmap\/e1000\.ko/);
});

test("--json, and --state-dir overrides the tree's state dir", (t) => {
  const empty = mkdtempSync(join(tmpdir(), "np-state-"));
  const r = status("--root", hostTree("netmap-loaded"), "--state-dir", empty, "--json");
  t.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as StatusReport;
  t.true(j.netmap.loaded);
  t.is(j.installed.state, "absent");
  t.is(j.installed.stateDir, empty);
});

test("debian12-e1000: says nothing was installed", (t) => {
  const r = status("--root", hostTree("debian12-e1000"));
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /netmap is not loaded/);
  t.regex(r.stdout, /nothing installed by netmap-provision/);
});

test("the real host: valid JSON, exit 0", (t) => {
  const r = status("--json");
  t.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as StatusReport;
  t.is(j.root, "/");
  t.true(Array.isArray(j.interfaces));
  t.is(typeof j.netmap.loaded, "boolean");
});
