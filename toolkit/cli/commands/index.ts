import type { Command } from "commander";
import { buildCommand } from "./build.js";
import { confirmCommand } from "./confirm.js";
import { deadmanCommand } from "./deadman.js";
import { doctorCommand } from "./doctor.js";
import { downCommand } from "./down.js";
import { fetchCommand } from "./fetch.js";
import { kernelCommand } from "./kernel.js";
import { planCommand } from "./plan.js";
import { recipeCommand } from "./recipe.js";
import { statusCommand } from "./status.js";
import { tryCommand } from "./try.js";
import { upCommand } from "./up.js";

/** Every subcommand registers itself here; one module per command under cli/commands/. */
export const commandModules: Array<{ register(program: Command): void }> = [
  recipeCommand,
  doctorCommand,
  statusCommand,
  tryCommand,
  planCommand,
  buildCommand,
  kernelCommand,
  fetchCommand,
  upCommand,
  downCommand,
  confirmCommand,
  deadmanCommand,
];
