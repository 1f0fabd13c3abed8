import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { repoRoot } from "./paths.js";

/** The 2012 walkthrough as a recipe (Linux 2.6.37 built from kernel.org, netmap v11.0, e1000). */
export const seedRecipeFile: string = join(repoRoot, "recipes", "seed-2.6.37-e1000.yaml");

/**
 * The seed recipe as it can run here: its kernel (2.6.37, built with gcc 3.2 to 4.9) is out of
 * reach, so `kernel` becomes the running kernel, and `netmap.apps` the stand-in's one app
 * (pkt-gen). Everything else is the seed's own text (layout legacy-make, moduleName netmap_lin,
 * drivers, strategy replace, verify with its dmesg patterns and pkt-gen, guard). Written to `dest`.
 */
export function deriveSeedRecipe(dest: string): string {
  const doc = parseDocument(readFileSync(seedRecipeFile, "utf8"));
  doc.set("name", "seed-2.6.37-e1000-on-running-kernel");
  doc.set("kernel", doc.createNode({ version: "running" }));
  doc.setIn(["netmap", "apps"], doc.createNode(["pkt-gen"]));
  writeFileSync(
    dest,
    `# Derived from recipes/seed-2.6.37-e1000.yaml (test/helpers/seed-recipe.ts): kernel = the running one, apps = [pkt-gen].\n${doc.toString()}`,
  );
  return dest;
}
