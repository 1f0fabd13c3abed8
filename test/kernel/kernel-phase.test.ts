import { spawnSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { release as osRelease } from "node:os";
import { join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import type { RunRecipe } from "../../toolkit/cli/recipe-options.js";
import { UserError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import { ensureBuildSources } from "../../toolkit/kernel/build-sources.js";
import { readResume, resumePath, startResume, writeResume } from "../../toolkit/kernel/resume.js";
import { RESUME_UNIT_NAME } from "../../toolkit/kernel/resume-unit.js";
import { loadRecipe } from "../../toolkit/recipe/load.js";
import {
  finishKernelPhase,
  type KernelPhaseOptions,
  recipeAfterKernel,
  runKernelPhase,
} from "../../toolkit/up/kernel-phase.js";
import { kernelTestCache, testKernelRecipeYaml, testKernelSources } from "../helpers/kernel-build.js";
import { standinDir } from "../helpers/kernel-sources.js";
import { cliPath, repoRoot } from "../helpers/paths.js";
import { tempDirs } from "../helpers/temp.js";

/**
 * Must hold: `up`'s kernel phase for a kernel.build recipe, with the real toolkit-built 6.1 kernel
 * (the inputs of test/kernel/kernel-guest.test.ts, so the build is a cache hit once that ran),
 * installed into a staging root: resume.json awaiting-reboot, image and modules staged, the resume
 * unit written and enabled, the reboot command run; then the same release again waits, the built
 * release proceeds, and finishing removes the record and the unit.
 */

const catalog = loadDriverCatalog();
const knownDrivers = catalog.list().map((d) => d.token);
const exec = createExec();
const tmp = tempDirs(test);
const running = osRelease();

let srcDir = "";
let srcVersion = "";
let recipeFile = "";
let stateDir = "";
let stage = "";
let unitDir = "";
let marker = "";
let release = "";
let buildDir = "";

async function setup(): Promise<RunRecipe> {
  if (!srcDir) {
    const src = await ensureBuildSources(testKernelSources(), { cacheDir: kernelTestCache, exec });
    srcDir = src.dir;
    srcVersion = src.version;
    const dir = tmp("np-kphase-recipe-");
    recipeFile = join(dir, "kernel-phase.yaml");
    writeFileSync(recipeFile, testKernelRecipeYaml("kernel-phase", src, standinDir));
    stateDir = tmp("np-kphase-state-");
    stage = tmp("np-kphase-root-");
    unitDir = join(stage, "etc/systemd/system");
    marker = join(tmp("np-kphase-marker-"), "rebooted");
  }
  return {
    recipe: loadRecipe(recipeFile, { knownDrivers }).recipe,
    recipeFile,
    overrides: [],
    catalog,
    cacheDir: kernelTestCache,
    stateDir,
    root: "/",
  };
}

const phaseOptions = (run: RunRecipe, over: Partial<KernelPhaseOptions> = {}): KernelPhaseOptions => ({
  run,
  exec,
  runningRelease: running,
  installRoot: stage,
  reboot: true,
  rebootCommand: ["touch", marker],
  driverCatalog: catalog,
  // The kernel-guest test's inputs (distro tarball, tinyconfig base): the same cache key.
  build: { sources: testKernelSources(), base: { kind: "tiny" }, jobs: 2 },
  ...over,
});

test.serial(
  "kernel phase: builds (cache), installs into the root, writes and enables the resume unit, reboots",
  async (t) => {
    t.timeout(40 * 60_000);
    const run = await setup();
    const t0 = performance.now();
    const out = await runKernelPhase(phaseOptions(run));
    const secs = Math.round((performance.now() - t0) / 1000);
    if (out.proceed) return t.fail("expected the phase to stop for the reboot");
    release = out.release;
    t.log(`kernel ${release}: ${out.cached ? "cache hit" : "compiled"}, phase done in ${secs} s`);
    t.is(release, `${srcVersion}-np`);
    t.is(out.phase, "awaiting-reboot");
    t.true(out.installed);
    t.true(out.rebooting);
    t.is(out.nextBoot, undefined, "a staging root never runs grub-reboot");
    t.regex(out.message, /rebooting into it/);

    const s = readResume(stateDir);
    t.is(s?.phase, "awaiting-reboot");
    t.is(s?.release, release);
    t.is(s?.recipe, recipeFile);
    buildDir = s?.buildDir ?? "";
    t.true(existsSync(join(buildDir, ".config")));

    t.true(existsSync(join(stage, "lib/modules", release, "modules.dep")));
    t.true(
      existsSync(join(stage, "lib/modules", release, "kernel/drivers/net/ethernet/intel/e1000/e1000.ko")),
    );
    t.true(existsSync(join(stage, "boot", `vmlinuz-${release}`)));

    const unit = join(unitDir, RESUME_UNIT_NAME);
    t.is(out.unit, unit);
    const text = readFileSync(unit, "utf8");
    t.true(
      text.includes(
        `ExecStart=${process.execPath} ${cliPath} up --recipe ${recipeFile} --state-dir ${stateDir} --resume\n`,
      ),
      text,
    );
    t.true(text.includes(`ConditionPathExists=${stateDir}/resume.json\n`));
    const link = join(unitDir, "multi-user.target.wants", RESUME_UNIT_NAME);
    t.true(lstatSync(link).isSymbolicLink());
    t.is(readlinkSync(link), `../${RESUME_UNIT_NAME}`);
    t.is(realpathSync(link), realpathSync(unit));
    t.true(existsSync(marker), "the reboot command ran");
  },
);

test.serial("kernel phase: the old kernel still runs: stop, say reboot, run nothing", async (t) => {
  if (!release) return t.fail("the install test failed");
  const run = await setup();
  rmSync(marker, { force: true });
  const out = await runKernelPhase(phaseOptions(run));
  if (out.proceed) return t.fail("expected a wait");
  t.is(out.phase, "awaiting-reboot");
  t.false(out.rebooting);
  t.regex(
    out.message,
    new RegExp(`still running ${running.replace(/[.+]/g, "\\$&")}, reboot into ${release}`),
  );
  t.false(existsSync(marker), "no second reboot");
  t.is(readResume(stateDir)?.phase, "awaiting-reboot");
});

test.serial("kernel phase: the built kernel runs: proceed against its tree, record rebooted", async (t) => {
  if (!release) return t.fail("the install test failed");
  const run = await setup();
  const out = await runKernelPhase(phaseOptions(run, { runningRelease: release }));
  if (!out.proceed) return t.fail(`expected to proceed: ${out.message}`);
  t.is(out.release, release);
  t.is(out.phase, "rebooted");
  t.is(out.kernelDir, buildDir);
  t.is(out.kernelSources, realpathSync(srcDir));
  t.is(readResume(stateDir)?.phase, "rebooted");
  // What up then builds netmap with: no kernel build, the built tree and its sources.
  const after = recipeAfterKernel(run.recipe, out);
  t.false(after.kernel.build);
  t.is(after.kernel.version, "running");
  t.is(after.kernel.buildDir, buildDir);
  t.deepEqual(after.kernel.sources, { kind: "local", path: realpathSync(srcDir) });
  t.is(after.kernel.localversion, undefined);
  // Same again (up failed after the reboot and runs again): still proceeds.
  const again = await runKernelPhase(phaseOptions(run, { runningRelease: release }));
  t.true(again.proceed);
});

test.serial("kernel phase: finish closes the record and removes the unit", async (t) => {
  if (!release) return t.fail("the install test failed");
  const f = await finishKernelPhase(stateDir, unitDir, false);
  t.true(f.finished);
  t.is(f.release, release);
  t.true(f.unitRemoved);
  t.false(existsSync(resumePath(stateDir)));
  t.false(existsSync(join(unitDir, RESUME_UNIT_NAME)));
  t.false(existsSync(join(unitDir, "multi-user.target.wants", RESUME_UNIT_NAME)));
  const again = await finishKernelPhase(stateDir, unitDir, false);
  t.false(again.finished);
  t.false(again.unitRemoved);
});

test.serial(
  "kernel phase: the recipe's kernel already runs, no record: proceed, install nothing",
  async (t) => {
    if (!release) return t.fail("the install test failed");
    const run = await setup();
    const root = tmp("np-kphase-root2-");
    const out = await runKernelPhase(phaseOptions(run, { runningRelease: release, installRoot: root }));
    t.true(out.proceed);
    if (out.proceed) t.is(out.kernelDir, buildDir);
    t.deepEqual(readdirSync(root), []);
    t.false(existsSync(resumePath(stateDir)));
  },
);

test("kernel phase: a recipe without kernel.build proceeds and touches nothing", async (t) => {
  const state = tmp("np-kphase-plain-");
  const root = tmp("np-kphase-plainroot-");
  const recipe = loadRecipe(join(repoRoot, "recipes/default.yaml"), { knownDrivers }).recipe;
  const out = await runKernelPhase({
    run: {
      recipe,
      recipeFile: "default.yaml",
      overrides: [],
      catalog,
      cacheDir: state,
      stateDir: state,
      root: "/",
    },
    exec,
    runningRelease: running,
    installRoot: root,
    reboot: true,
    rebootCommand: ["false"],
    driverCatalog: catalog,
  });
  t.deepEqual(out, { proceed: true, release: running });
  t.deepEqual(readdirSync(state), []);
  t.deepEqual(readdirSync(root), []);
});

test("kernel phase: a record of another recipe is refused, naming it", async (t) => {
  const run = await setup();
  const state = tmp("np-kphase-other-");
  writeResume(state, startResume({ release: "6.1.192-x", recipe: "/elsewhere/other.yaml" }));
  const err = await t.throwsAsync(runKernelPhase(phaseOptions({ ...run, stateDir: state })), {
    instanceOf: UserError,
  });
  t.regex(err?.message ?? "", /another recipe is in progress: \/elsewhere\/other\.yaml/);
  t.is(readResume(state)?.phase, "kernel-built", "the record is left alone");
});

test("up --resume without a record: nothing to resume, exit 0", (t) => {
  const state = tmp("np-kphase-cli-");
  const r = spawnSync(process.execPath, [cliPath, "up", "--resume", "--state-dir", state], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /nothing to resume/);
});
