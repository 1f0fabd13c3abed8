import type { Command } from "commander";
import { BlockedError } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import { gatherPlanInputs } from "../../plan/inputs.js";
import { attachBlockers, buildPlan } from "../../plan/plan.js";
import { renderPlan } from "../../plan/render.js";
import { failWith, out, printJson } from "../output.js";
import { addRecipeOptions, loadRunRecipe, type RecipeRunFlags } from "../recipe-options.js";

/** `plan`: print what `up` would do, step by step, without changing anything. */
export const planCommand = {
  register(program: Command): void {
    addRecipeOptions(
      program
        .command("plan")
        .description(
          "print the ordered steps `up` would run: exact commands, files touched, and what blocks them",
        )
        .option(
          "--allow-management",
          "plan as if `up --allow-management` (swap the management NIC's driver under a dead-man timer)",
        )
        .option("--from <bundle>", "plan as `up --from <bundle>`: install a bundle's modules, build nothing"),
    )
      .addHelpText(
        "after",
        "\nExit code 4 when something blocks the plan (listed in it); 0 otherwise. Changes nothing.",
      )
      .action(async (flags: RecipeRunFlags & { allowManagement?: boolean; from?: string }) => {
        const run = loadRunRecipe(flags);
        const inputs = await gatherPlanInputs({
          ...run,
          exec: createExec({ dryRun: true }),
          allowManagement: flags.allowManagement,
          ...(flags.from !== undefined ? { from: flags.from } : {}),
        });
        const plan = attachBlockers(buildPlan(inputs));
        if (flags.json) printJson({ ...plan, overrides: run.overrides });
        else out(`${renderPlan(plan)}\n`);
        const first = plan.blockers[0];
        if (first)
          failWith(
            new BlockedError(
              `${plan.blockers.length} blocker(s): ${plan.blockers.map((b) => b.message).join("; ")}`,
              plan.blockers.length === 1
                ? first.fix
                : `each blocker says its fix (\`blockers\` in --json); first: ${first.fix}`,
            ),
          );
      });
  },
};
