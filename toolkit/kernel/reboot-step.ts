import { join } from "node:path";
import type { StepDescription } from "../runner/step.js";
import type { KernelPhase } from "./phase.js";

/** What `up --reboot` runs on the real host once the kernel is installed (toolkit/up/kernel-phase.ts). */
export const REBOOT_ARGV: readonly string[] = ["systemctl", "reboot"];

/** reboot: `up` stops here; after the boot, the next `up` (or the resume unit) goes on from resume.json. */
export function describeReboot(p: KernelPhase, o: { stateDir: string; after: string }): StepDescription {
  return {
    id: "reboot",
    title: `Reboot into ${p.release}; the next \`up\` resumes from here`,
    mutates: true,
    dependsOn: [o.after],
    commands: [{ argv: [...REBOOT_ARGV], mutates: true }],
    files: [{ action: "create", path: join(o.stateDir, "resume.json") }],
    checks: [],
    notes: ["up --reboot reboots by itself; without it, up stops and says to reboot"],
  };
}
