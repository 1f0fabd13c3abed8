import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { loadKernelCatalog } from "../../toolkit/catalog/kernels.js";
import { createExec, type Exec, type ExecLogEntry, type ExecResult } from "../../toolkit/core/exec.js";
import { parseKernelConfig } from "../../toolkit/host/kconfig.js";
import { ensureBuildSources } from "../../toolkit/kernel/build-sources.js";
import { kernelConfigStep } from "../../toolkit/kernel/config-step.js";
import { kernelInstallStep } from "../../toolkit/kernel/install-step.js";
import type { KernelPhaseContext } from "../../toolkit/kernel/phase.js";
import { gatherPlanInputs } from "../../toolkit/plan/inputs.js";
import { buildPlan, type Plan } from "../../toolkit/plan/plan.js";
import { parseRecipeText } from "../../toolkit/recipe/load.js";
import type { Recipe } from "../../toolkit/recipe/schema.js";
import type { PlannedCommand } from "../../toolkit/runner/step.js";
import { agreement } from "../helpers/agreement.js";
import { debianKernel } from "../helpers/debian-kernel.js";
import {
  buildTestKernel,
  kernelTestCache,
  testKernelRecipeYaml,
  testKernelSources,
} from "../helpers/kernel-build.js";
import { standinDir } from "../helpers/kernel-sources.js";
import { repoRoot } from "../helpers/paths.js";
import { tempDirs } from "../helpers/temp.js";

/*
 * The agreement test of the kernel phase (issue 12): `plan` of a kernel-building recipe prints
 * the kernel steps' commands, then the kernel phase runs through a recording exec, installing
 * into a staging root: every command it runs must be in the plan (placeholders for what only the
 * run knows), and every command the plan names for the kernel steps must run. The recipe is the
 * toolkit-built test kernel's (tinyconfig + guest-minimal, e1000 =m, localversion np, Debian's
 * linux-source tarball), so once another test built it this is a cache hit: the plan must then
 * say so and plan no configure or compile, and none may run. A cold cache compiles it here
 * (minutes) and the compile commands are checked the same way.
 *
 * The configure path is checked on its own as well: the kernel-config step, described and run
 * into a scratch O= dir (tinyconfig and olddefconfig only: seconds, no compile). And the
 * kernel.install deb path's commands (bindeb-pkg, dpkg -x, depmod -b), described and run through
 * a stand-in exec that records them and leaves the .deb kbuild would (a real bindeb-pkg takes
 * minutes: test/kernel/kernel-package.test.ts runs it).
 */

const catalog = loadDriverCatalog();
const knownDrivers = catalog.list().map((d) => d.token);
const tmp = tempDirs(test);
const KERNEL_STEPS = new Set(["kernel-fetch", "kernel-config", "kernel-build", "kernel-install"]);

/** Read-only probes the phase makes to learn about the host: the compiler's identity and version. */
const PROBES: Array<(argv: readonly string[]) => boolean> = [
  (a) => a[0] === "cc" && a[1] === "--version",
  (a) => a[0] === "cc" && a[1] === "-dumpfullversion",
];
const isProbe = (e: ExecLogEntry) => PROBES.some((p) => p(e.argv));

/** The test kernel's overrides, as buildTestKernel passes them (the same cache key). */
const overrides = () => ({ sources: testKernelSources(), base: { kind: "tiny" as const }, jobs: 2 });

/** What one kernel step runs with, outside buildAndInstallKernel (the test runs a step alone). */
const stepContext = (exec: Exec, r: Recipe, phase: KernelPhaseContext["phase"]): KernelPhaseContext => ({
  exec,
  dryRun: false,
  data: {},
  req: { recipe: r, cacheDir: kernelTestCache, exec, driverCatalog: catalog, ...overrides() },
  phase,
  kernels: loadKernelCatalog(),
  gcc: null,
  progress: () => {},
  result: { compiled: 0, buildMs: 0, warnings: [] },
});

