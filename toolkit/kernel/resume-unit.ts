/**
 * The one-shot systemd unit that continues `up` after the reboot into the new kernel. It runs
 * once: `up` removes the unit when the resume record reaches "done", and ConditionPathExists
 * keeps it from doing anything once the record is gone.
 */
export const RESUME_UNIT_NAME = "netmap-provision-resume.service";

export interface ResumeUnitOptions {
  /** argv of the CLI entry (node and main.js, or an installed netmap-provision). */
  cli: readonly string[];
  recipe: string;
  stateDir: string;
}

/** systemd unquoting: a word with spaces or quotes is double-quoted with \ escapes. */
function systemdWord(w: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w)) return w;
  return `"${w
    .replace(/(["\\])/g, "\\$1")
    .replaceAll("$", "$$$$")
    .replaceAll("%", "%%")}"`;
}

/** The unit file text. */
export function renderResumeUnit(o: ResumeUnitOptions): string {
  const argv = [...o.cli, "up", "--recipe", o.recipe, "--state-dir", o.stateDir, "--resume"];
  return [
    "[Unit]",
    "Description=netmap-provision: continue up after booting the new kernel",
    "After=network-online.target local-fs.target",
    "Wants=network-online.target",
    `ConditionPathExists=${o.stateDir}/resume.json`,
    "",
    "[Service]",
    "Type=oneshot",
    `ExecStart=${argv.map(systemdWord).join(" ")}`,
    "StandardOutput=journal+console",
    "TimeoutStartSec=3h",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}
