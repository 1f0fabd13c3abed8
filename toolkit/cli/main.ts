#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { ExitCode, formatError } from "../core/errors.js";
import { projectRoot } from "../core/paths.js";
import { type CommandModule, loadCommands } from "./commands/index.js";
import { err, jsonDocument, jsonText, printJson, setCommandName } from "./output.js";

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
  6   busy: another netmap-provision run holds the lock; nothing was changed
  70  internal error (a bug: please report it)`,
    );
  program.exitOverride();
  for (const m of commands) m.register(program);
  // The name a --json document carries: "status", "recipe show", "kernel build".
  program.hook("preAction", (_root, action) => setCommandName(commandName(action)));
  return program;
}

/** "recipe show" for the `show` subcommand of `recipe`: every name below the program's. */
function commandName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ") || cmd.name();
}

/** The command argv names, as far as the program knows it (for errors before any action runs). */
function commandFromArgv(program: Command, args: readonly string[]): string {
  let cmd = program;
  for (const a of args) {
    if (a === "--") break;
    if (a.startsWith("-")) continue;
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) break;
    cmd = sub;
    if (sub.commands.length === 0) break;
  }
  return cmd === program ? program.name() : commandName(cmd);
}

/** "netmap-provision recipe show": what to run with --help. */
function helpCommand(program: Command | undefined, args: readonly string[]): string {
  const name = program ? commandFromArgv(program, args) : "netmap-provision";
  return name === "netmap-provision" ? name : `netmap-provision ${name}`;
}

/** --json anywhere before a `--`: the run's stdout is one JSON document, whatever happens. */
export const wantsJson = (args: readonly string[]): boolean => {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).includes("--json");
};

async function main(argv: string[]): Promise<number> {
  const json = wantsJson(argv.slice(2));
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  // With --json, whatever else would reach stdout (help, a stray line) goes to stderr instead.
  if (json) process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  const finish = (code: number, thrown?: unknown): number => {
    if (!json) return code;
    const doc = jsonDocument(code, thrown);
    // A failure the command reported without throwing (a blocked plan): its words on stderr too.
    const e = doc.error as { message: string; hint?: string } | undefined;
    if (e && thrown === undefined) err(`error: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ""}`);
    stdoutWrite(jsonText(doc));
    return code;
  };
  let program: Command | undefined;
  try {
    program = buildProgram(await loadCommands(argv));
    setCommandName(commandFromArgv(program, argv.slice(2)));
    await program.parseAsync(argv);
    return finish(typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version arrive here as "errors" with code 0 (their text went to stderr with --json).
      if (err.exitCode === 0) {
        if (json)
          printJson({
            message: `${err.code === "commander.version" ? "version" : "help"} printed on stderr`,
          });
        return finish(ExitCode.ok);
      }
      const message = err.message.replace(/^error: /, "");
      const usage = {
        message,
        hint: `run \`${helpCommand(program, argv.slice(2))} --help\` for usage`,
        exitCode: ExitCode.usage,
      };
      return finish(ExitCode.usage, usage);
    }
    const { text, exitCode } = formatError(err);
    process.stderr.write(`${text}\n`);
    return finish(exitCode, err);
  }
}

process.exitCode = await main(process.argv);
