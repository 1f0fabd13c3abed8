import { basename, dirname } from "node:path";
import type { z } from "zod";
import { readBoundedFileIfExists } from "../core/bounded-read.js";
import { UserError } from "../core/errors.js";

/**
 * One way to read every state file (installed.json, deadman.json, load.json, the lock, resume.json):
 * a regular file with a size cap (a FIFO never blocks, a huge file is never read), JSON, then the
 * file's zod schema. Anything wrong is a UserError (exit 2) naming the file, what is wrong with
 * it and what to do: state files are written by netmap-provision, so a bad one was damaged (a
 * full disk, a crash on a filesystem without ordered writes) or forged.
 */
export const MAX_STATE_FILE_BYTES = 4 * 1024 * 1024;

export interface StateFileOptions {
  /** What to do about a damaged file (default: move it aside and run `netmap-provision status`). */
  hint?: string;
  maxBytes?: number;
  /** What the file should hold, for "not <record>" (default: "a record netmap-provision wrote"). */
  record?: string;
}

export class StateFileError extends UserError {
  readonly file: string;
  constructor(file: string, problem: string, hint: string, cause?: unknown) {
    super(`${basename(file)} in ${dirname(file)} is damaged: ${problem}`, hint, cause);
    this.file = file;
  }
}

export const defaultStateHint = (file: string): string =>
  `move ${file} aside (keep it: it may be needed to undo by hand) and run \`netmap-provision status\``;

/** Where in the value a zod issue points, for messages: `modules.1.path`. */
export function issueText(error: z.ZodError): string {
  const i = error.issues[0];
  if (!i) return "it does not have the expected shape";
  const at = i.path.length > 0 ? `${i.path.map(String).join(".")}: ` : "";
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : "";
  return `${at}${i.message}${more}`;
}

/** Parse `text` as JSON and validate it; a StateFileError names `file` on any problem. */
export function parseStateJson<S extends z.ZodType>(
  file: string,
  text: string,
  schema: S,
  o: StateFileOptions = {},
): z.output<S> {
  const hint = o.hint ?? defaultStateHint(file);
  if (text.trim() === "") throw new StateFileError(file, "it is empty", hint);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StateFileError(file, `not valid JSON (truncated?): ${(e as Error).message}`, hint);
  }
  const r = schema.safeParse(raw);
  if (!r.success)
    throw new StateFileError(
      file,
      `not ${o.record ?? "a record netmap-provision wrote"}: ${issueText(r.error)}`,
      hint,
    );
  return r.data;
}

/** Read and validate a JSON state file; undefined when it does not exist. */
export function readStateJson<S extends z.ZodType>(
  file: string,
  schema: S,
  o: StateFileOptions = {},
): z.output<S> | undefined {
  const hint = o.hint ?? defaultStateHint(file);
  let bytes: Buffer | undefined;
  try {
    bytes = readBoundedFileIfExists(file, {
      what: "state file",
      maxBytes: o.maxBytes ?? MAX_STATE_FILE_BYTES,
      hint,
    });
  } catch (e) {
    // Say which state file, whatever the reason (a FIFO, a directory, too large, unreadable).
    throw new StateFileError(file, (e as Error).message.replace(`state file ${file} `, "it "), hint, e);
  }
  if (bytes === undefined) return undefined;
  return parseStateJson(file, bytes.toString("utf8"), schema, { ...o, hint });
}
