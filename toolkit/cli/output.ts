import { ExitCode, ProvisionError, RecipeError, RollbackError } from "../core/errors.js";
import { redactSecrets } from "../core/redact.js";
import { SGR, useColor } from "../core/terminal-style.js";
import { escapeControl } from "../core/terminal-text.js";

export { badge, color, useColor } from "../core/terminal-style.js";

/**
 * Output conventions shared by every command: --json prints one JSON document on stdout and
 * nothing else there; human output is plain text, coloured only on a terminal without NO_COLOR.
 * Text from outside (recipes, interface names, host files) is shown with its control characters
 * escaped, so it cannot drive the operator's terminal, and a URL's password is never shown.
 */
const ownSgr = new RegExp(`\u001b\\[(?:${SGR.join("|")})m`, "g");

/**
 * Human text made safe for a terminal: passwords in URLs hidden, every control character escaped
 * (`\x1b`) except the colour codes paint adds when colour is on. A recipe can at worst colour its
 * own text.
 */
export function terminalSafe(raw: string): string {
  const text = redactSecrets(raw);
  if (!useColor()) return escapeControl(text);
  let out = "";
  let last = 0;
  for (const m of text.matchAll(ownSgr)) {
    out += escapeControl(text.slice(last, m.index)) + m[0];
    last = m.index + m[0].length;
  }
  return out + escapeControl(text.slice(last));
}

/** Write human text to stdout (escaped: see terminalSafe). */
export const out = (text: string): void => {
  process.stdout.write(terminalSafe(text));
};

/** Write human text to stderr (escaped: see terminalSafe). */
export const err = (text: string): void => {
  process.stderr.write(terminalSafe(text));
};

/** The error part of a --json failure document. */
export interface JsonError {
  message: string;
  hint?: string;
  exitCode: number;
  issues?: RecipeError["issues"];
  recovery?: string[];
}

interface JsonRun {
  command: string;
  /** The command's result (printJson), merged into the document. */
  result?: unknown;
  /** A failure the command ended with without throwing (failWith). */
  failure?: JsonError;
}

let run: JsonRun = { command: "netmap-provision" };

/** Name the command the run is for (main.ts, before the action runs). */
export function setCommandName(command: string): void {
  run.command = command;
}

/** The command's result for --json. Printed once, by main, when the command ends (see jsonDocument). */
export function printJson(value: unknown): void {
  run.result = value;
}

/** What printJson was given, and any failWith: main turns them into the one document. */
export const jsonRun = (): Readonly<JsonRun> => run;

/** Forget the run (tests that call the helpers in one process). */
export function resetJsonRun(): void {
  run = { command: "netmap-provision" };
}

/** message, hint (when there is one), exitCode: in the order a reader wants them. */
const errorShape = (message: string, hint: unknown, exitCode: number): JsonError =>
  typeof hint === "string" && hint ? { message, hint, exitCode } : { message, exitCode };

/** The `error` of a failure document, from a thrown error or a report's `{message, hint, exitCode}`. */
export function jsonError(e: unknown): JsonError {
  if (e instanceof ProvisionError) {
    const j = errorShape(e.message, e.hint, e.exitCode);
    if (e instanceof RecipeError) j.issues = e.issues;
    if (e instanceof RollbackError) j.recovery = e.recovery;
    return j;
  }
  if (e && typeof e === "object" && "message" in e && "exitCode" in e) {
    const r = e as { message: unknown; hint?: unknown; exitCode: unknown; recovery?: unknown };
    const j = errorShape(String(r.message), r.hint, Number(r.exitCode));
    // A report's error (up, down) keeps a RollbackError's recovery lines.
    if (Array.isArray(r.recovery) && r.recovery.every((l) => typeof l === "string")) j.recovery = r.recovery;
    return j;
  }
  const x = e instanceof Error ? e : new Error(String(e));
  return {
    message: `internal error (a bug in netmap-provision, please report it): ${x.message}`,
    hint: "the stack trace is on stderr",
    exitCode: ExitCode.internal,
  };
}

/**
 * End the command with a failure it reports itself (a blocked doctor or plan, a report carrying
 * its error) instead of throwing: sets the exit code, and --json's document carries the error.
 */
export function failWith(e: ProvisionError | { message: string; hint?: string; exitCode: number }): void {
  run.failure = jsonError(e);
  process.exitCode = run.failure.exitCode;
}

/**
 * The one --json document: `{ok, command, ...result}` on success; on failure also `error`
 * (message, hint, exitCode; RecipeError's issues), whose exitCode is the process's.
 */
export function jsonDocument(exitCode: number, thrown?: unknown): Record<string, unknown> {
  const r = run.result;
  const rest: Record<string, unknown> =
    r === undefined
      ? {}
      : Array.isArray(r)
        ? { results: r }
        : typeof r === "object" && r !== null
          ? { ...(r as Record<string, unknown>) }
          : { result: r };
  delete rest.ok;
  delete rest.command;
  if (exitCode === ExitCode.ok) return { ok: true, command: run.command, ...rest };
  let error: JsonError;
  if (thrown !== undefined) error = jsonError(thrown);
  else if (run.failure) error = run.failure;
  else if (rest.error && typeof rest.error === "object") error = jsonError(rest.error);
  else error = { message: `${run.command} exited with code ${exitCode}`, exitCode };
  error.exitCode = exitCode;
  delete rest.error;
  return { ok: false, command: run.command, ...rest, error };
}

/** JSON text of a document, every string's URL passwords hidden; JSON.stringify escapes control characters. */
export function jsonText(doc: unknown): string {
  const hide = (_k: string, v: unknown): unknown => (typeof v === "string" ? redactSecrets(v) : v);
  return `${JSON.stringify(doc, hide, 2)}\n`;
}
