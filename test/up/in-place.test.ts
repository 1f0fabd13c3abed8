import { appendFileSync, cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import type { RunRecipe } from "../../toolkit/cli/recipe-options.js";
import { createExec } from "../../toolkit/core/exec.js";
import { loadRecipe } from "../../toolkit/recipe/load.js";
import { applyOverrides } from "../../toolkit/recipe/overrides.js";
import { inPlace, inputsDigest, type LoadRecord, writeLoadRecord } from "../../toolkit/up/in-place.js";
import { standinDir } from "../helpers/kernel-sources.js";
import { fixture } from "../helpers/paths.js";
import { tempDirs } from "../helpers/temp.js";
import { kver, makeSysroot, standinArtifacts, upOnSysroot } from "../modules/sysroot.js";

/**
 * The no-change `up` decides from the state dir and the files alone whether it may only verify.
 * On a sysroot (the release check is for the real host): every reason to run the full `up`.
 */

const catalog = loadDriverCatalog();
const knownDrivers = catalog.list().map((d) => d.token);
const exec = createExec();
const tmp = tempDirs(test);

function runRecipe(
  root: string,
  stateDir: string,
  over: { netmapSource?: string; persist?: boolean } = {},
): RunRecipe {
  const { recipe } = applyOverrides(
    loadRecipe(fixture("guest", "standin.yaml"), { knownDrivers }).recipe,
    { netmapSource: over.netmapSource ?? standinDir, drivers: "e1000" },
    { knownDrivers },
  );
  if (over.persist) recipe.modules.persist = true;
  return {
    recipe,
    recipeFile: "standin.yaml",
    overrides: [],
    catalog,
    cacheDir: tmp("np-inplace-cache-"),
    stateDir,
    root,
  };
}

const record = (run: RunRecipe): LoadRecord => ({
  cursor: { ts: 12.5 },
  at: new Date().toISOString(),
  inputs: inputsDigest(run),
  netmapModule: "netmap",
  expected: [{ module: "e1000", mode: "native" }],
});

test.before(() => {
  standinArtifacts();
});

test("the same inputs and bytes: verify only; any change sends up the full way, saying why", async (t) => {
  const sr = makeSysroot();
  const run = runRecipe(sr.root, sr.stateDir);
  t.is(inPlace(run, undefined), "no record of an earlier up");
  await upOnSysroot(sr, { strategy: "updates", exec });
  writeLoadRecord(sr.stateDir, record(run));
  const ok = inPlace(run, undefined);
  t.is(typeof ok, "object", String(ok));
  t.deepEqual((ok as LoadRecord).cursor, { ts: 12.5 });

  t.is(
    inPlace({ ...run, recipe: { ...run.recipe, name: "renamed" } }, undefined),
    "the recipe or its sources changed",
  );
  t.is(
    inPlace(
      { ...run, recipe: { ...run.recipe, modules: { ...run.recipe.modules, strategy: "replace" } } },
      undefined,
    ),
    "the strategy changed",
  );
  t.is(inPlace(runRecipe(sr.root, sr.stateDir, { persist: true }), undefined), "persistence is not in place");
  const bundle = join(tmp("np-inplace-bundle-"), "b.tar");
  writeFileSync(bundle, "a bundle");
  t.is(inPlace(run, bundle), "the recipe or its sources changed", "a bundle is part of the inputs");
  // A patched module whose bytes changed on disk.
  const patched = join(sr.root, "lib/modules", kver, "updates/netmap/e1000.ko");
  writeFileSync(patched, "not the module any more");
  t.is(inPlace(run, undefined), `/lib/modules/${kver}/updates/netmap/e1000.ko changed`);
});

test("a local netmap tree is part of the inputs by content, not by path alone", (t) => {
  const copy = join(tmp("np-inplace-tree-"), "netmap");
  cpSync(standinDir, copy, { recursive: true });
  const digest = () => inputsDigest(runRecipe("/", "/nonexistent", { netmapSource: copy }));
  const before = digest();
  t.is(digest(), before, "stable for the same tree");
  appendFileSync(join(copy, "configure"), "\n# edited\n");
  t.not(digest(), before, "an edited file changes the inputs");
});
