import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import test from "ava";
import { repoRoot } from "../helpers/paths.js";

// The CLI is the top floor: it parses flags and prints. Nothing below it may import it, or a
// library caller (try, the fleet tooling, tests) would drag commander and process output in.
const toolkit = join(repoRoot, "toolkit");
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );

test("no module outside toolkit/cli imports from toolkit/cli", (t) => {
  const below = files(toolkit).filter((f) => !relative(toolkit, f).startsWith("cli/"));
  t.true(below.length > 50, `only ${below.length} modules found under ${toolkit}`);
  const offenders = below.filter((f) => /from "(\.\.\/)+cli\//.test(readFileSync(f, "utf8")));
  t.deepEqual(
    offenders.map((f) => relative(repoRoot, f)),
    [],
  );
});
