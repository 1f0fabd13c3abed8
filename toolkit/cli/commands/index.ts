import type { Command } from "commander";
import { buildCommand } from "./build.js";
import { confirmCommand } from "./confirm.js";
import { deadmanCommand } from "./deadman.js";
import { downCommand } from "./down.js";
import { doctorCommand } from "./doctor.js";
import { fetchCommand } from "./fetch.js";
import { planCommand } from "./plan.js";
import { recipeCommand } from "./recipe.js";
import { statusCommand } from "./status.js";
import { upCommand } from "./up.js";
import { tryCommand } from "./try.js";

/** Every subcommand registers itself here; one module per command under cli/commands/. */
export const commandModules: Array<{ register(program: Command): void }> = [
  recipeCommand,
  doctorCommand,
  statusCommand,
  tryCommand,
  planCommand,
  buildCommand,
  fetchCommand,
  upCommand,
  downCommand,
  confirmCommand,
  deadmanCommand,
];
