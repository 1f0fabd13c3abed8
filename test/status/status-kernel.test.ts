import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { startResume, writeResume } from "../../toolkit/kernel/resume.js";
import type { StatusReport } from "../../toolkit/status/status-report.js";
import { hostTree } from "../helpers/hosts.js";
import { cliPath } from "../helpers/paths.js";
import { tempDirs } from "../helpers/temp.js";

/** Must hold: `status` says where a kernel-building `up` is, from resume.json in the state dir. */

const tmp = tempDirs(test);
const status = (...args: string[]) =>
  spawnSync(process.execPath, [cliPath, "status", ...args], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });

function awaitingReboot(): string {
  const state = tmp("np-status-kernel-");
  const s = startResume({
    release: "6.1.192-np",
    recipe: "/etc/netmap-provision/lab.yaml",
    now: new Date("2026-11-26T08:00:00Z"),
  });
  writeResume(state, { ...s, phase: "awaiting-reboot" });
  return state;
}

test("awaiting the reboot: human line names both kernels and what to do", (t) => {
  const r = status("--root", hostTree("debian12-e1000"), "--state-dir", awaitingReboot());
  t.is(r.status, 0, r.stderr);
  t.regex(
    r.stdout,
    /^WARN {4}kernel build: kernel 6\.1\.192-np: awaiting-reboot \(since 2026-11-26T08:00:00\.000Z\); running 6\.1\.0-56-amd64, reboot into 6\.1\.192-np then run up$/m,
  );
});

test("--json: kernelBuild is the line, null without a record", (t) => {
  const r = status("--root", hostTree("debian12-e1000"), "--state-dir", awaitingReboot(), "--json");
  t.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as StatusReport;
  t.regex(
    j.kernelBuild ?? "",
    /^kernel 6\.1\.192-np: awaiting-reboot .*reboot into 6\.1\.192-np then run up$/,
  );

  const empty = status("--root", hostTree("debian12-e1000"), "--state-dir", tmp("np-status-none-"), "--json");
  t.is(empty.status, 0, empty.stderr);
  t.is((JSON.parse(empty.stdout) as StatusReport).kernelBuild, null);
  const human = status("--root", hostTree("debian12-e1000"), "--state-dir", tmp("np-status-none-"));
  t.notRegex(human.stdout, /kernel build/);
});

test("a damaged record is reported with the rest of the status, then status exits 2 naming the file", (t) => {
  const state = tmp("np-status-bad-");
  writeFileSync(join(state, "resume.json"), "{not json");
  const r = status("--root", hostTree("debian12-e1000"), "--state-dir", state);
  t.is(r.status, 2, r.stderr);
  t.regex(
    r.stdout,
    /^WARN {4}kernel build: kernel resume record unreadable: resume\.json in .* is damaged: not valid JSON/m,
  );
  t.regex(r.stderr, /resume\.json in .* is damaged/);
  t.regex(r.stderr, /hint: remove .*resume\.json to start over/);
});