let recipe: Recipe | undefined;
async function testRecipe(): Promise<Recipe> {
  if (recipe) return recipe;
  const src = await ensureBuildSources(testKernelSources(), {
    cacheDir: kernelTestCache,
    exec: createExec(),
  });
  recipe = parseRecipeText(
    testKernelRecipeYaml("agreement-kernel", src, standinDir),
    "agreement-kernel.yaml",
    { knownDrivers },
    repoRoot,
  );
  return recipe;
}

async function planFor(
  installRoot: string,
): Promise<{ plan: Plan; inputs: Awaited<ReturnType<typeof gatherPlanInputs>> }> {
  const inputs = await gatherPlanInputs({
    recipe: await testRecipe(),
    catalog,
    root: "/",
    exec: createExec({ dryRun: true }),
    cacheDir: kernelTestCache,
    stateDir: tmp("np-agk-state-"),
    kernel: { ...overrides(), installRoot },
  });
  return { plan: buildPlan(inputs), inputs };
}

const kernelCommands = (plan: Plan): PlannedCommand[] =>
  plan.steps.filter((s) => KERNEL_STEPS.has(s.id)).flatMap((s) => s.commands);

test.serial(
  "kernel phase: every command it runs is in the plan printed before it, and every planned one runs",
  async (t) => {
    t.timeout(40 * 60_000);
    const stage = tmp("np-agk-root-");
    const { plan, inputs } = await planFor(stage);
    const kp = inputs.kernelPhase;
    if (!kp) return t.fail("gatherPlanInputs resolved no kernel phase");
    t.deepEqual(
      plan.blockers.filter((b) => b.id.startsWith("kernel-phase")),
      [],
    );
    t.is(plan.targetRelease, `${debianKernel().version}-np`, "the release the build produces");
    const planned = kernelCommands(plan);
    const compile = (c: { argv: readonly string[] }) =>
      c.argv.includes("bzImage") || c.argv.includes("olddefconfig");
    if (kp.cached) {
      t.deepEqual(plan.steps.find((s) => s.id === "kernel-config")?.commands, [], "cache hit: no configure");
      t.deepEqual(plan.steps.find((s) => s.id === "kernel-build")?.commands, [], "cache hit: no compile");
      t.true(
        plan.steps
          .find((s) => s.id === "kernel-build")
          ?.notes?.some((n) => n.includes(`cache hit ${kp.key}`)),
      );
    } else t.true(planned.some(compile), "a cold cache plans the compile");

    const ran: ExecLogEntry[] = [];
    const res = await buildTestKernel(
      await testRecipe(),
      catalog,
      createExec({ onCommand: (e) => ran.push(e) }),
      {
        installRoot: stage,
        jobs: 2,
      },
    );
    t.is(res.cached, kp.cached, "the plan knew whether the build dir was built");
    t.is(res.buildDir, kp.out, "the O= dir the plan named (netmap's --kernel-dir)");
    t.is(res.release, plan.targetRelease);
    if (res.cached) t.false(ran.some(compile), "a cache hit configures and compiles nothing");
    t.true(existsSync(join(stage, "lib/modules", res.release, "modules.dep")));
    t.true(existsSync(join(stage, "boot", `vmlinuz-${res.release}`)));

    const commands = ran.filter((e) => !isProbe(e));
    const { notPlanned, notRun } = agreement(planned, commands);
    for (const m of [...notPlanned, ...notRun]) t.fail(m);
    t.true(commands.length > 0);
    t.log(
      `${res.cached ? "cache hit" : `compiled ${res.compiled} objects`}: ${commands.length} commands run, ${planned.length} planned, ${ran.length - commands.length} probes`,
    );
    for (const c of commands) t.log(`  ran: ${c.argv.join(" ")}`);
  },
);

