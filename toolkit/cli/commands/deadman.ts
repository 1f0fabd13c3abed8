import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { ExitCode } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import { checkDirOption } from "../../state/dirs.js";
import { readLock } from "../../state/lock.js";
import { isConfirmed, readDeadman } from "../../up/deadman.js";
import { runDown } from "../../up/down.js";
import { hostRootOption } from "./host-root.js";

const log = (m: string): void => {
  process.stdout.write(`${new Date().toISOString()} deadman[${process.pid}]: ${m}\n`);
};

/** Hidden: the timer `up --allow-management` starts. Runs `down` unless `confirm` arrives in time. */
export const deadmanCommand = {
  register(program: Command): void {
    program
      .command("deadman", { hidden: true })
      .description("internal: the dead-man timer started by up --allow-management")
      .requiredOption("--state-dir <dir>", "state dir")
      .requiredOption("--timeout <seconds>", "seconds to wait for confirm")
      .requiredOption("--txid <id>", "the up transaction guarded")
      .option("--root <dir>", "host root", "/")
      .action(async (flags: { stateDir: string; timeout: string; txid: string; root: string }) => {
        flags.stateDir = checkDirOption("--state-dir", flags.stateDir, "state");
        log(`armed for ${flags.txid}: down in ${flags.timeout} s unless confirmed`);
        await sleep(Number(flags.timeout) * 1000);
        if (isConfirmed(flags.stateDir, flags.txid)) {
          log("confirmed; nothing to do");
          return;
        }
        // A damaged deadman.json must not stop the timer from doing its one job.
        let mine: ReturnType<typeof readDeadman>;
        try {
          mine = readDeadman(flags.stateDir);
        } catch (e) {
          log(`ignoring ${(e as Error).message}`);
        }
        if (mine && mine.pid !== process.pid) {
          log(`another timer (pid ${mine.pid}) took over; exiting`);
          return;
        }
        log("no confirmation: running down");
        // up may still be verifying: wait for its lock rather than fail.
        for (let i = 0; i < 600; i++) {
          const r = await runDown({
            root: hostRootOption(flags.root),
            stateDir: flags.stateDir,
            exec: createExec(),
            renderer: "silent",
            fromDeadman: true,
            warn: log,
          });
          // Busy (exit 6): up holds the lock, or its transaction is still running.
          if (r.error?.exitCode === ExitCode.busy) {
            if (i === 0) log(`waiting for the lock (${readLock(flags.stateDir)?.command ?? "?"})`);
            await sleep(1000);
            continue;
          }
          log(`down ${r.ok ? "succeeded" : `failed: ${r.error?.message}`}`);
          process.exitCode = r.ok ? 0 : (r.error?.exitCode ?? 1);
          return;
        }
        log("gave up waiting for the lock");
        process.exitCode = 1;
      });
  },
};
