import { type Stats, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Document, LineCounter, parseDocument, visit, type YAMLError } from "yaml";
import type { z } from "zod";
import { fileKind, readBoundedText } from "../core/bounded-read.js";
import { RecipeError, type RecipeIssue } from "../core/errors.js";
import { type Recipe, recipeSchema } from "./schema.js";
import { allowedKeysAt } from "./schema-keys.js";
import { didYouMean } from "./suggest.js";
import { openingQuotePos, type PathSeg, positionOf, type TextPos } from "./yaml-position.js";

/** Recipes are small hand-written files; anything bigger is a mistake (or an attack on the parser). */
export const MAX_RECIPE_BYTES = 256 * 1024;

export interface LoadOptions {
  /** Driver tokens from the driver catalog. */
  knownDrivers: readonly string[];
}

export interface LoadedRecipe {
  recipe: Recipe;
  source: { file: string; text: string };
}

/** Read, parse and validate a recipe file. Every problem becomes a RecipeError with file:line:col. */
export function loadRecipe(file: string, opts: LoadOptions): LoadedRecipe {
  const abs = resolve(file);
  const at1 = (message: string, hint: string): RecipeError =>
    new RecipeError([{ file, line: 1, col: 1, message, hint }]);
  let st: Stats;
  try {
    st = statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      throw at1("recipe file not found", "check the path; shipped recipes are in recipes/");
    throw at1(`cannot read the recipe: ${(e as Error).message}`, "check the file's permissions");
  }
  // Only a regular file: a FIFO would block the read forever, /dev/zero would never end.
  if (st.isDirectory()) throw at1("is a directory, not a recipe file", "pass a .yaml file");
  if (!st.isFile()) throw at1(`is ${fileKind(st)}, not a recipe file`, "pass a regular .yaml file");
  // Refuse before reading: the size limit exists so that nothing large reaches the parser.
  if (st.size > MAX_RECIPE_BYTES) throw tooLarge(file, st.size);
  let text: string;
  try {
    // Bounded as well: the file may have been swapped for something else since the stat.
    text = readBoundedText(abs, { what: "recipe", maxBytes: MAX_RECIPE_BYTES });
  } catch (e) {
    throw at1((e as Error).message, "pass a regular .yaml file of at most 256 KiB");
  }
  return { recipe: parseRecipeText(text, file, opts, dirname(abs)), source: { file: abs, text } };
}

function tooLarge(file: string, size: number): RecipeError {
  return new RecipeError([
    {
      file,
      line: 1,
      col: 1,
      message: `recipe is ${Math.ceil(size / 1024)} KiB; recipes are limited to ${MAX_RECIPE_BYTES / 1024} KiB`,
      hint: "a recipe pins versions and options; it should be a few dozen lines",
    },
  ]);
}

const YAML_HINTS: Record<string, string> = {
  DUPLICATE_KEY: "each key may appear once in a mapping: remove or merge the repeated one",
  TAB_AS_INDENT: "YAML indents with spaces only: replace the tab",
  MISSING_CHAR: "close the quote or bracket that opens here",
  BAD_INDENT: "items of one mapping or list must start in the same column",
  BLOCK_AS_IMPLICIT_KEY:
    "check the indentation: a nested mapping goes on its own lines, indented under its key",
  MULTILINE_IMPLICIT_KEY: "check the indentation and the colon after each key",
  MULTIPLE_DOCS: "a recipe is one YAML document: remove the `---` separator and what follows it",
};

/**
 * Parse and validate recipe text. `file` is used in messages only; relative paths in the recipe
 * are resolved against `baseDir` (the recipe's directory; default: dirname of `file`).
 */
