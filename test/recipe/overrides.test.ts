import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { UserError } from "../../toolkit/core/errors.js";
import { loadRecipe } from "../../toolkit/recipe/load.js";
import { applyOverrides } from "../../toolkit/recipe/overrides.js";
import { repoRoot } from "../helpers/paths.js";

const knownDrivers = loadDriverCatalog()
  .list()
  .map((d) => d.token);
const debian = () => loadRecipe(join(repoRoot, "recipes", "debian-12.yaml"), { knownDrivers }).recipe;

test("directory flags replace the sources and the build dir, resolved against cwd", (t) => {
  const cwd = mkdtempSync(join(tmpdir(), "np-ovr-"));
  for (const d of ["netmap", "ksrc", "kbuild"]) mkdirSync(join(cwd, d));
  const before = debian();
  const { recipe, applied } = applyOverrides(
    before,
    { netmapSource: "netmap", kernelSources: "ksrc", kernelDir: "kbuild" },
    { knownDrivers, cwd },
  );
  t.deepEqual(recipe.netmap.source, { kind: "local", path: join(cwd, "netmap") });
  t.deepEqual(recipe.kernel.sources, { kind: "local", path: join(cwd, "ksrc") });
  t.is(recipe.kernel.buildDir, join(cwd, "kbuild"));
  t.is(applied.length, 3);
  t.like(before.netmap.source, { kind: "git" }, "the loaded recipe is not modified");
});

test("a missing directory or a file is a UserError naming the flag", (t) => {
  const cwd = mkdtempSync(join(tmpdir(), "np-ovr-"));
  writeFileSync(join(cwd, "file"), "x");
  const e1 = t.throws(() => applyOverrides(debian(), { kernelDir: "nope" }, { knownDrivers, cwd }), {
    instanceOf: UserError,
  });
  t.regex(e1?.message ?? "", /^--kernel-dir nope: no such directory/);
  const e2 = t.throws(() => applyOverrides(debian(), { netmapSource: "file" }, { knownDrivers, cwd }), {
    instanceOf: UserError,
  });
  t.regex(e2?.message ?? "", /^--netmap-source file: is a file/);
});

test("--drivers is checked like the recipe field and trims emulatedOk to the new list", (t) => {
  const { recipe } = applyOverrides(debian(), { drivers: "e1000, igb" }, { knownDrivers });
  t.deepEqual(recipe.drivers, ["e1000", "igb"]);
  t.deepEqual(recipe.emulatedOk, []);
  t.is(applyOverrides(debian(), { drivers: "auto" }, { knownDrivers }).recipe.drivers, "auto");
  const bad = (v: string) =>
    t.throws(() => applyOverrides(debian(), { drivers: v }, { knownDrivers }), { instanceOf: UserError })
      ?.message;
  t.regex(bad("e100") ?? "", /^--drivers: "e100" is not a known netmap driver; did you mean "e1000"\?/);
  t.regex(bad("e1000;reboot") ?? "", /shell metacharacter/);
  t.regex(bad("igb,igb") ?? "", /listed twice/);
  t.regex(bad(",") ?? "", /no driver given/);
});
