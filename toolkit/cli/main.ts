#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { ExitCode, formatError } from "../core/errors.js";
import { projectRoot } from "../core/paths.js";
import { type CommandModule, loadCommands } from "./commands/index.js";

/** Build the program; exported so tests can parse argv without spawning a process. */
export function buildProgram(commands: CommandModule[]): Command {
  const pkg = JSON.parse(readFileSync(join(projectRoot(), "package.json"), "utf8")) as { version: string };
  const program = new Command("netmap-provision")
    .description("Provision netmap on Linux: build, back up, swap, verify, and roll back byte for byte.")
    .version(pkg.version, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `
Exit codes:
  0   success
  1   a step failed; what it changed was undone
  2   bad input (recipe, flags, arguments); nothing was changed
  3   a step failed and could not be undone; recovery commands were printed
  4   blocked: the host is not ready (see \`doctor\`); nothing was changed
  5   timed out (guest boot, module unload)
  70  internal error (a bug: please report it)`,
    );
  program.exitOverride();
  for (const m of commands) m.register(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram(await loadCommands(argv));
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version arrive here as "errors" with code 0.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    const { text, exitCode } = formatError(err);
    process.stderr.write(`${text}\n`);
    return exitCode;
  }
}

process.exitCode = await main(process.argv);
