import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { RecipeError } from "../../toolkit/core/errors.js";
import { loadRecipe, MAX_RECIPE_BYTES, parseRecipeText } from "../../toolkit/recipe/load.js";
import { fixture, repoRoot } from "../helpers/paths.js";
import { deriveSeedRecipe, seedRecipeFile } from "../helpers/seed-recipe.js";

const knownDrivers = loadDriverCatalog()
  .list()
  .map((d) => d.token);
const opts = { knownDrivers };
const brokenDir = fixture("recipes", "broken");
const tmp = () => mkdtempSync(join(tmpdir(), "np-recipe-"));

const minimal = `name: t
netmap:
  source: {kind: git, url: "https://github.com/luigirizzo/netmap", commit: 89607e1406c1}
`;

function issuesOf(fn: () => unknown): RecipeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof RecipeError) return e;
    throw e;
  }
  throw new Error("expected a RecipeError, but the recipe validated");
}

const shipped = readdirSync(join(repoRoot, "recipes")).filter((f) => f.endsWith(".yaml"));

test("recipes/ ships the four expected recipes", (t) => {
  t.deepEqual(shipped.sort(), [
    "debian-12.yaml",
    "default.yaml",
    "seed-2.6.37-e1000.yaml",
    "ubuntu-24.04.yaml",
  ]);
});

for (const f of shipped) {
  test(`shipped recipe ${f} validates against the driver catalog`, (t) => {
    const { recipe, source } = loadRecipe(join(repoRoot, "recipes", f), opts);
    t.is(`${recipe.name}.yaml`, f);
    t.true(source.text.length > 0);
  });
}

test("default.yaml: running kernel, upstream netmap pinned by full commit, drivers auto", (t) => {
  const { recipe } = loadRecipe(join(repoRoot, "recipes", "default.yaml"), opts);
  t.is(recipe.kernel.version, "running");
  t.deepEqual(recipe.kernel.sources, { kind: "running-headers", package: "auto" });
  t.like(recipe.netmap.source, { kind: "git", commit: "89607e1406c1fa5ac2106bd2ff33417f090c0d60" });
  t.is(recipe.drivers, "auto");
  t.is(recipe.netmap.moduleName, "netmap");
});

test("debian-12.yaml: 6.1 range, linux-source-6.1, virtio_net.c may run emulated", (t) => {
  const { recipe } = loadRecipe(join(repoRoot, "recipes", "debian-12.yaml"), opts);
  t.is(recipe.kernel.version, ">=6.1.0 <6.2.0");
  t.like(recipe.kernel.sources, { kind: "running-headers", package: "linux-source-6.1" });
  t.deepEqual(recipe.drivers, ["e1000", "e1000e", "igb", "ixgbe", "virtio_net.c"]);
  t.deepEqual(recipe.emulatedOk, ["virtio_net.c"]);
});

test("seed recipe: kernel.org 2.6.37 built, netmap v11.0 legacy layout, e1000 replaced in place", (t) => {
  const { recipe } = loadRecipe(join(repoRoot, "recipes", "seed-2.6.37-e1000.yaml"), opts);
  t.true(recipe.kernel.build);
  t.like(recipe.kernel.sources, {
    kind: "kernelorg",
    version: "2.6.37",
    sha256: "edbf091805414739cf57a3bbfeba9e87f5e74f97e38f04d12060e9e0c71e383a",
  });
  t.like(recipe.netmap, { layout: "legacy-make", moduleName: "netmap_lin" });
  t.like(recipe.netmap.source, { commit: "3ccdadad7d80bb1bc569d1f72ba3ece902350f65" });
  t.deepEqual(recipe.netmap.apps, ["pkt-gen", "bridge", "vale-ctl", "testmmap"]);
  t.is(recipe.modules.strategy, "replace");
  t.true(
    recipe.verify.dmesg.expect.some((re) => new RegExp(re).test("run mknod /dev/netmap c 10 59 # error 0")),
  );
});

