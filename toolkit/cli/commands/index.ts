import type { Command } from "commander";

/** What a command module exports: it adds its subcommand to the program. */
export interface CommandModule {
  register(program: Command): void;
}

/**
 * Every subcommand, by name, loaded on demand: a run imports only the module of the command it
 * runs (start-up time: `status` must answer well under a second), `--help` imports them all.
 * Listed in the order `--help` shows them.
 */
export const commandLoaders: Record<string, () => Promise<CommandModule>> = {
  doctor: async () => (await import("./doctor.js")).doctorCommand,
  status: async () => (await import("./status.js")).statusCommand,
  recipe: async () => (await import("./recipe.js")).recipeCommand,
  plan: async () => (await import("./plan.js")).planCommand,
  build: async () => (await import("./build.js")).buildCommand,
  fetch: async () => (await import("./fetch.js")).fetchCommand,
  kernel: async () => (await import("./kernel.js")).kernelCommand,
  up: async () => (await import("./up.js")).upCommand,
  down: async () => (await import("./down.js")).downCommand,
  confirm: async () => (await import("./confirm.js")).confirmCommand,
  try: async () => (await import("./try.js")).tryCommand,
  deadman: async () => (await import("./deadman.js")).deadmanCommand,
};

/** The modules a run needs: the named command's alone, or all of them (help, unknown command). */
export async function loadCommands(argv: readonly string[]): Promise<CommandModule[]> {
  const name = argv.slice(2).find((a) => !a.startsWith("-"));
  const only = name === undefined || name === "help" ? undefined : commandLoaders[name];
  return Promise.all(only ? [only()] : Object.values(commandLoaders).map((load) => load()));
}
