import type { Command } from "commander";
import { UserError } from "../../core/errors.js";
import { defaultStateDir } from "../../state/lock.js";
import { confirmDeadman } from "../../up/deadman.js";
import { badge } from "../output.js";

/** `confirm`: keep what `up --allow-management` did; stops the dead-man timer. */
export const confirmCommand = {
  register(program: Command): void {
    program
      .command("confirm")
      .description("keep the swap made with --allow-management: stop the dead-man timer before it runs down")
      .option("--state-dir <dir>", "journal, backups and installed.json", defaultStateDir)
      .action((flags: { stateDir: string }) => {
        const info = confirmDeadman(flags.stateDir);
        if (!info)
          throw new UserError(
            `no dead-man timer is armed in ${flags.stateDir}`,
            "nothing to confirm: either up did not swap the management interface, or the timer already ran down",
          );
        process.stdout.write(
          `${badge("ok")} confirmed transaction ${info.txid}; timer pid ${info.pid} stopped\n`,
        );
      });
  },
};
