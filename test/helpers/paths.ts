import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repo root, found from the compiled test file (dist/test/...) or the source one. */
export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
})();

export const fixture = (...parts: string[]): string => join(repoRoot, "test", "fixtures", ...parts);
export const sharedDir: string = join(repoRoot, "..", "shared");
export const cliPath: string = join(repoRoot, "dist", "toolkit", "cli", "main.js");