export function parseRecipeText(text: string, file: string, opts: LoadOptions, baseDir?: string): Recipe {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_RECIPE_BYTES) throw tooLarge(file, bytes);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });

  const yamlIssues = [...doc.errors, ...doc.warnings].map((e) => yamlIssue(e, text, file, lc));
  if (yamlIssues.length > 0) throw new RecipeError(sortIssues(yamlIssues));

  const top = doc.contents;
  if (top === null || (top.constructor.name === "Scalar" && (top as { value: unknown }).value === null)) {
    throw new RecipeError([
      {
        file,
        line: 1,
        col: 1,
        message: "recipe is empty",
        hint: "a recipe needs at least `name:` and `netmap: {source: ...}`; see recipes/default.yaml",
      },
    ]);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // yaml refuses alias chains that would expand exponentially ("billion laughs").
    throw new RecipeError([
      {
        file,
        ...firstAliasPos(doc, lc),
        message: `YAML: ${(e as Error).message}`,
        hint: "a recipe has no need for aliases that expand into thousands of nodes; write the values out",
      },
    ]);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    const pos = positionOf(doc, lc, [], "value");
    throw new RecipeError([
      {
        file,
        ...pos,
        message: `the top level of a recipe must be a mapping (key: value), not ${describe(data)}`,
        hint: "start the file with `name: my-recipe`; see recipes/default.yaml",
      },
    ]);
  }

  const schema = recipeSchema({
    knownDrivers: opts.knownDrivers,
    baseDir: baseDir ?? dirname(resolve(file)),
  });
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((iss) => zodIssues(iss, { doc, lc, file, data, schema }));
  throw new RecipeError(sortIssues(dropExplainedMissing(issues)));
}

function firstAliasPos(doc: Document, lc: LineCounter): TextPos {
  let offset: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      offset = node.range?.[0];
      return visit.BREAK;
    },
  });
  return offset === undefined ? { line: 1, col: 1 } : lc.linePos(offset);
}

function yamlIssue(e: YAMLError, text: string, file: string, lc: LineCounter): RecipeIssue {
  let pos: TextPos = lc.linePos(e.pos[0]);
  let message = e.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? e.message;
  if (e.code === "MISSING_CHAR" && /quote/.test(message)) {
    const q: '"' | "'" = message.includes('"') ? '"' : "'";
    pos = openingQuotePos(text, q) ?? pos;
    message = `unclosed ${q === '"' ? "double" : "single"} quote`;
  }
  if (e.code === "DUPLICATE_KEY") {
    // e.pos marks the key's first character only; read the key up to its colon.
    const key = /^("[^"\n]*"|'[^'\n]*'|[^:#\n]+?)\s*:/.exec(text.slice(e.pos[0]))?.[1];
    message = key ? `duplicate key "${key}" (map keys must be unique)` : `duplicate key: ${message}`;
  }
  return {
    file,
    ...pos,
    message: `YAML: ${message}`,
    hint: YAML_HINTS[e.code] ?? "fix the YAML syntax near here",
  };
}

/**
 * `sha265:` gives two issues: unknown key "sha265" (did you mean "sha256"?) and missing key
 * "sha256". The second says nothing new, and would come first (it points at the mapping), so drop it.
 */
function dropExplainedMissing(issues: RecipeIssue[]): RecipeIssue[] {
  const meant = new Set(
    issues.flatMap((i) => {
      const m = /^unknown key "[^"]*" (?:in (\S+)|at the top level); did you mean "([^"]+)"\?$/.exec(
        i.message,
      );
      return m ? [`${m[1] ?? ""}|${m[2]}`] : [];
    }),
  );
  return issues.filter((i) => {
    const m = /^missing required key "([^"]+)"(?: in (\S+))?$/.exec(i.message);
    return !(m && meant.has(`${m[2] ?? ""}|${m[1]}`));
  });
}

function sortIssues(issues: RecipeIssue[]): RecipeIssue[] {
  return issues
    .map((iss, i) => ({ iss, i }))
    .sort((a, b) => a.iss.line - b.iss.line || a.iss.col - b.iss.col || a.i - b.i)
    .map((x) => x.iss);
}

