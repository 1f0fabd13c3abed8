import type { Command } from "commander";
import { stringify } from "yaml";
import { loadDriverCatalog } from "../../catalog/drivers.js";
import { RecipeError, type RecipeIssue } from "../../core/errors.js";
import { loadRecipe } from "../../recipe/load.js";
import { badge, color, err, failWith, out, printJson } from "../output.js";

const knownDrivers = (): string[] =>
  loadDriverCatalog()
    .list()
    .map((d) => d.token);

function printIssues(issues: RecipeIssue[]): void {
  for (const i of issues) {
    err(`${i.file}:${i.line}:${i.col}: ${color.red("error")}: ${i.message}\n`);
    if (i.hint) err(`  ${color.dim(`hint: ${i.hint}`)}\n`);
  }
}

/** `recipe validate` and `recipe show`: check recipes, print one resolved. */
export const recipeCommand = {
  register(program: Command): void {
    const recipe = program
      .command("recipe")
      .description("check and print recipes (YAML files pinning kernel, netmap and drivers)");

    recipe
      .command("validate")
      .description("validate recipe files; prints FILE: ok, or each problem as file:line:col")
      .argument("<file...>", "recipe files")
      .option("--json", "print the results as JSON")
      .action((files: string[], opts: { json?: boolean }) => {
        const drivers = knownDrivers();
        const results = files.map((file) => {
          try {
            loadRecipe(file, { knownDrivers: drivers });
            return { file, ok: true, issues: [] as RecipeIssue[] };
          } catch (e) {
            if (e instanceof RecipeError) return { file, ok: false, issues: e.issues };
            throw e;
          }
        });
        if (opts.json) printJson({ results });
        else
          for (const r of results) {
            if (r.ok) out(`${badge("ok")} ${r.file}: ok\n`);
            else printIssues(r.issues);
          }
        if (results.some((r) => !r.ok)) failWith(new RecipeError(results.flatMap((r) => r.issues)));
      });

    recipe
      .command("show")
      .description("print a recipe resolved: defaults filled, paths absolute (YAML, or JSON with --json)")
      .argument("<file>", "recipe file")
      .option("--json", "print JSON instead of YAML")
      .action((file: string, opts: { json?: boolean }) => {
        const { recipe: resolved } = loadRecipe(file, { knownDrivers: knownDrivers() });
        if (opts.json) printJson(resolved);
        else out(stringify(resolved, { lineWidth: 0 }));
      });
  },
};
