import { badge, color } from "../cli/output.js";
import { quoteArgv } from "../core/exec.js";
import type { Plan } from "./plan.js";

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
  out.push("", "Steps:");
  plan.steps.forEach((s, n) => {
    const mark = s.blocked ? ` ${badge("blocked")}` : s.mutates ? "" : color.dim(" (read-only)");
    out.push(`  ${String(n + 1).padStart(2)}. [${s.id}] ${s.title}${mark}`);
    for (const c of s.commands)
      out.push(`        $ ${quoteArgv(c.argv)}${c.cwd ? color.dim(`   (in ${c.cwd})`) : ""}`);
    for (const f of s.files) out.push(`        ${f.action.padEnd(7)} ${f.path}${f.to ? ` -> ${f.to}` : ""}`);
    for (const c of s.checks) out.push(`        check: ${c}`);
    for (const note of s.notes ?? []) out.push(`        note: ${note}`);
    if (s.blocked) out.push(`        blocked: ${s.blocked.reason}`, `        fix: ${s.blocked.fix}`);
  });
  for (const w of plan.warnings) out.push(`${badge("warn")} ${w}`);
  if (plan.blockers.length > 0) {
    out.push("", `${plan.blockers.length} blocker(s): \`up\` would refuse to start:`);
    for (const b of plan.blockers) out.push(`  ${badge("blocked")} ${b.message}`, `          fix: ${b.fix}`);
  } else out.push("", "Nothing blocks this plan.");
  return out.join("\n");
}
