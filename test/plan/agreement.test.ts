import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { buildSteps, runBuild } from "../../toolkit/build/pipeline.js";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { createExec, type ExecLogEntry } from "../../toolkit/core/exec.js";
import { gatherPlanInputs } from "../../toolkit/plan/inputs.js";
import { buildPlan } from "../../toolkit/plan/plan.js";
import { loadRecipe } from "../../toolkit/recipe/load.js";
import { applyOverrides } from "../../toolkit/recipe/overrides.js";
import { agreement } from "../helpers/agreement.js";
import { debianKernel } from "../helpers/debian-kernel.js";
import { legacyStandinDir, standinDir } from "../helpers/kernel-sources.js";
import { repoRoot } from "../helpers/paths.js";
import { deriveSeedRecipe } from "../helpers/seed-recipe.js";

/*
 * The agreement test (issue 12): `plan` prints the commands, then `build` runs through a
 * recording exec on this host (Debian's installed headers and linux-source package, the
 * stand-in as netmap): every command the build runs must be in the plan printed before it
 * (placeholders <run>, <tmp>, <key> stand for what only the run knows), and every command
 * the plan names for the build steps must run. Read-only probes the build makes to learn
 * about the host are the exception, listed in PROBES.
 */

const debian = debianKernel();
const catalog = loadDriverCatalog();
const knownDrivers = catalog.list().map((d) => d.token);
// One cache for the recipes in turn: the first unpacks the distro's sources, the second finds them.
const cacheDir = join(repoRoot, ".cache", "agreement", `run-${process.pid}`);
const stateDir = join(cacheDir, "state");
const BUILD_STEPS = new Set(buildSteps().map((s) => s.describe().id));

/** Probes: they read the host (compiler identity, kbuild's variables, `make -n` for the bar's end). */
const PROBES: Array<(argv: readonly string[]) => boolean> = [
  (a) => a[0] === "cc" && a[1] === "--version",
  (a) => a.includes("np-print-vars"),
  (a) => a[0] === "make" && a[1] === "-n",
];

test.after.always(() => rmSync(cacheDir, { recursive: true, force: true }));

/**
 * The recipes, with the stand-in as netmap on Debian's kernel. The seed's own kernel (2.6.37 with
 * gcc 4.x) is out of reach here: its recipe is derived with the running kernel (seed-recipe.ts),
 * and its netmap is the stand-in's old layout (make KSRC= SRC=, netmap_lin.ko).
 */
const RECIPES: Array<{ name: string; file: () => string; netmap: string }> = [
  { name: "default", file: () => join(repoRoot, "recipes", "default.yaml"), netmap: standinDir },
  { name: "debian-12", file: () => join(repoRoot, "recipes", "debian-12.yaml"), netmap: standinDir },
  {
    name: "seed (on the running kernel)",
    file: () => {
      mkdirSync(cacheDir, { recursive: true });
      return deriveSeedRecipe(join(cacheDir, "seed.yaml"));
    },
    netmap: legacyStandinDir,
  },
];

for (const { name, file, netmap } of RECIPES) {
  test.serial(
    `${name}: every command build runs is in the plan printed before it, every planned one runs, and the plan names the cache key (a miss, then a hit that runs nothing)`,
    async (t) => {
      const { recipe } = applyOverrides(
        loadRecipe(file(), { knownDrivers }).recipe,
        { netmapSource: netmap, kernelDir: debian.buildDir, drivers: "e1000" },
        { knownDrivers },
      );
      const inputs = await gatherPlanInputs({
        recipe,
        catalog,
        root: "/",
        exec: createExec({ dryRun: true }),
        cacheDir,
        stateDir,
      });
      const plan = buildPlan(inputs);
      t.is(plan.targetRelease, debian.release, "the plan targets the --kernel-dir's release");
      const planned = plan.steps.filter((s) => BUILD_STEPS.has(s.id)).flatMap((s) => s.commands);
      t.true(planned.length > 0);

      const ran: ExecLogEntry[] = [];
      const res = await runBuild(
        { recipe, cacheDir, jobs: inputs.jobs, catalog },
        { exec: createExec({ onCommand: (e) => ran.push(e) }) },
      );
      if (!res.ok) return t.fail(`build failed: ${String((res.error as Error)?.message)}`);
      const commands = ran.filter((e) => !PROBES.some((p) => p(e.argv)));
      const { notPlanned, notRun } = agreement(planned, commands);
      for (const m of [...notPlanned, ...notRun]) t.fail(m);
      if (notPlanned.length + notRun.length === 0) t.pass();
      // The plan named the key the build used, and that the cache did not hold it yet.
      t.false(res.cacheHit);
      t.deepEqual(plan.buildCache, { key: res.key, hit: false });
      t.log(
        `${name}: ${commands.length} commands run, ${planned.length} planned, ${ran.length - commands.length} probes`,
      );

      // Planned again: a cache hit, and the build steps name no command; the build then runs none.
      const again = buildPlan(
        await gatherPlanInputs({
          recipe,
          catalog,
          root: "/",
          exec: createExec({ dryRun: true }),
          cacheDir,
          stateDir,
        }),
      );
      t.deepEqual(again.buildCache, { key: res.key, hit: true });
      t.deepEqual(
        again.steps.filter((s) => BUILD_STEPS.has(s.id)).flatMap((s) => s.commands),
        [],
      );
      const ranAgain: ExecLogEntry[] = [];
      const hit = await runBuild(
        { recipe, cacheDir, jobs: inputs.jobs, catalog },
        { exec: createExec({ onCommand: (e) => ranAgain.push(e) }) },
      );
      t.true(hit.ok && hit.cacheHit);
      t.deepEqual(
        ranAgain.filter((e) => !PROBES.some((p) => p(e.argv))).map((e) => e.argv),
        [],
      );
    },
  );
}
