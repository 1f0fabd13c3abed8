import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { type ConfigureReport, type DroppedDriver, parseConfigureLog } from "../parse/configure-report.js";

/**
 * Run netmap's configure so that it cannot decide silently: always with --fail-on-driver-errors,
 * and its report parsed too, so every requested driver that will not be built natively is named
 * with the reason configure gave. A drop stops the build unless the recipe accepts emulated
 * (generic) mode for that driver; then configure runs again without it.
 */

export interface ConfigureInput {
  /** The configure script (top-level or LINUX/configure). */
  script: string;
  /** The build dir: emptied and created fresh. */
  buildDir: string;
  kernelDir: string;
  kernelSources?: string;
  drivers: readonly string[];
  /** Drivers that may fall back to emulated mode (true: all). */
  emulatedOk?: boolean | readonly string[];
  /** Pass-through options from the recipe (already validated). */
  options?: readonly string[];
  driverSuffix?: string;
  /** Apps to build; an empty list gives --no-apps; undefined leaves configure's default. */
  apps?: readonly string[];
  moduleName?: string;
  exec: Exec;
  logFile?: string;
  onProgress?: (text: string) => void;
}

export interface ConfigureOutcome {
  report: ConfigureReport;
  /** Drivers configure kept: these get a netmap-patched module. */
  native: string[];
  /** Drivers left out because the recipe accepts emulated mode for them, with configure's reason. */
  emulated: DroppedDriver[];
  /** The argv of the configure run that succeeded. */
  argv: string[];
  /** The full output of that run (also in the log file). */
  output: string;
}

/** What the configure command line is made of. */
export type ConfigureArgvInput = Pick<
  ConfigureInput,
  "script" | "kernelDir" | "kernelSources" | "driverSuffix" | "apps" | "moduleName" | "options"
>;

/** The configure command line for a driver set: the one place it is made (run and plan). */
export function configureArgv(i: ConfigureArgvInput, drivers: readonly string[]): string[] {
  const argv = [i.script, `--kernel-dir=${i.kernelDir}`];
  if (i.kernelSources) argv.push(`--kernel-sources=${i.kernelSources}`);
  argv.push(drivers.length > 0 ? `--drivers=${drivers.join(",")}` : "--no-drivers");
  argv.push("--fail-on-driver-errors");
  if (i.driverSuffix) argv.push(`--driver-suffix=${i.driverSuffix}`);
  if (i.apps !== undefined) argv.push(i.apps.length > 0 ? `--apps=${i.apps.join(",")}` : "--no-apps");
  if (i.moduleName && i.moduleName !== "netmap") argv.push(`--mod-name=${i.moduleName}`);
  for (const o of i.options ?? []) if (o !== "--fail-on-driver-errors") argv.push(o);
  return argv;
}

const acceptsEmulated = (ok: ConfigureInput["emulatedOk"], driver: string): boolean =>
  ok === true || (Array.isArray(ok) && ok.some((d) => d.replace(/\.c$/, "") === driver.replace(/\.c$/, "")));

/** One configure run in a fresh build dir; stdout and stderr kept in arrival order for the parser. */
async function runOnce(
  i: ConfigureInput,
  drivers: readonly string[],
): Promise<{ argv: string[]; exitCode: number; output: string }> {
  rmSync(i.buildDir, { recursive: true, force: true });
  mkdirSync(i.buildDir, { recursive: true });
  const argv = configureArgv(i, drivers);
  const lines: string[] = [];
  const r = await i.exec.run(argv, {
    cwd: i.buildDir,
    reject: false,
    logFile: i.logFile,
    onLine: (line) => {
      lines.push(line);
      if (line.startsWith("*** ") && line.length > 4) i.onProgress?.(line.slice(4).trim());
    },
  });
  const output = lines.join("\n");
  writeFileSync(join(i.buildDir, "configure.out"), `${output}\n`);
  return { argv, exitCode: r.exitCode, output };
}

function describeDrop(d: DroppedDriver): string {
  return `${d.driver}: ${d.reason}${d.detail ? ` (${d.detail.split("\n")[0]})` : ""}`;
}

/**
 * Configure, compare requested vs native, and stop on any drop the recipe does not accept.
 * Throws StepError("configure") before anything is built, let alone installed.
 */
export async function runConfigure(i: ConfigureInput): Promise<ConfigureOutcome> {
  let drivers = [...i.drivers];
  const emulated: DroppedDriver[] = [];
  // configure may stop at the first driver error, so each run can reveal more drops: at most one
  // run per requested driver, each without the drivers already accepted as emulated.
  for (let attempt = 0; attempt <= i.drivers.length; attempt++) {
    const run = await runOnce(i, drivers);
    const report = parseConfigureLog(run.output, drivers);
    const dropped = report.dropped.filter((d) =>
      drivers.some((r) => r.replace(/\.c$/, "") === d.driver.replace(/\.c$/, "")),
    );
    if (dropped.length === 0) {
      if (run.exitCode !== 0 || report.fatal) {
        throw new StepError(
          "configure",
          `netmap configure failed: ${report.fatal?.message ?? `exit code ${run.exitCode}`}`,
          `${report.fatal?.hint ?? "read the configure log"}${i.logFile ? ` (full output: ${i.logFile})` : ""}`,
        );
      }
      return { report, native: report.native, emulated, argv: run.argv, output: run.output };
    }
    const refused = dropped.filter((d) => !acceptsEmulated(i.emulatedOk, d.driver));
    if (refused.length > 0) {
      const names = refused.map((d) => d.driver).join(", ");
      throw new StepError(
        "configure",
        `netmap configure cannot build ${refused.length === 1 ? "the driver" : "the drivers"} ${names} natively:\n${refused
          .map((d) => `  - ${describeDrop(d)}`)
          .join("\n")}`,
        `${refused.map((d) => `${d.driver}: ${d.hint}`).join("\n")}\nor accept emulated mode for ${names} (emulatedOk in the recipe); nothing was built or installed`,
      );
    }
    for (const d of dropped) {
      emulated.push(d);
      i.onProgress?.(`${d.driver} will run in emulated mode: ${d.reason}`);
    }
    drivers = drivers.filter(
      (r) => !dropped.some((d) => d.driver.replace(/\.c$/, "") === r.replace(/\.c$/, "")),
    );
  }
  throw new StepError(
    "configure",
    "netmap configure dropped drivers again after the emulated ones were left out",
    `read the configure log${i.logFile ? ` (${i.logFile})` : ""}`,
  );
}
