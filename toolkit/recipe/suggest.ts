import { distance } from "fastest-levenshtein";

/** Length of the common prefix of two strings. */
const commonPrefix = (a: string, b: string): number => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};

/**
 * The candidate a misspelt word most plausibly meant: the nearest by edit distance if it is
 * within a third of the word's length (ties go to the longer shared prefix, so "ixgb" gives
 * "ixgbe" rather than "igb"); else a candidate the word is the start of ("legacy" ->
 * "legacy-make").
 */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: { c: string; d: number; p: number } | undefined;
  for (const c of candidates) {
    const lc = c.toLowerCase();
    const d = distance(w, lc);
    const p = commonPrefix(w, lc);
    if (!best || d < best.d || (d === best.d && p > best.p)) best = { c, d, p };
  }
  if (best) {
    const limit = Math.max(1, Math.floor(Math.max(word.length, best.c.length) / 3));
    if (best.d <= limit) return best.c;
  }
  // Levenshtein counts a swap of two neighbours as 2 edits, too many for short words ("tga").
  const swapped = candidates.find((c) => isAdjacentSwap(w, c.toLowerCase()));
  if (swapped) return swapped;
  if (w.length >= 3) return candidates.find((c) => c.toLowerCase().startsWith(w));
  return undefined;
}

function isAdjacentSwap(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const diff = [...a].flatMap((ch, i) => (ch === b[i] ? [] : [i]));
  const [i, j] = diff;
  return diff.length === 2 && i !== undefined && j === i + 1 && a[i] === b[j] && a[j] === b[i];
}

/** `; did you mean "x"?`, or nothing. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const m = closestMatch(word, candidates);
  return m === undefined ? "" : `; did you mean "${m}"?`;
}
