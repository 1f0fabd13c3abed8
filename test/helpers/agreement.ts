import { quoteArgv } from "../../toolkit/core/exec.js";
import type { PlannedCommand } from "../../toolkit/runner/step.js";

/*
 * The matching of the agreement tests (issue 12): a planned command against one the run made.
 * Placeholders stand for one path part (or a part of one) only the run knows: <run> and <tmp>
 * (private dirs), <key> (a cache key), <version> (a package version kbuild picks), <txid> (a
 * transaction id), <commit> (the full id rev-parse printed).
 */

/** A command the run made, as an exec log or a report's `commands` lists it. */
export interface RanLike {
  argv: readonly string[];
  cwd?: string | undefined;
}

/** A planned argv/cwd as a pattern: placeholders match one path part the run chose. */
export function pattern(text: string): RegExp {
  const esc = text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${esc.replace(/<(run|tmp|key|version|txid|commit|index)>/g, "[^/ ]+")}$`);
}

export const shown = (argv: readonly string[], cwd?: string): string =>
  `${quoteArgv(argv)}${cwd ? `   (in ${cwd})` : ""}`;

/** Argument by argument (quoting for display would differ around the placeholders). */
export const matches = (p: PlannedCommand, e: RanLike): boolean =>
  p.argv.length === e.argv.length &&
  p.argv.every((a, i) => pattern(a).test(e.argv[i] ?? "")) &&
  (p.cwd === undefined || (e.cwd !== undefined && pattern(p.cwd).test(e.cwd)));

/** Both ways: every command run is planned, every planned one runs; failures name the other side. */
export function agreement(
  planned: readonly PlannedCommand[],
  ran: readonly RanLike[],
): { notPlanned: string[]; notRun: string[] } {
  const planText = planned.map((p) => shown(p.argv, p.cwd)).join("\n");
  const ranText = ran.map((e) => shown(e.argv, e.cwd)).join("\n");
  return {
    notPlanned: ran
      .filter((e) => !planned.some((p) => matches(p, e)))
      .map((e) => `ran but not planned:\n  ${shown(e.argv, e.cwd)}\nthe plan:\n${planText}`),
    notRun: planned
      .filter((p) => !ran.some((e) => matches(p, e)))
      .map((p) => `planned but not run:\n  ${shown(p.argv, p.cwd)}\nran:\n${ranText}`),
  };
}