test("the seed recipe derived for the running kernel (the seed guest test's): only kernel and apps differ", (t) => {
  const dir = tmp();
  const seed = loadRecipe(seedRecipeFile, opts).recipe;
  const derived = loadRecipe(deriveSeedRecipe(join(dir, "seed-running.yaml")), opts).recipe;
  t.false(derived.kernel.build);
  t.is(derived.kernel.version, "running");
  t.like(derived.netmap, { layout: "legacy-make", moduleName: "netmap_lin" });
  t.deepEqual(derived.netmap.apps, ["pkt-gen"]);
  const { apps: _seedApps, ...seedNetmap } = seed.netmap;
  const { apps: _derivedApps, ...derivedNetmap } = derived.netmap;
  t.deepEqual(derivedNetmap, seedNetmap);
  t.deepEqual(derived.drivers, seed.drivers);
  t.deepEqual(derived.emulatedOk, seed.emulatedOk);
  t.deepEqual(derived.modules, seed.modules);
  t.deepEqual(derived.verify, seed.verify);
  t.deepEqual(derived.guard, seed.guard);
});

const brokenFiles = readdirSync(brokenDir)
  .filter((f) => f.endsWith(".yaml"))
  .sort();

test("the broken-recipe corpus has at least 35 cases, each with an expectation", (t) => {
  t.true(brokenFiles.length >= 35, `only ${brokenFiles.length} broken recipes`);
  for (const f of brokenFiles) t.regex(readFileSync(join(brokenDir, f), "utf8"), /^# expect: \d+:\d+ \S/, f);
});

for (const f of brokenFiles) {
  test(`broken/${f}: first error at the expected place with the expected message`, (t) => {
    const path = join(brokenDir, f);
    const m = /^# expect: (\d+):(\d+) (.+)$/m.exec(readFileSync(path, "utf8"));
    if (!m) return t.fail("no # expect: header");
    const err = issuesOf(() => loadRecipe(path, opts));
    const first = err.issues[0];
    t.truthy(first);
    t.is(`${first?.line}:${first?.col}`, `${m[1]}:${m[2]}`, first?.message);
    t.true(first?.message.includes(m[3] as string), `"${first?.message}" lacks "${m[3]}"`);
    t.is(first?.file, path);
    t.is(err.exitCode, 2);
  });
}

test("a file over 256 KiB is refused before parsing, whatever it holds", (t) => {
  const dir = tmp();
  const file = join(dir, "huge.yaml");
  // Not even valid YAML: the size check must come first.
  writeFileSync(file, `${minimal}${"junk: [unclosed\n".repeat(Math.ceil((300 * 1024) / 16))}`);
  const err = issuesOf(() => loadRecipe(file, opts));
  t.is(err.issues.length, 1);
  t.like(err.issues[0], { line: 1, col: 1 });
  t.regex(err.issues[0]?.message ?? "", /recipe is 3\d\d KiB; recipes are limited to 256 KiB/);
  t.throws(() => parseRecipeText("a".repeat(MAX_RECIPE_BYTES + 1), "x.yaml", opts), {
    message: /limited to 256 KiB/,
  });
});

test("a zero-byte file is an empty recipe", (t) => {
  const file = join(tmp(), "empty.yaml");
  writeFileSync(file, "");
  t.regex(issuesOf(() => loadRecipe(file, opts)).issues[0]?.message ?? "", /recipe is empty/);
});

test("a missing file and a directory are recipe errors naming the path", (t) => {
  const dir = tmp();
  const missing = join(dir, "nope.yaml");
  t.like(issuesOf(() => loadRecipe(missing, opts)).issues[0], {
    file: missing,
    message: "recipe file not found",
  });
  t.regex(issuesOf(() => loadRecipe(dir, opts)).issues[0]?.message ?? "", /is a directory/);
});

test("every problem is reported, in file order, not only the first", (t) => {
  const err = issuesOf(() =>
    parseRecipeText(
      `${minimal}drivers: [e100, igb]\nmodules: {persist: "yes"}\nguard: {confirmTimeoutSec: 5}\n`,
      "m.yaml",
      opts,
    ),
  );
  t.deepEqual(
    err.issues.map((i) => `${i.line}:${i.col}`),
    ["4:11", "5:20", "6:28"],
  );
  t.regex(
    err.message,
    /^m\.yaml:4:11: drivers\[0\]: driver "e100" is not a known netmap driver; did you mean "e1000"\?/,
  );
});

test("a minimal recipe gets every default filled", (t) => {
  const r = parseRecipeText(minimal, "/tmp/x/min.yaml", opts);
  t.deepEqual(r.kernel, {
    version: "running",
    sources: { kind: "running-headers" },
    config: { from: "running", fragments: [] },
    build: false,
    install: "make",
  });
  t.like(r.netmap, { layout: "configure", moduleName: "netmap", configure: { options: [] } });
  t.deepEqual(r.netmap.apps, ["pkt-gen", "vale-ctl", "bridge"]);
  t.is(r.drivers, "auto");
  t.is(r.emulatedOk, false);
  t.deepEqual(r.modules, { strategy: "updates", persist: false, initramfs: "auto" });
  t.deepEqual(r.verify.pktgen, { vale: true, interfaces: [], seconds: 3, size: 60 });
  t.is(r.verify.dmesg.expect.length, 2);
  t.deepEqual(r.guard, { management: "refuse", confirmTimeoutSec: 120 });
});

test("relative paths resolve against the recipe's directory; absolute ones are kept", (t) => {
  const dir = tmp();
  mkdirSync(join(dir, "sub"));
  const file = join(dir, "sub", "r.yaml");
  writeFileSync(
    file,
    `name: rel
kernel:
  version: "6.1.0-56-amd64"
  sources: {kind: local, path: /usr/src/linux-source-6.1}
  config: {from: {file: configs/my.config}}
  buildDir: ./build
netmap:
  source: {kind: local, path: netmap}
`,
  );
  const { recipe } = loadRecipe(file, opts);
  t.deepEqual(recipe.netmap.source, { kind: "local", path: join(dir, "sub", "netmap") });
  t.deepEqual(recipe.kernel.config.from, { file: join(dir, "sub", "configs", "my.config") });
  t.is(recipe.kernel.buildDir, join(dir, "sub", "build"));
  t.deepEqual(recipe.kernel.sources, { kind: "local", path: "/usr/src/linux-source-6.1" });
});

test("kernel.org sources get their download URL filled in; sha256 is normalised to lower case", (t) => {
  const r = parseRecipeText(
    `${minimal}kernel:\n  version: "6.1"\n  build: true\n  sources: {kind: kernelorg, version: "6.1.55", sha256: ${"AB".repeat(32)}}\n`,
    "k.yaml",
    opts,
  );
  t.deepEqual(r.kernel.sources, {
    kind: "kernelorg",
    version: "6.1.55",
    url: "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.55.tar.xz",
    sha256: "ab".repeat(32),
  });
});

test("a moving ref is accepted only with allowMovingRef, and must still be a sane ref", (t) => {
  const src = (commit: string, allow: boolean) =>
    `name: t\nnetmap:\n  source: {kind: git, url: "https://github.com/luigirizzo/netmap", commit: "${commit}", allowMovingRef: ${allow}}\n`;
  t.like(parseRecipeText(src("master", true), "a.yaml", opts).netmap.source, {
    commit: "master",
    allowMovingRef: true,
  });
  t.regex(
    issuesOf(() => parseRecipeText(src("master", false), "a.yaml", opts)).issues[0]?.message ?? "",
    /can move/,
  );
  t.regex(
    issuesOf(() => parseRecipeText(src("--upload-pack=x", true), "a.yaml", opts)).issues[0]?.message ?? "",
    /starts with "-"/,
  );
});

test("unknown keys inside a union member suggest that member's keys", (t) => {
  const err = issuesOf(() =>
    parseRecipeText(
      `${minimal}kernel:\n  sources: {kind: git, url: "https://example.org/linux.git", tga: v6.1}\n`,
      "u.yaml",
      opts,
    ),
  );
  t.regex(err.issues[0]?.message ?? "", /unknown key "tga" in kernel\.sources; did you mean "tag"\?/);
  t.regex(err.issues[0]?.hint ?? "", /keys allowed here: kind, url, tag/);
});

test("an alias bomb is refused by the YAML layer, not expanded", (t) => {
  const lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 8; i++)
    lines.push(
      `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(", ")}]`,
    );
  const err = issuesOf(() => parseRecipeText(`${minimal}${lines.join("\n")}\n`, "bomb.yaml", opts));
  t.is(err.issues.length, 1);
  t.like(err.issues[0], { line: 5, col: 10 });
  t.regex(err.issues[0]?.message ?? "", /^YAML: Excessive alias count/);
});
