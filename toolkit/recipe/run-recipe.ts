import type { DriverCatalog } from "../catalog/drivers.js";
import type { Recipe } from "./schema.js";

/** The options every recipe-driven command (plan, build, up, try) shares. */
export interface RecipeRunFlags {
  recipe?: string;
  netmapSource?: string;
  kernelDir?: string;
  kernelSources?: string;
  drivers?: string;
  cacheDir?: string;
  stateDir?: string;
  root?: string;
  json?: boolean;
}

export interface RunRecipe {
  recipe: Recipe;
  recipeFile: string;
  /** One line per flag override applied (for the run record). */
  overrides: string[];
  catalog: DriverCatalog;
  cacheDir: string;
  stateDir: string;
  root: string;
}
