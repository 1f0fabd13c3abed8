import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { UserError } from "../core/errors.js";
import { isKernelRelease } from "../host/release-name.js";
import { writeFileAtomic } from "../state/atomic-file.js";
import { readStateJson } from "../state/state-file.js";

/**
 * Where a kernel-building `up` is between runs: it builds and installs a kernel, waits for the
 * reboot into it, then builds netmap against it. The record lives in the state dir as
 * resume.json so the `up` after the reboot (or the one-shot unit) knows what to continue.
 * Transitions are pure functions; only read/write touch the disk.
 */

export const RESUME_PHASES = [
  "kernel-built",
  "kernel-installed",
  "awaiting-reboot",
  "rebooted",
  "netmap-built",
  "done",
] as const;
export type ResumePhase = (typeof RESUME_PHASES)[number];

const resumeSchema = z.strictObject({
  phase: z.enum(RESUME_PHASES),
  /** The release of the kernel built (what `uname -r` says once it runs). */
  release: z.string().refine(isKernelRelease, "expected a kernel release such as 6.1.0-56-amd64"),
  /** The recipe file (absolute), so the resumed run uses the same one. */
  recipe: z.string().min(1),
  /** ISO time of the last transition. */
  at: z.string().min(1),
  /** The built kernel tree (O= dir), for the netmap build after the reboot. */
  buildDir: z.string().optional(),
});
export type ResumeState = z.output<typeof resumeSchema>;

export const RESUME_FILE = "resume.json";
export const resumePath = (stateDir: string): string => join(stateDir, RESUME_FILE);

/** Which phase may follow which: forward one step at a time, nothing skips the reboot. */
const NEXT: Record<ResumePhase, ResumePhase | null> = {
  "kernel-built": "kernel-installed",
  "kernel-installed": "awaiting-reboot",
  "awaiting-reboot": "rebooted",
  rebooted: "netmap-built",
  "netmap-built": "done",
  done: null,
};

/** The first record: a kernel was built. */
export function startResume(o: {
  release: string;
  recipe: string;
  buildDir?: string;
  now?: Date;
}): ResumeState {
  return {
    phase: "kernel-built",
    release: o.release,
    recipe: o.recipe,
    at: (o.now ?? new Date()).toISOString(),
    ...(o.buildDir ? { buildDir: o.buildDir } : {}),
  };
}

/** Move to `to`; only the next phase is allowed (UserError names the expected one otherwise). */
export function advance(s: ResumeState, to: ResumePhase, now: Date = new Date()): ResumeState {
  const expected = NEXT[s.phase];
  if (to !== expected) {
    throw new UserError(
      `cannot go from "${s.phase}" to "${to}" in the kernel resume record`,
      expected === null
        ? "the kernel run is done; remove resume.json to start another"
        : `the next phase is "${expected}"`,
    );
  }
  return { ...s, phase: to, at: now.toISOString() };
}

/** What `up` should do now, given the record and the running release. */
export type ResumeDecision =
  | { action: "start" }
  | { action: "install"; state: ResumeState }
  | { action: "reboot"; state: ResumeState }
  | { action: "wait"; state: ResumeState; message: string }
  | { action: "build-netmap"; state: ResumeState }
  | { action: "finish"; state: ResumeState }
  | { action: "done"; state: ResumeState };

/**
 * Decide the next action. After the reboot the running release must be the awaited one: a kernel
 * that failed to boot (grub-reboot fell back) leaves the old one running, and building netmap
 * against it would be wrong, so that says so and stops.
 */
export function decide(s: ResumeState | undefined, runningRelease: string): ResumeDecision {
  if (!s) return { action: "start" };
  switch (s.phase) {
    case "kernel-built":
      return { action: "install", state: s };
    case "kernel-installed":
      return { action: "reboot", state: s };
    case "awaiting-reboot":
      if (runningRelease !== s.release) {
        return {
          action: "wait",
          state: s,
          message: `still running ${runningRelease}, reboot into ${s.release} (installed, set for the next boot) and run up again`,
        };
      }
      return { action: "build-netmap", state: advance(s, "rebooted") };
    case "rebooted":
      return { action: "build-netmap", state: s };
    case "netmap-built":
      return { action: "finish", state: s };
    case "done":
      return { action: "done", state: s };
  }
}

/** One line for `status`: where a kernel-building run is. */
export function describeResume(s: ResumeState | undefined, runningRelease?: string): string {
  if (!s) return "no kernel build in progress";
  const base = `kernel ${s.release}: ${s.phase} (since ${s.at})`;
  if (s.phase === "awaiting-reboot" && runningRelease && runningRelease !== s.release)
    return `${base}; running ${runningRelease}, reboot into ${s.release} then run up`;
  return base;
}

/** The record, or undefined when there is none; a damaged file is a UserError (exit 2) naming it. */
export function readResume(stateDir: string): ResumeState | undefined {
  const p = resumePath(stateDir);
  return readStateJson(p, resumeSchema, {
    hint: `remove ${p} to start over`,
    record: "a kernel resume record",
  });
}

export function writeResume(stateDir: string, s: ResumeState): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileAtomic(resumePath(stateDir), `${JSON.stringify(s, null, 2)}\n`);
}

export function clearResume(stateDir: string): void {
  rmSync(resumePath(stateDir), { force: true });
}

/**
 * For `status`: one line about a kernel-building run in progress, or undefined when there is
 * none. Never throws (status must answer on any host): a corrupt record is reported as such.
 */
export function kernelBuildStatus(stateDir: string, runningRelease: string): string | undefined {
  try {
    const s = readResume(stateDir);
    return s ? describeResume(s, runningRelease) : undefined;
  } catch (e) {
    return `kernel resume record unreadable: ${(e as Error).message}`;
  }
}
