import { type Exec, observeExec, type RanCommand } from "../core/exec.js";
import type { Step } from "./step.js";

/**
 * The commands a run's steps ran, each with its step, into a report's `commands` (up and down
 * --json): what the user can audit, and what the agreement tests hold to the plan.
 */
export function commandLog(
  base: Exec,
  into: RanCommand[],
  first: string,
): { exec: Exec; tag: (s: Step) => Step } {
  let current = first;
  const exec = observeExec(base, (argv, cwd) =>
    into.push(
      cwd === undefined ? { step: current, argv: [...argv] } : { step: current, argv: [...argv], cwd },
    ),
  );
  // A step's undo runs under the step that was running last (install's undo in up).
  const tag = (s: Step): Step => ({
    ...s,
    run: (c, rep) => {
      current = s.describe().id;
      return s.run(c, rep);
    },
  });
  return { exec, tag };
}
