import { join } from "node:path";
import type { Command } from "commander";
import { loadDriverCatalog } from "../catalog/drivers.js";
import { catalogDir } from "../core/paths.js";
import { loadRecipe } from "../recipe/load.js";
import { applyOverrides } from "../recipe/overrides.js";
import type { RecipeRunFlags, RunRecipe } from "../recipe/run-recipe.js";
import { resolveCacheDir } from "../sources/download.js";
import { checkDirFlag, checkDirOption } from "../state/dirs.js";
import { defaultStateDir } from "../state/lock.js";
import { hostRootOption } from "./commands/host-root.js";

export type { RecipeRunFlags, RunRecipe } from "../recipe/run-recipe.js";

/** Add the shared options; `host: false` leaves out --state-dir and --root (build-only commands). */
export function addRecipeOptions(cmd: Command, o: { host?: boolean } = {}): Command {
  cmd
    .option("-r, --recipe <file>", "the recipe (default: recipes/default.yaml)")
    .option("--netmap-source <dir>", "build netmap from this checkout instead of the recipe's source")
    .option("--kernel-dir <dir>", "the configured kernel build dir (netmap's --kernel-dir)")
    .option("--kernel-sources <dir>", "full kernel sources of the target release (netmap's --kernel-sources)")
    .option("--drivers <list>", 'drivers for this run, comma-separated, or "auto"')
    .option(
      "--cache-dir <dir>",
      "downloads, sources and builds (default $NETMAP_PROVISION_CACHE, $XDG_CACHE_HOME/netmap-provision, ~/.cache/netmap-provision)",
    )
    .option("--json", "print the result as JSON");
  if (o.host ?? true)
    cmd
      .option("--state-dir <dir>", "journal, backups and installed.json", defaultStateDir)
      .option("--root <dir>", "operate on the host tree under DIR instead of / (tests, sysroots)", "/");
  return cmd;
}

/** Load the recipe named by the flags (or the default one), apply the flag overrides, resolve dirs. */
export function loadRunRecipe(flags: RecipeRunFlags): RunRecipe {
  // Dirs first: a bad one is refused before anything is read or created (see state/dirs.ts).
  const stateDir = checkDirOption("--state-dir", flags.stateDir ?? defaultStateDir, "state");
  const cacheDir = checkDirOption(
    "--cache-dir",
    resolveCacheDir(checkDirFlag("--cache-dir", flags.cacheDir, "cache")),
    "cache",
  );
  const catalog = loadDriverCatalog();
  const knownDrivers = catalog.list().map((d) => d.token);
  const recipeFile = flags.recipe ?? join(catalogDir("recipes"), "default.yaml");
  const loaded = loadRecipe(recipeFile, { knownDrivers });
  const { recipe, applied } = applyOverrides(loaded.recipe, flags, { knownDrivers });
  return {
    recipe,
    recipeFile,
    overrides: applied,
    catalog,
    cacheDir,
    stateDir,
    root: hostRootOption(flags.root),
  };
}
