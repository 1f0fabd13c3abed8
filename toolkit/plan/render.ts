import { quoteArgv } from "../core/exec.js";
import { badge, color } from "../core/terminal-style.js";
import type { StepDescription } from "../runner/step.js";
import type { DownPlan } from "../up/down-steps.js";
import type { Plan } from "./plan.js";

/** Numbered steps with their commands, files, checks and notes (`plan` and `down --plan`). */
export function renderSteps(steps: readonly StepDescription[]): string[] {
  const out: string[] = [];
  steps.forEach((s, n) => {
    const mark = s.blocked ? ` ${badge("blocked")}` : s.mutates ? "" : color.dim(" (read-only)");
    out.push(`  ${String(n + 1).padStart(2)}. [${s.id}] ${s.title}${mark}`);
    for (const c of s.commands)
      out.push(`        $ ${quoteArgv(c.argv)}${c.cwd ? color.dim(`   (in ${c.cwd})`) : ""}`);
    for (const f of s.files) out.push(`        ${f.action.padEnd(7)} ${f.path}${f.to ? ` -> ${f.to}` : ""}`);
    for (const c of s.checks) out.push(`        check: ${c}`);
    for (const note of s.notes ?? []) out.push(`        note: ${note}`);
    if (s.blocked) out.push(`        blocked: ${s.blocked.reason}`, `        fix: ${s.blocked.fix}`);
  });
  return out;
}

/** The plan as a person reads it: numbered steps, their commands and files, blockers last. */
export function renderPlan(plan: Plan): string {
  const out: string[] = [];
  out.push(
    `Plan for recipe "${plan.recipe}": kernel ${plan.targetRelease}${plan.targetVersion ? ` (${plan.targetVersion})` : ""}${plan.buildsKernel ? ", built from source" : ""}`,
  );
  if (plan.drivers.length > 0) {
    out.push("", "Drivers:");
    for (const d of plan.drivers)
      out.push(`  ${d.token.padEnd(14)} ${d.mode.padEnd(11)} ${color.dim(d.reason)}`);
  } else
    out.push("", "Drivers: none (netmap.ko only; VALE and pipes work, NICs stay on their stock drivers)");
  out.push("", "Steps:", ...renderSteps(plan.steps));
  for (const w of plan.warnings) out.push(`${badge("warn")} ${w}`);
  if (plan.blockers.length > 0) {
    out.push("", `${plan.blockers.length} blocker(s): \`up\` would refuse to start:`);
    for (const b of plan.blockers) out.push(`  ${badge("blocked")} ${b.message}`, `          fix: ${b.fix}`);
  } else out.push("", "Nothing blocks this plan.");
  return out.join("\n");
}

/** `down --plan` as a person reads it: what is taken back, then the steps. */
export function renderDownPlan(plan: DownPlan): string {
  const out: string[] = [];
  out.push(
    plan.kernelRelease
      ? `Down plan: kernel ${plan.kernelRelease}, netmap module ${plan.netmapModule}`
      : `Down plan: nothing is installed (netmap module ${plan.netmapModule})`,
  );
  out.push(
    `  drivers: ${plan.drivers.join(", ") || "none"}`,
    `  interfaces: ${plan.interfaces.join(", ") || "none"}`,
  );
  if (plan.pending)
    out.push(
      `  interrupted: the "${plan.pending.kind}" transaction ${plan.pending.txid} (${plan.pending.file})`,
    );
  out.push("", "Steps:", ...renderSteps(plan.steps));
  const ph = Object.entries(plan.placeholders);
  if (ph.length > 0) out.push("", ...ph.map(([k, v]) => `${k}: ${v}`));
  out.push("", "Nothing was changed.");
  return out.join("\n");
}
