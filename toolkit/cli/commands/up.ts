import { type Command, Option } from "commander";
import { UserError } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import type { UpReport } from "../../up/report.js";
import { runUp } from "../../up/up.js";
import { badge, color, printJson } from "../output.js";
import { addRecipeOptions, loadRunRecipe, type RecipeRunFlags } from "../recipe-options.js";

interface UpFlags extends RecipeRunFlags {
  from?: string;
  allowManagement?: boolean;
  confirmTimeout?: string;
}

function seconds(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 5 || n > 3600)
    throw new UserError(`--confirm-timeout ${v}: expected whole seconds between 5 and 3600`);
  return n;
}

function printHuman(r: UpReport): void {
  const out: string[] = [];
  if (r.resumed) out.push(`${badge("info")} an interrupted transaction was found and ${r.resumed}`);
  for (const w of r.warnings) out.push(`${badge("warn")} ${w}`);
  const v = r.verify;
  if (v) {
    out.push(
      `${badge(v.devNetmap.present ? "ok" : "fail")} /dev/netmap minor ${v.devNetmap.minor ?? "-"} (/proc/misc ${v.devNetmap.miscMinor ?? "-"})`,
    );
    if (v.dmesg.mknod)
      out.push(`${badge("ok")} dmesg: mknod returned ${v.dmesg.mknod.err}, loaded: ${v.dmesg.loaded}`);
    for (const m of v.modules)
      out.push(
        `${badge(m.dependsOnNetmap ? "ok" : "fail")} ${m.name} depends on ${m.deps.join(", ") || "nothing"}`,
      );
    for (const i of v.interfaces)
      out.push(
        `${badge(i.mode === i.expected ? "ok" : "fail")} ${i.ifname} (${i.driver ?? "no driver"}): ${i.mode}`,
      );
    const vale = v.pktgen?.vale;
    if (vale)
      out.push(
        `${badge("ok")} pkt-gen VALE: tx ${vale.txPps === null ? "-" : `${(vale.txPps / 1e6).toFixed(3)} Mpps`}, rx ${vale.rxPps === null ? "-" : `${(vale.rxPps / 1e6).toFixed(3)} Mpps`}`,
      );
    for (const n of v.pktgen?.notes ?? []) out.push(`${badge("info")} ${n}`);
    for (const f of v.failures) out.push(`${badge("fail")} ${f}`);
  }
  if (r.deadman)
    out.push(
      `${badge("warn")} dead-man timer armed (pid ${r.deadman.pid}): run ${color.bold("netmap-provision confirm")} within ${r.deadman.timeoutSec} s or everything is rolled back`,
    );
  if (r.ok) out.push(`${badge("ok")} ${r.changed ? "netmap is up" : "already up: nothing changed"}`);
  process.stdout.write(`${out.join("\n")}\n`);
}

/** `up`: build (or cache/bundle), back up, install, swap, verify with evidence, record. */
export const upCommand = {
  register(program: Command): void {
    addRecipeOptions(
      program
        .command("up")
        .description(
          "install and load netmap and the patched drivers, verify with evidence, roll back on failure",
        ),
    )
      .option("--from <bundle>", "install from a bundle written by `build --out` instead of building")
      .option(
        "--allow-management",
        "swap the driver of the management interface, guarded by a dead-man timer",
      )
      .addOption(
        new Option(
          "--confirm-timeout <seconds>",
          "dead-man timeout (default: the recipe's guard.confirmTimeoutSec)",
        ),
      )
      .addHelpText(
        "after",
        "\nUp is one journaled transaction: after a crash the next `up` or `down` finishes or undoes it.\nWhen everything is already in place, up only verifies and changes nothing.",
      )
      .action(async (flags: UpFlags) => {
        const run = loadRunRecipe(flags);
        const confirmTimeoutSec = seconds(flags.confirmTimeout);
        const report = await runUp({
          run,
          exec: createExec(),
          from: flags.from,
          allowManagement: flags.allowManagement ?? false,
          confirmTimeoutSec,
          renderer: flags.json ? "silent" : "auto",
        });
        if (flags.json) printJson(report);
        else {
          printHuman(report);
          if (report.error) {
            process.stderr.write(`error: ${report.error.message}\n`);
            if (report.error.hint) process.stderr.write(`hint: ${report.error.hint}\n`);
          }
        }
        if (report.error) process.exitCode = report.error.exitCode;
      });
  },
};
