import type { Command } from "commander";

/** Every subcommand registers itself here; one module per command under cli/commands/. */
export const commandModules: Array<{ register(program: Command): void }> = [];