/** "netmap.apps[2]" for ["netmap", "apps", 2]. */
function where(path: readonly PathSeg[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function valueAt(data: unknown, path: readonly PathSeg[]): unknown {
  let d = data;
  for (const p of path)
    d = d && typeof d === "object" ? (d as Record<string, unknown>)[p as string] : undefined;
  return d;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return "an empty value (null)";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string "${v}"`;
  if (typeof v === "number") return `the number ${v}`;
  return String(v);
}

const EXPECTED: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "a mapping",
  array: "a list",
};

interface Ctx {
  doc: Document;
  lc: LineCounter;
  file: string;
  data: unknown;
  schema: z.ZodType;
}

type ZodIssue = z.core.$ZodIssue;

/** Turn one zod issue into recipe issues in our words, placed on the YAML node it is about. */
function zodIssues(iss: ZodIssue, c: Ctx): RecipeIssue[] {
  const path = iss.path.filter((p): p is PathSeg => typeof p !== "symbol");
  const w = where(path);
  const value = valueAt(c.data, path);
  const at = (p: readonly PathSeg[], target: "key" | "value" = "value") => positionOf(c.doc, c.lc, p, target);
  const issue = (
    message: string,
    hint?: string,
    p: readonly PathSeg[] = path,
    target: "key" | "value" = "value",
  ) => ({
    file: c.file,
    ...at(p, target),
    message,
    ...(hint ? { hint } : {}),
  });
  const prefixed = (m: string) => (w && !m.startsWith(w) ? `${w}: ${m}` : m);

  switch (iss.code) {
    case "invalid_key": {
      // A record key that failed its own schema (extDrivers: {igbb: ...}): say why, at the key.
      const inner = iss.issues[0];
      const why = inner?.message ?? "invalid key";
      return [issue(prefixed(why), undefined, path, "key")];
    }
    case "unrecognized_keys": {
      const allowed = allowedKeysAt(c.schema, path, c.data);
      return iss.keys.map((k) =>
        issue(
          `unknown key "${k}" ${w ? `in ${w}` : "at the top level"}${didYouMean(k, allowed)}`,
          allowed.length ? `keys allowed here: ${allowed.join(", ")}` : undefined,
          [...path, k],
          "key",
        ),
      );
    }
    case "invalid_type": {
      if (value === undefined) {
        const key = path[path.length - 1];
        const parent = path.slice(0, -1);
        return [
          issue(
            `missing required key "${String(key)}"${parent.length ? ` in ${where(parent)}` : ""}`,
            undefined,
            parent,
          ),
        ];
      }
      const expected = EXPECTED[iss.expected] ?? iss.expected;
      const hint =
        iss.expected === "boolean" && typeof value === "string"
          ? `write true or false without quotes (YAML 1.2 reads "${value}" as a string)`
          : undefined;
      return [issue(prefixed(`expected ${expected}, got ${describe(value)}`), hint)];
    }
    case "invalid_value": {
      const allowed = iss.values.map((v) => String(v));
      return [
        issue(
          prefixed(
            `${describe(value)} is not allowed; expected ${allowed.map((v) => `"${v}"`).join(" or ")}${
              typeof value === "string" ? didYouMean(value, allowed) : ""
            }`,
          ),
        ),
      ];
    }
    case "invalid_union": {
      if ("discriminator" in iss && iss.discriminator) {
        const options = ((iss as { options?: unknown[] }).options ?? []).map(String);
        const list = options.map((o) => `"${o}"`).join(", ");
        if (value === undefined)
          return [
            issue(
              `missing required key "${iss.discriminator}" in ${where(path.slice(0, -1))}; expected one of ${list}`,
              undefined,
              path.slice(0, -1),
            ),
          ];
        return [
          issue(
            prefixed(
              `${describe(value)} is not a known kind; expected one of ${list}${typeof value === "string" ? didYouMean(value, options) : ""}`,
            ),
          ),
        ];
      }
      // A plain union ("auto" or a list): if the value has the type of one member, report that
      // member's own issues (a misspelt driver in the list), not a vague "invalid input".
      const fitting = iss.errors.find(
        (branch) =>
          !branch.some(
            (b) => b.path.length === 0 && (b.code === "invalid_type" || b.code === "invalid_value"),
          ),
      );
      if (fitting && fitting.length > 0)
        return fitting.flatMap((b) => zodIssues({ ...b, path: [...iss.path, ...b.path] } as ZodIssue, c));
      return [issue(prefixed(`${iss.message}, got ${describe(value)}`))];
    }
    case "too_small":
    case "too_big": {
      const bound = iss.code === "too_small" ? iss.minimum : iss.maximum;
      const word = iss.code === "too_small" ? "at least" : "at most";
      const what =
        iss.origin === "array"
          ? `must have ${word} ${bound} items`
          : iss.origin === "string"
            ? `must be ${word} ${bound} characters`
            : `must be ${word} ${bound}`;
      const msg = iss.message.startsWith("Too ") ? `${what}, got ${describe(value)}` : iss.message;
      return [issue(prefixed(msg))];
    }
    case "custom": {
      const hint = (iss.params as { hint?: string } | undefined)?.hint;
      return [issue(prefixed(iss.message), hint)];
    }
    default:
      return [issue(prefixed(iss.message))];
  }
}
