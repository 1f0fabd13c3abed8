import { existsSync, lstatSync, mkdirSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { DriverCatalog } from "../catalog/drivers.js";
import { UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { buildAndInstallKernel, type KernelBuildRequest } from "../kernel/build-and-install.js";
import type { KernelBuildOverrides } from "../kernel/phase.js";
import { REBOOT_ARGV } from "../kernel/reboot-step.js";
import {
  advance,
  clearResume,
  decide,
  type ResumePhase,
  type ResumeState,
  readResume,
  writeResume,
} from "../kernel/resume.js";
import { RESUME_UNIT_NAME, renderResumeUnit } from "../kernel/resume-unit.js";
import type { RunRecipe } from "../recipe/run-recipe.js";
import type { Recipe } from "../recipe/schema.js";
import { writeFileAtomic } from "../state/atomic-file.js";

/**
 * The kernel part of `up` for a recipe with kernel.build: build and install the recipe's kernel,
 * set it for the next boot only (grub-reboot: a kernel that fails to boot falls back), optionally
 * install a one-shot unit and reboot; on the `up` after the reboot, check the awaited kernel is the
 * one running and let up build netmap against its build tree. resume.json in the state dir says
 * where the run is (toolkit/kernel/resume.ts); `finishKernelPhase` closes it after netmap is up.
 */

/** The fields `up` takes for a kernel-building recipe (optional: a plain up has none). */
export interface KernelUpOptions {
  /** Reboot into the new kernel once it is installed and set for the next boot. */
  reboot?: boolean;
  /** Run by the resume unit: continue a kernel run (the CLI exits 0 when there is none). */
  resume?: boolean;
  /** The recipe file, recorded in resume.json and the unit (default: run.recipeFile). */
  recipePath?: string;
}

export interface KernelPhaseOptions {
  run: RunRecipe;
  exec: Exec;
  /** The recipe file recorded in resume.json and passed to the unit (default: run.recipeFile). */
  recipePath?: string;
  /** `uname -r` now. */
  runningRelease: string;
  /** "/" (default) is this host; anything else is a staging root (no grub-reboot, no systemctl). */
  installRoot?: string;
  reboot: boolean;
  /**
   * Default ["systemctl", "reboot"], run on the real host only. In a staging root only a command
   * given here runs (tests record the call); the default never does.
   */
  rebootCommand?: readonly string[];
  /** Where the resume unit goes (default <installRoot>/etc/systemd/system). */
  unitDir?: string;
  driverCatalog: DriverCatalog;
  /** Overrides passed to the kernel build (`kernel build` flags; tests pin a cached build's inputs). */
  build?: KernelBuildOverrides;
  /** argv of the CLI the unit runs (default: this node and this checkout's dist/toolkit/cli/main.js). */
  cli?: readonly string[];
  onProgress?: (text: string) => void;
}

export type KernelPhaseOutcome =
  | {
      /** The running kernel is the recipe's built kernel (or the recipe builds none): up goes on. */
      proceed: true;
      /** The running release (the built one when the recipe builds a kernel). */
      release: string;
      /** Set when the recipe builds a kernel: the phase up continues from. */
      phase?: ResumePhase;
      /** The built kernel tree (O= dir): netmap's --kernel-dir. */
      kernelDir?: string;
      /** Its full sources (the tree's `source` link): netmap's --kernel-sources. */
      kernelSources?: string;
      message?: string;
    }
  | {
      /** The kernel is installed and set for the next boot, or up still waits for that boot. */
      proceed: false;
      phase: ResumePhase;
      release: string;
      message: string;
      /** True when this run installed the kernel (false: it only found the record waiting). */
      installed: boolean;
      /** True when the reboot command was run. */
      rebooting: boolean;
      /** The command that set the next boot (grub-reboot), when it ran now. */
      nextBoot?: string[];
      /** The resume unit written (path), when --reboot installed one. */
      unit?: string;
      /** True when the kernel came from the build cache (nothing compiled). */
      cached?: boolean;
    };

const SYSTEM_UNIT_DIR = "/etc/systemd/system";
const WANTS = "multi-user.target.wants";

/** node and this checkout's CLI entry: what the unit runs after the reboot. */
export function defaultCli(): string[] {
  return [process.execPath, fileURLToPath(new URL("../cli/main.js", import.meta.url))];
}

const isRealHost = (installRoot: string): boolean => resolve(installRoot) === "/";
const defaultUnitDir = (installRoot: string): string =>
  isRealHost(installRoot) ? SYSTEM_UNIT_DIR : join(installRoot, SYSTEM_UNIT_DIR);

/** The built tree's full sources: kbuild leaves a `source` link in the O= dir. */
function sourcesOf(buildDir: string | undefined): string | undefined {
  if (!buildDir) return undefined;
  try {
    return realpathSync(join(buildDir, "source"));
  } catch {
    return undefined;
  }
}

function proceedWith(
  state: ResumeState | undefined,
  release: string,
  buildDir: string | undefined,
  message: string,
): KernelPhaseOutcome {
  const kernelSources = sourcesOf(buildDir);
  return {
    proceed: true,
    release,
    ...(state ? { phase: state.phase } : {}),
    ...(buildDir ? { kernelDir: buildDir } : {}),
    ...(kernelSources ? { kernelSources } : {}),
    message,
  };
}

/**
 * The recipe `up` builds netmap with once the built kernel runs: no kernel build any more, the
 * running kernel (it is the built one: runKernelPhase checked the release), its O= tree as the
 * build dir and its sources as the kernel sources.
 */
export function recipeAfterKernel(recipe: Recipe, outcome: KernelPhaseOutcome): Recipe {
  if (!outcome.proceed || !recipe.kernel.build) return recipe;
  const { localversion: _drop, ...kernel } = recipe.kernel;
  return {
    ...recipe,
    kernel: {
      ...kernel,
      build: false,
      version: "running",
      ...(outcome.kernelDir ? { buildDir: outcome.kernelDir } : {}),
      ...(outcome.kernelSources ? { sources: { kind: "local", path: outcome.kernelSources } } : {}),
    },
  };
}

async function enableUnit(unitDir: string, realHost: boolean, exec: Exec): Promise<void> {
  if (realHost) {
    // systemctl finds a unit in its search path by name; elsewhere it links the file.
    const arg = resolve(unitDir) === SYSTEM_UNIT_DIR ? RESUME_UNIT_NAME : join(unitDir, RESUME_UNIT_NAME);
    await exec.run(["systemctl", "enable", arg], { mutates: true });
    return;
  }
  // A staging root: what `systemctl enable` would leave there. Relative, so it resolves the same
  // once the tree is the real root.
  const wants = join(unitDir, WANTS);
  mkdirSync(wants, { recursive: true });
  const link = join(wants, RESUME_UNIT_NAME);
  rmSync(link, { force: true });
  symlinkSync(join("..", RESUME_UNIT_NAME), link);
}

/** Where a kernel-building `up` stands, and what it does now (see the module comment). */
export async function runKernelPhase(o: KernelPhaseOptions): Promise<KernelPhaseOutcome> {
  const { run, exec } = o;
  if (!run.recipe.kernel.build) return { proceed: true, release: o.runningRelease };
  const installRoot = o.installRoot ?? "/";
  const realHost = isRealHost(installRoot);
  const recipePath = resolve(o.recipePath ?? run.recipeFile);
  const progress = o.onProgress ?? (() => {});
  const state = readResume(run.stateDir);
  if (state?.recipe.startsWith("/") && state.recipe !== recipePath)
    throw new UserError(
      `a kernel run of another recipe is in progress: ${state.recipe} (kernel ${state.release}, ${state.phase})`,
      `continue it with up --recipe ${state.recipe}, or remove ${join(run.stateDir, "resume.json")} to abandon it`,
    );
  const d = decide(state, o.runningRelease);
  switch (d.action) {
    case "wait":
      return {
        proceed: false,
        phase: d.state.phase,
        release: d.state.release,
        message: d.message,
        installed: false,
        rebooting: false,
      };
    case "build-netmap":
      // From awaiting-reboot, decide() moved the record to "rebooted": keep that on disk.
      if (d.state.phase !== state?.phase) writeResume(run.stateDir, d.state);
      return proceedWith(
        d.state,
        d.state.release,
        d.state.buildDir,
        `running the built kernel ${d.state.release}: building netmap against it`,
      );
    case "finish":
    case "done":
      return proceedWith(
        d.state,
        d.state.release,
        d.state.buildDir,
        `kernel ${d.state.release} runs and netmap was built against it`,
      );
    case "start":
    case "install":
    case "reboot":
      // A record stopped before awaiting-reboot (a crash mid-install) starts over: the build is a
      // cache hit and the install writes the same files again.
      break;
  }

  const req: KernelBuildRequest = {
    recipe: run.recipe,
    recipePath,
    cacheDir: run.cacheDir,
    exec,
    root: run.root,
    driverCatalog: o.driverCatalog,
    onProgress: progress,
    ...o.build,
  };
  // Build (or take from the cache) first: if that kernel already runs (built and booted before,
  // record since closed), there is nothing to install and no reboot to wait for.
  const built = await buildAndInstallKernel(req);
  if (built.release === o.runningRelease)
    return proceedWith(
      undefined,
      built.release,
      built.buildDir,
      `the recipe's kernel ${built.release} is the running one: nothing to install`,
    );
  const inst = await buildAndInstallKernel({
    ...req,
    installRoot,
    setNextBoot: realHost,
    stateDir: run.stateDir,
  });
  const phase = readResume(run.stateDir)?.phase ?? "awaiting-reboot";
  const where = realHost ? "" : ` into ${installRoot}`;
  const next = inst.nextBoot ? ", set for the next boot only" : "";
  const out: Extract<KernelPhaseOutcome, { proceed: false }> = {
    proceed: false,
    phase,
    release: inst.release,
    message: `kernel ${inst.release} installed${where}${next}; reboot into it and run up again (or up --reboot)`,
    installed: true,
    rebooting: false,
    cached: built.cached,
    ...(inst.nextBoot ? { nextBoot: inst.nextBoot } : {}),
  };
  if (!o.reboot) return out;

  const unitDir = o.unitDir ?? defaultUnitDir(installRoot);
  mkdirSync(unitDir, { recursive: true });
  const unit = join(unitDir, RESUME_UNIT_NAME);
  writeFileAtomic(
    unit,
    renderResumeUnit({ cli: o.cli ?? defaultCli(), recipe: recipePath, stateDir: resolve(run.stateDir) }),
  );
  await enableUnit(unitDir, realHost, exec);
  out.unit = unit;
  const reboot = o.rebootCommand ?? (realHost ? REBOOT_ARGV : undefined);
  if (!reboot) {
    out.message = `kernel ${inst.release} installed${where}, resume unit ${unit} enabled; a staging root is not rebooted`;
    return out;
  }
  progress(`rebooting into ${inst.release} (${reboot.join(" ")}); ${RESUME_UNIT_NAME} continues up`);
  await exec.run(reboot, { mutates: true });
  out.rebooting = true;
  out.message = `kernel ${inst.release} installed${next}; rebooting into it, ${RESUME_UNIT_NAME} continues up after the boot`;
  return out;
}

/** The outcome as `up --json` shows it (UpReport.kernel). */
export function kernelReport(o: KernelPhaseOutcome): UpKernelReport {
  if (o.proceed)
    return {
      release: o.release,
      phase: o.phase ?? null,
      proceeded: true,
      ...(o.message ? { message: o.message } : {}),
    };
  return {
    release: o.release,
    phase: o.phase,
    proceeded: false,
    message: o.message,
    installed: o.installed,
    rebooting: o.rebooting,
    ...(o.nextBoot ? { nextBoot: o.nextBoot } : {}),
    ...(o.unit ? { unit: o.unit } : {}),
    ...(o.cached !== undefined ? { cached: o.cached } : {}),
  };
}

/** The kernel part of `up` for a kernel.build recipe, as `up --json` shows it (UpReport.kernel). */
export interface UpKernelReport {
  release: string;
  /** The resume.json phase, null when no record was needed (the built kernel already runs). */
  phase: string | null;
  /** True when up went on to build netmap against the running built kernel. */
  proceeded: boolean;
  message?: string;
  /** This run installed the kernel. */
  installed?: boolean;
  /** The reboot command was run: the host is going down, the resume unit continues. */
  rebooting?: boolean;
  /** The command that set the next boot (grub-reboot). */
  nextBoot?: string[];
  /** The resume unit file written. */
  unit?: string;
  /** The kernel came from the build cache (nothing compiled). */
  cached?: boolean;
  /** resume.json was closed and the unit removed after netmap came up. */
  finished?: boolean;
}

/** What finishKernelPhase did. */
export interface KernelFinish {
  /** False when there was no record, or it still waits for the reboot (nothing changed then). */
  finished: boolean;
  release?: string;
  unitRemoved: boolean;
}

/**
 * After netmap is up against the built kernel: advance the record to "done", remove the resume
 * unit (disabled first on the real host) and the record. Safe to call again.
 */
export async function finishKernelPhase(
  stateDir: string,
  unitDir: string,
  realHost: boolean,
  exec?: Exec,
): Promise<KernelFinish> {
  let s = readResume(stateDir);
  if (s && !["rebooted", "netmap-built", "done"].includes(s.phase))
    return { finished: false, release: s.release, unitRemoved: false };
  if (s?.phase === "rebooted") s = advance(s, "netmap-built");
  if (s?.phase === "netmap-built") {
    s = advance(s, "done");
    writeResume(stateDir, s);
  }
  const unit = join(unitDir, RESUME_UNIT_NAME);
  const link = join(unitDir, WANTS, RESUME_UNIT_NAME);
  const present = existsSync(unit) || isLink(link);
  if (present && realHost) {
    if (!exec) throw new Error("finishKernelPhase: exec is required on the real host (systemctl disable)");
    await exec.run(["systemctl", "disable", RESUME_UNIT_NAME], { mutates: true, reject: false });
  }
  rmSync(link, { force: true });
  rmSync(unit, { force: true });
  if (s) clearResume(stateDir);
  return { finished: s !== undefined, ...(s ? { release: s.release } : {}), unitRemoved: present };
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The default unit dir for an install root ("/" -> /etc/systemd/system). */
export const resumeUnitDir = defaultUnitDir;
