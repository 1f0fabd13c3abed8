import type { Command } from "commander";
import { buildCommand } from "./build.js";
import { fetchCommand } from "./fetch.js";
import { recipeCommand } from "./recipe.js";

/** Every subcommand registers itself here; one module per command under cli/commands/. */
export const commandModules: Array<{ register(program: Command): void }> = [recipeCommand, buildCommand, fetchCommand];
