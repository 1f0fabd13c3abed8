import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestFn } from "ava";

/** A temp-dir maker whose dirs are removed when the test file is done. */
export function tempDirs(test: TestFn): (prefix: string) => string {
  const made: string[] = [];
  test.after.always(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  return (prefix) => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    made.push(dir);
    return dir;
  };
}
