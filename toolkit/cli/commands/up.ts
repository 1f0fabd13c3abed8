import { release as osRelease } from "node:os";
import { type Command, Option } from "commander";
import { UserError } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import { describeResume, readResume } from "../../kernel/resume.js";
import { defaultStateDir } from "../../state/lock.js";
import type { KernelUpOptions } from "../../up/kernel-phase.js";
import { runUp, type UpOptions } from "../../up/up.js";
import type { UpReport } from "../../up/up-report.js";
import { pktgenLines } from "../../verify/verify-report.js";
import { badge, color, err, failWith, printJson, out as write } from "../output.js";
import { addRecipeOptions, loadRunRecipe, type RecipeRunFlags } from "../recipe-options.js";

interface UpFlags extends RecipeRunFlags {
  from?: string;
  allowManagement?: boolean;
  confirmTimeout?: string;
  reboot?: boolean;
  resume?: boolean;
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
  const k = r.kernel;
  if (k) {
    const b = k.proceeded ? "ok" : k.rebooting ? "info" : "warn";
    out.push(`${badge(b)} kernel ${k.release}${k.phase ? ` (${k.phase})` : ""}: ${k.message ?? ""}`);
    if (k.nextBoot) out.push(`        next boot  ${k.nextBoot.join(" ")} (once)`);
    if (k.unit) out.push(`        resume unit  ${k.unit}`);
    if (k.finished) out.push(`${badge("ok")} kernel run finished: resume record and unit removed`);
  }
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
    if (v.pktgen) for (const l of pktgenLines(v.pktgen)) out.push(`${badge("ok")} ${l}`);
    for (const n of v.pktgen?.notes ?? []) out.push(`${badge("info")} ${n}`);
    for (const f of v.failures) out.push(`${badge("fail")} ${f}`);
  }
  if (r.persist) {
    out.push(`${badge("ok")} persistent: ${r.persist.modulesLoad}; ${r.persist.note}`);
    for (const m of r.persist.initramfs?.modules ?? [])
      out.push(
        `${badge(m.patched === false ? "fail" : "ok")} initramfs: ${m.module} ${m.path ? `${m.path} (${m.patched ? "patched" : "stock"})` : "not in the image (loaded from the root filesystem)"}`,
      );
  }
  if (r.deadman)
    out.push(
      `${badge("warn")} dead-man timer armed (pid ${r.deadman.pid}): run ${color.bold("netmap-provision confirm")} within ${r.deadman.timeoutSec} s or everything is rolled back`,
    );
  // A kernel run that stopped for the reboot has not loaded netmap yet, whatever ok says.
  if (r.ok && k?.proceeded !== false)
    out.push(`${badge("ok")} ${r.changed ? "netmap is up" : "already up: nothing changed"}`);
  write(`${out.join("\n")}\n`);
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
      .option(
        "--reboot",
        "kernel.build recipes: once the new kernel is installed and set for the next boot, install a one-shot unit that continues up after the boot, and reboot",
      )
      .option(
        "--resume",
        "continue a kernel run after the reboot (what the one-shot unit runs); exits 0 when there is none",
      )
      .addHelpText(
        "after",
        "\nUp is one journaled transaction: after a crash the next `up` or `down` finishes or undoes it.\nWhen everything is already in place, up only verifies and changes nothing.\nA kernel.build recipe first builds and installs its kernel, sets it for the next boot only (grub-reboot)\nand stops (exit 4) until that kernel runs; the next `up` (or the unit --reboot installs) builds netmap\nagainst it. `status` shows where such a run is (state dir resume.json).",
      )
      .action(async (flags: UpFlags) => {
        if (flags.resume) {
          // Before the recipe is loaded: the unit may outlive the run (or its recipe file).
          const stateDir = flags.stateDir ?? defaultStateDir;
          const s = readResume(stateDir);
          if (!s) {
            if (flags.json) printJson({ ok: true, changed: false, message: "nothing to resume" });
            else write(`${badge("info")} nothing to resume (no resume.json in ${stateDir})\n`);
            return;
          }
          if (!flags.json) err(`${badge("info")} resuming: ${describeResume(s, osRelease())}\n`);
        }
        const run = loadRunRecipe(flags);
        const confirmTimeoutSec = seconds(flags.confirmTimeout);
        // A variable, not a literal: up.ts gains these fields separately (KernelUpOptions).
        const options: UpOptions & KernelUpOptions = {
          run,
          exec: createExec(),
          from: flags.from,
          allowManagement: flags.allowManagement ?? false,
          confirmTimeoutSec,
          renderer: flags.json ? "silent" : "auto",
          reboot: flags.reboot ?? false,
          resume: flags.resume ?? false,
          recipePath: run.recipeFile,
        };
        const report = await runUp(options);
        if (flags.json) printJson(report);
        else {
          printHuman(report);
          if (report.error) {
            err(`error: ${report.error.message}\n`);
            if (report.error.hint) err(`hint: ${report.error.hint}\n`);
          }
        }
        if (report.error) failWith(report.error);
      });
  },
};
