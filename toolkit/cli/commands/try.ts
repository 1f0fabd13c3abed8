import { type Command, Option } from "commander";
import { ExitCode, formatError, StepError, TimeoutError, UserError } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import { renderTryReport } from "../../try/render.js";
import { runTry } from "../../try/run-try.js";
import { color, err, failWith, out, printJson } from "../output.js";
import { addRecipeOptions, loadRunRecipe, type RecipeRunFlags } from "../recipe-options.js";

interface TryFlags extends RecipeRunFlags {
  kernel?: string;
  nic?: string;
  memory?: string;
  timeout?: string;
  keep?: boolean;
  testHang?: boolean;
  fullModuleTree?: boolean;
}

function wholeNumber(flag: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UserError(`${flag} ${v}: expected a whole number from ${min} to ${max}`);
  return n;
}

/** `try`: rehearse up, status and down in a throwaway QEMU guest and report what happened. */
export const tryCommand = {
  register(program: Command): void {
    const cmd = program
      .command("try")
      .description(
        "rehearse up, verify, status and down in a throwaway QEMU guest of the target kernel; this host is not changed",
      );
    addRecipeOptions(cmd)
      .option(
        "--kernel <file>",
        "boot this bzImage (default: /boot/vmlinuz-<release> for the recipe's kernel)",
      )
      .option(
        "--nic <models>",
        "QEMU NIC models, comma-separated: e1000, e1000e, virtio-net-pci, ... (default: one per recipe driver)",
      )
      .option("--memory <mb>", "guest memory in MiB", "1024")
      .option("--timeout <s>", "stop the guest after this many seconds", "1200")
      .option("--keep", "keep the guest's files (bundle, JSON reports, serial log) and print where")
      .option(
        "--full-module-tree",
        "run depmod over the guest's whole module tree (slow under TCG); by default it is trimmed to the loaded modules",
      )
      // Test-only: the guest payload hangs, so the timeout path can be tested on a real guest.
      .addOption(new Option("--test-hang").hideHelp())
      .addHelpText(
        "after",
        `
Builds on this host (or reuses the cache) for the guest kernel's release, boots it in QEMU with the
host root shared read-only, and inside runs \`up --from <bundle> --json\`, \`status --json\` and
\`down --json\`. KVM is used when a short probe shows it works, TCG otherwise.
Exit 0 only when up, verify and down all passed; 5 when the guest timed out.`,
      )
      .action(async (flags: TryFlags) => {
        const run = loadRunRecipe(flags);
        const nics = flags.nic
          ?.split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        const memoryMb = wholeNumber("--memory", flags.memory, 256, 65536);
        const timeoutS = wholeNumber("--timeout", flags.timeout, 10, 86400) ?? 1200;
        const report = await runTry({
          run,
          recipeFlags: flags,
          exec: createExec(),
          ...(flags.kernel ? { kernelFile: flags.kernel } : {}),
          ...(nics && nics.length > 0 ? { nics } : {}),
          ...(memoryMb ? { memoryMb } : {}),
          timeoutMs: timeoutS * 1000,
          keep: flags.keep === true,
          renderer: flags.json ? "silent" : "auto",
          ...(flags.json ? {} : { progress: (l: string) => err(`${color.dim(l)}\n`) }),
          testHang: flags.testHang === true,
          fullModuleTree: flags.fullModuleTree === true,
        });
        if (flags.json) printJson(report);
        else out(renderTryReport(report));
        if (report.ok) return;
        const failed = report.steps.find((s) => s.verdict === "failed");
        const why = failed
          ? `${failed.id} failed${failed.message ? `: ${failed.message}` : ""}`
          : "see above";
        const failure =
          report.exitCode === ExitCode.timeout
            ? new TimeoutError(
                `the guest did not finish within ${timeoutS} s (serial tail above)`,
                "raise --timeout, or run with --keep and read the serial log",
              )
            : new StepError(
                "try",
                `the rehearsal failed: ${why}`,
                report.kept ? `files kept in ${report.kept}` : undefined,
              );
        // The guest command's own exit code is kept (e.g. 3: its rollback failed), so not thrown.
        if (!flags.json) process.stderr.write(`${formatError(failure).text}\n`);
        failWith({ message: failure.message, hint: failure.hint, exitCode: report.exitCode });
      });
  },
};
