import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture } from "./paths.js";

/** A fixture host tree (test/fixtures/hosts/<name>), read through --root / underRoot. */
export const hostTree = (name: string): string => fixture("hosts", name);

/** A writable copy of a fixture host tree, for tests that remove or add a file. */
export function copyHostTree(name: string): string {
  const dest = join(mkdtempSync(join(tmpdir(), `np-host-${name}-`)), name);
  cpSync(hostTree(name), dest, { recursive: true, verbatimSymlinks: true });
  return dest;
}
