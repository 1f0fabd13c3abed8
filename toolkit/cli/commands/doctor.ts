import type { Command } from "commander";
import { BlockedError } from "../../core/errors.js";
import type { DoctorCheck, DoctorOptions } from "../../doctor/checks.js";
import type { HostFacts } from "../../host/facts.js";
import { badge, color, failWith, out, printJson } from "../output.js";
import { hostRootOption } from "./host-root.js";

/** Facts for --json without the full kernel config (thousands of symbols nobody reads here). */
function factsSummary(facts: HostFacts): unknown {
  const { kconfig, ...rest } = facts;
  return {
    ...rest,
    kconfig: kconfig && {
      source: kconfig.source,
      kind: kconfig.kind,
      symbols: Object.keys(kconfig.values).length,
    },
  };
}

function printTable(facts: HostFacts, checks: DoctorCheck[]): void {
  const width = Math.max(...checks.map((c) => c.title.length));
  const where = facts.root === "/" ? "this host" : facts.root;
  out(
    `${color.bold("netmap-provision doctor")}: ${where}, ${facts.os.prettyName}, kernel ${facts.kernel.release}\n\n`,
  );
  for (const c of checks) {
    out(`${badge(c.status)} ${c.title.padEnd(width)}  ${c.found}\n`);
    if (c.fix) out(`${" ".repeat(8 + width + 2)}${color.dim(`fix: ${c.fix}`)}\n`);
  }
  const blockers = checks.filter((c) => c.blocksUp);
  out(
    blockers.length
      ? `\n${badge("blocked")} \`up\` would refuse: ${blockers.map((c) => c.title).join("; ")} (exit 4)\n`
      : `\n${badge("ok")} nothing blocks \`up\`\n`,
  );
}

/** `doctor`: read the host, say what is ready and what is not, with the fix for each. */
export const doctorCommand = {
  register(program: Command): void {
    program
      .command("doctor")
      .description(
        "check whether this host can run `up`: kernel, headers, sources, tools, Secure Boot, NICs, management link",
      )
      .option("--root <dir>", "read the host tree under DIR instead of / (tests, sysroots)", "/")
      .option("--json", "print the findings as JSON")
      .option(
        "--recipe <file>",
        "judge against this recipe's drivers and emulatedOk (default: every netmap driver the NICs use)",
      )
      .addHelpText(
        "after",
        "\nExit status: 0 when nothing blocks `up`, 4 when something does, 2 on bad arguments.",
      )
      .action(async (opts: { root?: string; json?: boolean; recipe?: string }) => {
        const root = hostRootOption(opts.root);
        // Loaded here, not at registration: every other command would pay for them otherwise.
        const [
          { loadDriverCatalog },
          { createExec },
          { blocksUp, runDoctor },
          { gatherHostFacts },
          { loadRecipe },
        ] = await Promise.all([
          import("../../catalog/drivers.js"),
          import("../../core/exec.js"),
          import("../../doctor/checks.js"),
          import("../../host/facts.js"),
          import("../../recipe/load.js"),
        ]);
        const catalog = loadDriverCatalog();
        const doctorOpts: DoctorOptions = {};
        if (opts.recipe) {
          const { recipe } = loadRecipe(opts.recipe, { knownDrivers: catalog.list().map((d) => d.token) });
          doctorOpts.drivers = recipe.drivers;
          doctorOpts.emulatedOk = recipe.emulatedOk;
        }
        const facts = await gatherHostFacts({ root, catalog, exec: createExec() });
        const checks = runDoctor(facts, doctorOpts);
        const blocked = blocksUp(checks);
        if (opts.json) printJson({ blocked, checks, facts: factsSummary(facts) });
        else printTable(facts, checks);
        if (blocked) {
          const titles = checks.filter((c) => c.blocksUp).map((c) => c.title);
          failWith(
            new BlockedError(
              `\`up\` would refuse: ${titles.join("; ")}`,
              "each failing check says what was found and the fix (`checks` in --json)",
            ),
          );
        }
      });
  },
};
