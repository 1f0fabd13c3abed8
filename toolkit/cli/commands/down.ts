import type { Command } from "commander";
import { ProvisionError } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import { renderDownPlan } from "../../plan/render.js";
import { checkDirOption } from "../../state/dirs.js";
import { defaultStateDir } from "../../state/lock.js";
import { readDeadman } from "../../up/deadman.js";
import { checkDownState, runDown } from "../../up/down.js";
import { planDown } from "../../up/down-steps.js";
import { badge, err, failWith, printJson, out as write } from "../output.js";
import { hostRootOption } from "./host-root.js";

/** `down`: unload, restore byte for byte, reload the stock drivers, prove it. */
export const downCommand = {
  register(program: Command): void {
    program
      .command("down")
      .description("unload netmap, put every original module back (sha256 checked), reload the stock drivers")
      .option("--state-dir <dir>", "journal, backups and installed.json", defaultStateDir)
      .option("--root <dir>", "the host tree (only / loads and unloads modules)", "/")
      .option("--force", "put originals back over files that hold neither the patched nor the original bytes")
      .option("--plan", "print the steps down would run (exact commands, files) and change nothing")
      .option("--json", "print the result (or with --plan, the plan) as JSON")
      .action(
        async (flags: {
          stateDir: string;
          root?: string;
          force?: boolean;
          json?: boolean;
          plan?: boolean;
        }) => {
          const root = hostRootOption(flags.root);
          const stateDir = checkDirOption("--state-dir", flags.stateDir, "state");
          if (flags.plan) {
            // No lock, no journal, no state write: only reads, and the read-only probes down makes.
            // A state down would refuse is refused here the same way (exit 2).
            try {
              checkDownState(root, stateDir);
              readDeadman(stateDir);
            } catch (e) {
              if (e instanceof ProvisionError) return failWith(e);
              throw e;
            }
            const plan = await planDown({ root, stateDir, exec: createExec({ dryRun: true }) });
            if (flags.json) printJson(plan);
            else write(`${renderDownPlan(plan)}\n`);
            return;
          }
          const report = await runDown({
            root,
            stateDir,
            exec: createExec(),
            force: flags.force ?? false,
            renderer: flags.json ? "silent" : "auto",
          });
          if (flags.json) printJson(report);
          else {
            const out: string[] = [];
            if (report.resumed) out.push(`${badge("info")} an interrupted transaction was ${report.resumed}`);
            for (const w of report.warnings) out.push(`${badge("warn")} ${w}`);
            for (const f of report.restored)
              out.push(`${badge(f.matches ? "ok" : "fail")} ${f.path} sha256 ${f.sha256.slice(0, 12)}`);
            for (const b of report.stockBound)
              out.push(`${badge(b.driver ? "ok" : "fail")} ${b.ifname}: ${b.driver ?? "no driver bound"}`);
            out.push(
              `${badge(report.devNetmapGone ? "ok" : "fail")} /dev/netmap ${report.devNetmapGone ? "gone" : "still there"}`,
            );
            if (report.ok) out.push(`${badge("ok")} netmap is down; the stock drivers are back`);
            write(`${out.join("\n")}\n`);
            if (report.error) {
              err(`error: ${report.error.message}\n`);
              if (report.error.hint) err(`hint: ${report.error.hint}\n`);
            }
          }
          if (report.error) failWith(report.error);
        },
      );
  },
};
