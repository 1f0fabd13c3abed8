import type { Command } from "commander";
import { createExec } from "../../core/exec.js";
import { checkDirOption } from "../../state/dirs.js";
import { defaultStateDir } from "../../state/lock.js";
import { runDown } from "../../up/down.js";
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
      .option("--json", "print the result as JSON")
      .action(async (flags: { stateDir: string; root?: string; force?: boolean; json?: boolean }) => {
        const report = await runDown({
          root: hostRootOption(flags.root),
          stateDir: checkDirOption("--state-dir", flags.stateDir, "state"),
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
      });
  },
};
