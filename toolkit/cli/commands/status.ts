import type { Command } from "commander";
import { UserError } from "../../core/errors.js";
import { underRoot } from "../../core/paths.js";
import { checkDirOption } from "../../state/dirs.js";
import { defaultStateDir } from "../../state/lock.js";
import type { StatusReport } from "../../status/status-report.js";
import { badge, color, printJson, out as write } from "../output.js";
import { hostRootOption } from "./host-root.js";

function printStatus(r: StatusReport): void {
  const out: string[] = [];
  const n = r.netmap;
  out.push(
    `${color.bold("netmap-provision status")}: ${r.root === "/" ? "this host" : r.root}, kernel ${r.kernelRelease}`,
  );
  out.push("");
  if (!n.moduleSupport)
    out.push(`${badge("info")} this kernel has no loadable module support (no /proc/modules)`);
  out.push(
    n.loaded
      ? `${badge("ok")} netmap loaded${n.module !== "netmap" ? ` (as ${n.module})` : ""}: refcount ${n.refcount ?? "-"}, used by ${n.usedBy.length ? n.usedBy.join(", ") : "no driver"}`
      : `${badge("info")} netmap is not loaded`,
  );
  out.push(
    n.devNetmap
      ? `${badge("ok")} /dev/netmap present${n.miscMinor !== null ? ` (misc minor ${n.miscMinor})` : ""}`
      : `${badge(n.loaded ? "warn" : "info")} /dev/netmap absent${n.miscMinor !== null ? ` (but /proc/misc lists netmap at minor ${n.miscMinor})` : ""}`,
  );
  const params = Object.entries(n.params);
  const admodes: Record<string, string> = { "0": "best", "1": "native only", "2": "emulated only" };
  const shown = params.map(([k, v]) =>
    k === "admode" && admodes[v] ? `admode=${v} (${admodes[v]})` : `${k}=${v}`,
  );
  if (params.length) out.push(`        parameters: ${shown.join(" ")}`);
  out.push("");
  if (r.interfaces.length === 0) out.push("no physical network interfaces");
  const w = Math.max(0, ...r.interfaces.map((i) => i.ifname.length));
  for (const i of r.interfaces) {
    const b = i.mode === "native" ? badge("ok") : i.mode === "emulated" ? badge("warn") : badge("info");
    const extra = [
      i.driverKind,
      i.management && "management",
      i.nativeAvailable && i.mode !== "native" && "native patch available",
    ]
      .filter(Boolean)
      .join(", ");
    out.push(
      `${b} ${i.ifname.padEnd(w)}  ${(i.driver ?? "no driver").padEnd(12)} ${i.mode.padEnd(10)} ${color.dim(extra)}`,
    );
  }
  out.push("");
  const inst = r.installed;
  if (inst.state === "absent")
    out.push(`${badge("info")} nothing installed by netmap-provision (${inst.stateDir})`);
  else if (inst.state === "unreadable") out.push(`${badge("warn")} ${inst.problem}`);
  else {
    out.push(
      `${badge("info")} installed by netmap-provision${inst.installedAt ? ` at ${inst.installedAt}` : ""}${inst.kernelRelease ? ` for ${inst.kernelRelease}` : ""}:`,
    );
    for (const m of inst.modules) out.push(`        ${m.module}  ${m.path}  sha256 ${m.sha256.slice(0, 12)}`);
  }
  if (r.kernelBuild !== null) {
    const waiting = /awaiting-reboot|unreadable/.test(r.kernelBuild);
    out.push(`${badge(waiting ? "warn" : "info")} kernel build: ${r.kernelBuild}`);
  }
  write(`${out.join("\n")}\n`);
}

/** `status`: what is installed and loaded, native or emulated per interface. Read-only, fast. */
export const statusCommand = {
  register(program: Command): void {
    program
      .command("status")
      .description(
        "show whether netmap is loaded, /dev/netmap, per interface native/emulated, and what netmap-provision installed",
      )
      .option("--root <dir>", "read the host tree under DIR instead of / (tests, sysroots)", "/")
      .option(
        "--state-dir <dir>",
        `where netmap-provision keeps installed.json (default: ${defaultStateDir} under --root)`,
      )
      .option("--json", "print the status as JSON")
      .action(async (opts: { root?: string; stateDir?: string; json?: boolean }) => {
        const root = hostRootOption(opts.root);
        const stateDir = checkDirOption(
          "--state-dir",
          opts.stateDir ?? underRoot(root, defaultStateDir),
          "state",
        );
        // Loaded here, not at registration: every other command would pay for them otherwise.
        const [{ loadDriverCatalog }, { readStatus }] = await Promise.all([
          import("../../catalog/drivers.js"),
          import("../../status/status-report.js"),
        ]);
        const report = readStatus(root, stateDir, loadDriverCatalog());
        if (opts.json) printJson(report);
        else printStatus(report);
        // The rest of the host is shown; a damaged state file still makes status fail (exit 2).
        const [first, ...more] = report.stateErrors;
        if (first)
          throw new UserError(
            [first.message, ...more.map((e) => e.message)].join("\n"),
            first.hint ?? "move the damaged file aside",
          );
      });
  },
};