test.serial(
  "kernel-config on a cache miss: what it describes is what it runs (scratch O= dir, no compile)",
  async (t) => {
    t.timeout(10 * 60_000);
    const { inputs } = await planFor(tmp("np-agk-root2-"));
    const kp = inputs.kernelPhase;
    if (!kp) return t.fail("gatherPlanInputs resolved no kernel phase");
    // The same resolve with only the O= dir moved to a scratch one nothing was built in.
    const phase = { ...kp, out: tmp("np-agk-out-"), cached: false };
    const step = kernelConfigStep(phase);
    const d = step.describe();
    t.true(d.commands.some((c) => c.argv.includes("tinyconfig")));
    t.true(d.commands.some((c) => c.argv.includes("olddefconfig")));
    t.true(d.commands.some((c) => c.argv.at(-1) === "LOCALVERSION_AUTO" && c.argv.includes("-np")));

    const ran: ExecLogEntry[] = [];
    const exec = createExec({ onCommand: (e) => ran.push(e) });
    await step.run(stepContext(exec, kp.recipe, phase), { progress: () => {}, logFile: undefined });
    const commands = ran.filter((e) => !isProbe(e));
    const { notPlanned, notRun } = agreement(d.commands, commands);
    for (const m of [...notPlanned, ...notRun]) t.fail(m);
    t.is(commands.length, d.commands.length, "each planned command runs once");
    const values = parseKernelConfig(readFileSync(join(phase.out, ".config"), "utf8"));
    t.is(values.get("CONFIG_E1000"), "m");
    t.is(values.get("CONFIG_LOCALVERSION"), "-np");
    // The cached build was configured the same way from the same inputs (that is what its key says).
    const cachedConfig = join(kp.out, ".config");
    if (kp.cached && existsSync(cachedConfig))
      t.deepEqual(
        values,
        parseKernelConfig(readFileSync(cachedConfig, "utf8")),
        "the scratch config equals the cached build's",
      );
  },
);

test("kernel-install, kernel.install deb into a staging root: what it describes is what it runs (commands recorded, not run)", async (t) => {
  const { inputs } = await planFor(tmp("np-agk-root3-"));
  const kp = inputs.kernelPhase;
  if (!kp) return t.fail("gatherPlanInputs resolved no kernel phase");
  const out = join(tmp("np-agk-deb-"), "build");
  mkdirSync(join(out, "include", "config"), { recursive: true });
  writeFileSync(join(out, "include", "config", "kernel.release"), `${kp.release}\n`);
  const stage = tmp("np-agk-debroot-");
  const phase = {
    ...kp,
    out,
    install: { root: stage, realHost: false, mode: "deb" as const, setNextBoot: false },
  };
  const step = kernelInstallStep(phase);
  const d = step.describe();
  t.deepEqual(
    d.commands.map((c) => c.argv[0]),
    ["make", "dpkg", "depmod"],
  );
  // Records each command; for bindeb-pkg, leaves the image package where kbuild puts it (beside O=).
  const ran: ExecLogEntry[] = [];
  const exec: Exec = {
    dryRun: false,
    start: () => {
      throw new Error("not used");
    },
    async run(argv, o = {}): Promise<ExecResult> {
      ran.push({ argv, cwd: o.cwd, exitCode: 0, durationMs: 0, skipped: false });
      if (argv.includes("bindeb-pkg"))
        writeFileSync(join(dirname(out), `linux-image-${kp.release}_1_amd64.deb`), "");
      return { argv, exitCode: 0, stdout: "", stderr: "", durationMs: 0, timedOut: false, skipped: false };
    },
  };
  const ctx = stepContext(exec, kp.recipe, phase);
  await step.run(ctx, { progress: () => {}, logFile: undefined });
  const { notPlanned, notRun } = agreement(d.commands, ran);
  for (const m of [...notPlanned, ...notRun]) t.fail(m);
  t.is(ran.length, d.commands.length);
  t.deepEqual(ctx.result.debs, [join(out, "debs", `linux-image-${kp.release}_1_amd64.deb`)]);
});
