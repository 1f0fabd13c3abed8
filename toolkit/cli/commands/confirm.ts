import type { Command } from "commander";
import { UserError } from "../../core/errors.js";
import { checkDirOption } from "../../state/dirs.js";
import { defaultStateDir } from "../../state/lock.js";
import { confirmDeadman } from "../../up/deadman.js";
import { badge, out, printJson } from "../output.js";

/** `confirm`: keep what `up --allow-management` did; stops the dead-man timer. */
export const confirmCommand = {
  register(program: Command): void {
    program
      .command("confirm")
      .description("keep the swap made with --allow-management: stop the dead-man timer before it runs down")
      .option("--state-dir <dir>", "journal, backups and installed.json", defaultStateDir)
      .option("--json", "print the result as JSON")
      .action((flags: { stateDir: string; json?: boolean }) => {
        const stateDir = checkDirOption("--state-dir", flags.stateDir, "state");
        const info = confirmDeadman(stateDir);
        if (!info)
          throw new UserError(
            `no dead-man timer is armed in ${stateDir}`,
            "nothing to confirm: either up did not swap the management interface, or the timer already ran down",
          );
        if (flags.json) printJson({ confirmed: info.txid, pid: info.pid });
        else out(`${badge("ok")} confirmed transaction ${info.txid}; timer pid ${info.pid} stopped\n`);
      });
  },
};
