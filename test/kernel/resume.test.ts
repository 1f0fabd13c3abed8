import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { UserError } from "../../toolkit/core/errors.js";
import {
  advance,
  clearResume,
  decide,
  describeResume,
  kernelBuildStatus,
  RESUME_PHASES,
  readResume,
  resumePath,
  startResume,
  writeResume,
} from "../../toolkit/kernel/resume.js";
import { reEscape } from "../helpers/debian-kernel.js";
import { FIXTURE_RELEASE } from "../helpers/hosts.js";

const t0 = new Date("2025-01-01T00:00:00Z");
const start = () => startResume({ release: "6.1.192-np", recipe: "/r/lab.yaml", now: t0 });

test("phases advance one step at a time to done", (t) => {
  let s = start();
  t.is(s.phase, "kernel-built");
  for (const p of RESUME_PHASES.slice(1)) s = advance(s, p, t0);
  t.is(s.phase, "done");
  t.throws(() => advance(s, "done"), { instanceOf: UserError, message: /cannot go from "done"/ });
});

test("skipping the reboot is refused, naming the next phase", (t) => {
  const s = advance(start(), "kernel-installed");
  const e = t.throws(() => advance(s, "rebooted"), { instanceOf: UserError });
  t.regex(e?.hint ?? "", /"awaiting-reboot"/);
});

test("decide: before the reboot into the new kernel, up waits and says which kernel", (t) => {
  const s = advance(advance(start(), "kernel-installed"), "awaiting-reboot");
  const d = decide(s, FIXTURE_RELEASE);
  t.is(d.action, "wait");
  if (d.action === "wait")
    t.regex(d.message, new RegExp(`still running ${reEscape(FIXTURE_RELEASE)}, reboot into 6\\.1\\.192-np`));
  t.regex(describeResume(s, FIXTURE_RELEASE), /awaiting-reboot.*reboot into 6\.1\.192-np/);
});

test("decide: running the awaited release moves to rebooted and builds netmap", (t) => {
  const s = advance(advance(start(), "kernel-installed"), "awaiting-reboot");
  const d = decide(s, "6.1.192-np");
  t.is(d.action, "build-netmap");
  if (d.action === "build-netmap") t.is(d.state.phase, "rebooted");
});

test("decide covers every phase", (t) => {
  t.is(decide(undefined, "x").action, "start");
  t.is(decide(start(), "x").action, "install");
  const installed = advance(start(), "kernel-installed");
  t.is(decide(installed, "x").action, "reboot");
  const rebooted = advance(advance(installed, "awaiting-reboot"), "rebooted");
  t.is(decide(rebooted, "x").action, "build-netmap");
  const built = advance(rebooted, "netmap-built");
  t.is(decide(built, "x").action, "finish");
  t.is(decide(advance(built, "done"), "x").action, "done");
});

test("resume.json round-trips; a corrupt one is a UserError naming the file", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "np-resume-"));
  t.is(readResume(dir), undefined);
  const s = start();
  writeResume(dir, s);
  t.deepEqual(readResume(dir), s);
  writeFileSync(resumePath(dir), JSON.stringify({ ...s, phase: "flying" }));
  t.throws(() => readResume(dir), {
    instanceOf: UserError,
    message: /resume\.json in .* is damaged: not a kernel resume record/,
  });
  writeFileSync(resumePath(dir), "{");
  t.throws(() => readResume(dir), { instanceOf: UserError, message: /not valid JSON/ });
  clearResume(dir);
  t.is(readResume(dir), undefined);
});

test("kernelBuildStatus: nothing, a phase, or a corrupt record, never a throw", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "np-resume-st-"));
  t.is(kernelBuildStatus(dir, FIXTURE_RELEASE), undefined);
  writeResume(dir, advance(advance(start(), "kernel-installed"), "awaiting-reboot"));
  t.regex(
    kernelBuildStatus(dir, FIXTURE_RELEASE) ?? "",
    /^kernel 6\.1\.192-np: awaiting-reboot .*reboot into 6\.1\.192-np/,
  );
  writeFileSync(resumePath(dir), "{");
  t.regex(kernelBuildStatus(dir, "x") ?? "", /unreadable/);
});
