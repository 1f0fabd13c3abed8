/**
 * Read one catalog YAML file and validate it with a zod schema. Problems are reported as
 * file:line:col pointing at the offending value, because catalogs are edited by hand and
 * "adding a driver should be a data change": the author needs to see exactly what to fix.
 */
import { relative } from "node:path";
import { type Document, isMap, isScalar, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { readBoundedText } from "../core/bounded-read.js";
import { RecipeError, type RecipeIssue } from "../core/errors.js";
import { projectRoot } from "../core/paths.js";

const HINT = "fix this catalog file (drivers/ or kernels/ in the netmap-provision tree)";

/** Catalog files are hand-written lists; anything this big is not one. */
export const MAX_CATALOG_BYTES = 4 * 1024 * 1024;

/** The file name as shown in messages: relative to the project when it lives there. */
export function displayPath(file: string): string {
  try {
    const rel = relative(projectRoot(), file);
    return rel.startsWith("..") ? file : rel;
  } catch {
    return file;
  }
}

/** Where in the text a zod issue path points: the deepest node that exists on that path. */
function locate(
  doc: Document,
  lines: LineCounter,
  path: readonly PropertyKey[],
): { line: number; col: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = (n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as unknown[], true)) as {
      range?: [number, number, number] | null;
    } | null;
    const at = node?.range?.[0];
    if (at !== undefined) {
      const pos = lines.linePos(at);
      return { line: pos.line, col: pos.col };
    }
  }
  return { line: 1, col: 1 };
}

/** Where a key of the mapping at `path` is written (for "unknown field" issues). */
function locateKey(doc: Document, lines: LineCounter, path: readonly PropertyKey[], key: string) {
  const map = path.length === 0 ? doc.contents : doc.getIn(path as unknown[], true);
  if (isMap(map)) {
    const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
    const at = isScalar(pair?.key) ? pair.key.range?.[0] : undefined;
    if (at !== undefined) return lines.linePos(at);
  }
  return locate(doc, lines, path);
}

/** Parse and validate `file`; throws RecipeError (exit 2) listing every problem with its location. */
export function loadYamlFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  const shown = displayPath(file);
  let text: string;
  try {
    text = readBoundedText(file, { what: "catalog file", maxBytes: MAX_CATALOG_BYTES });
  } catch (err) {
    throw new RecipeError([
      {
        file: shown,
        line: 1,
        col: 1,
        message: `cannot read the catalog file: ${(err as Error).message}`,
        hint: HINT,
      },
    ]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new RecipeError(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { file: shown, line: pos.line, col: pos.col, message: `YAML: ${e.message}`, hint: HINT };
      }),
    );
  }
  const result = schema.safeParse(doc.toJS());
  if (result.success) return result.data;
  const issues: RecipeIssue[] = result.error.issues.flatMap((i) => {
    const where = i.path.length > 0 ? `${i.path.join(".")}: ` : "";
    if (i.code === "unrecognized_keys") {
      // One issue per unknown field, at the field itself: usually a typo of a known one.
      return i.keys.map((k) => {
        const { line, col } = locateKey(doc, lines, i.path, k);
        return { file: shown, line, col, message: `${where}unknown field "${k}"`, hint: HINT };
      });
    }
    return [{ file: shown, ...locate(doc, lines, i.path), message: `${where}${i.message}`, hint: HINT }];
  });
  throw new RecipeError(issues);
}
