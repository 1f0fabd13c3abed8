import { type Document, isMap, isScalar, isSeq, type LineCounter, type Node } from "yaml";

/** A 1-based line and column in the recipe text. */
export interface TextPos {
  line: number;
  col: number;
}

export type PathSeg = string | number;

const keyText = (k: unknown): string | undefined =>
  isScalar(k) ? String(k.value) : typeof k === "string" || typeof k === "number" ? String(k) : undefined;

const startOf = (n: Node | null | undefined): number | undefined => n?.range?.[0];

/**
 * Where a data path (as zod reports it) sits in the YAML text. `target` picks the key (for
 * "unknown key") or the value (for "wrong type"). When the path goes past what the file has
 * (a missing key), we point at the deepest key that exists: the mapping that lacks it.
 */
export function positionOf(
  doc: Document,
  lc: LineCounter,
  path: readonly PathSeg[],
  target: "key" | "value",
): TextPos {
  let node: unknown = doc.contents;
  let keyNode: Node | undefined;
  let missing = false;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(seg));
      if (!pair) {
        missing = true;
        break;
      }
      keyNode = pair.key as Node;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number" && node.items[seg] !== undefined) {
      keyNode = undefined;
      node = node.items[seg];
    } else {
      missing = true;
      break;
    }
  }
  let offset: number | undefined;
  if (missing) offset = startOf(keyNode) ?? startOf(node as Node);
  else if (target === "key" && keyNode) offset = startOf(keyNode);
  else {
    // `key:` with nothing after it is a null scalar of zero width at the line's end: point at the key.
    const emptyValue = isScalar(node) && node.value === null && node.source === "";
    offset = emptyValue
      ? (startOf(keyNode) ?? startOf(node as Node))
      : (startOf(node as Node) ?? startOf(keyNode));
  }
  if (offset === undefined) return { line: 1, col: 1 };
  return lc.linePos(offset);
}

/**
 * yaml reports an unclosed quote where the input ends; the useful place is where the quote
 * opened. Returns the first line whose count of the given quote is odd, if any.
 */
export function openingQuotePos(text: string, quote: '"' | "'"): TextPos | undefined {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").replace(/(^|\s)#.*$/, "");
    const body = quote === '"' ? line.replace(/\\./g, "") : line.replace(/''/g, "");
    const count = body.split(quote).length - 1;
    if (count % 2 === 1) return { line: i + 1, col: line.indexOf(quote) + 1 };
  }
  return undefined;
}
