import { installStep } from "../modules/install-step.js";
import { persistStep } from "../modules/persist-step.js";
import type { Step } from "../runner/step.js";
import { swapStep } from "../swap/swap-step.js";
import { verifyStep } from "../verify/verify-step.js";
import type { UpResolve, UpRun } from "./context.js";
import { recordStep } from "./record-step.js";

/**
 * up's transaction, in order: the one list `plan` describes and `up` runs (after its build step,
 * toolkit/up/build-step.ts). Each step is defined next to its domain code.
 */
export function transactionSteps(u: UpResolve, r?: UpRun): Step[] {
  return [
    installStep(u, r),
    swapStep(u, r),
    verifyStep(u, r),
    ...(u.persist ? [persistStep(u, r)] : []),
    recordStep(u, r),
  ];
}
