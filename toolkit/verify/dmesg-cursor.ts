import type { Exec } from "../core/exec.js";
import { type DmesgLine, parseDmesg } from "../parse/dmesg.js";

/**
 * A position in the kernel log: the timestamp of the last line seen. Evidence for a load is
 * only what the kernel printed after it, so an old `netmap: loaded module` cannot pass verify.
 */
export interface DmesgCursor {
  /** Seconds since boot of the last line before the load; null: the log was empty (take all). */
  ts: number | null;
}

/** The one argv that reads the kernel log (plan shows it where swap and verify run it). */
export const dmesgArgv = (): string[] => ["dmesg"];

/** Read the whole kernel log (read-only; needs root or kernel.dmesg_restrict=0). */
export async function readDmesg(exec: Exec): Promise<DmesgLine[]> {
  const r = await exec.run(dmesgArgv(), { timeoutMs: 15_000 });
  return parseDmesg(r.stdout);
}

export async function takeCursor(exec: Exec): Promise<DmesgCursor> {
  const lines = await readDmesg(exec);
  const last = [...lines].reverse().find((l) => l.ts !== null);
  return { ts: last?.ts ?? null };
}

/** Lines strictly after the cursor (a line printed in the same microsecond is not "new"). */
export function linesAfter(lines: readonly DmesgLine[], cursor: DmesgCursor): DmesgLine[] {
  const ts = cursor.ts;
  return ts === null ? [...lines] : lines.filter((l) => l.ts !== null && l.ts > ts);
}
