import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { readBundle, writeBundle } from "../../toolkit/build/bundle.js";
import { type BuildRequest, type BuildResult, runBuild } from "../../toolkit/build/pipeline.js";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { BlockedError, StepError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import { parseRecipeText } from "../../toolkit/recipe/load.js";
import { ensureKernelSources, readKernelTarget } from "../../toolkit/sources/target-kernel-sources.js";
import { debianKernel, reEscape } from "../helpers/debian-kernel.js";
import { legacyStandinDir, standinDir, unpackedDriverSources } from "../helpers/kernel-sources.js";
import { repoRoot } from "../helpers/paths.js";

/**
 * The build through the toolkit, for real: the netmap stand-in built against the installed
 * Debian headers and the unpacked linux-source-X.Y of its series. One cold build is shared by the tests below
 * (serial), so the file stays around two compiles.
 */

// The installed Debian kernel (whatever ABI release apt installed); throws naming the missing package.
const kernel = debianKernel();
const RELEASE = kernel.release;
const KDIR = kernel.buildDir;
// A release no host here runs, for the bundle's release check.
const OTHER_RELEASE = `${kernel.version}-not-this-host`;
const catalog = loadDriverCatalog();
const knownDrivers = catalog.list().map((d) => d.token);
const exec = createExec();
const cacheDir = join(repoRoot, ".cache", "build-test", `run-${process.pid}`);

let kernelSources = "";

function recipe(extra: string, drivers = "[e1000]"): BuildRequest["recipe"] {
  const text = `name: build-test
kernel:
  version: running
  buildDir: ${KDIR}
  sources: { kind: local, path: ${kernelSources} }
netmap:
  source: { kind: local, path: ${standinDir} }
  apps: [pkt-gen]
drivers: ${drivers}
${extra}`;
  return parseRecipeText(text, "build-test.yaml", { knownDrivers }, repoRoot);
}

const countObjects = (dir: string): number => {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile() && e.name.endsWith(".o")) n++;
  return n;
};

const status = (r: BuildResult, id: string) => r.run.outcomes.find((o) => o.id === id)?.status;

let cold: BuildResult;

test.before(async () => {
  // Reuse the stand-in tests' partial unpack when it is of the installed tarball; else the
  // kernel-sources module unpacks the distro tarball itself (once per machine, kept under .cache/).
  const partial = unpackedDriverSources(kernel.sourceTarball);
  if (partial) kernelSources = partial;
  else {
    const target = readKernelTarget({ release: RELEASE, buildDir: KDIR });
    const ks = await ensureKernelSources(target, {
      cacheDir: join(repoRoot, ".cache", "build-test-ksrc"),
      exec,
    });
    kernelSources = ks.dir;
  }
  mkdirSync(cacheDir, { recursive: true });
});

test.after.always(() => {
  rmSync(cacheDir, { recursive: true, force: true });
});

test.serial(
  "cold build, offline, from a local source: vermagic is the headers' release, e1000 depends on netmap",
  async (t) => {
    cold = await runBuild({ recipe: recipe(""), cacheDir, offline: true, jobs: 2 }, { exec });
    t.true(cold.ok, String((cold.error as Error | undefined)?.message));
    t.false(cold.cacheHit);
    const m = cold.manifest;
    if (!m) return t.fail("no manifest");
    t.is(m.kernelRelease, RELEASE);
    t.is(m.kernelVersion, kernel.version);
    t.deepEqual(m.native, ["e1000"]);
    const netmap = m.modules.find((x) => x.name === "netmap");
    const e1000 = m.modules.find((x) => x.name === "e1000");
    t.is(netmap?.vermagic.split(" ")[0], RELEASE);
    t.is(e1000?.vermagic.split(" ")[0], RELEASE);
    t.is(e1000?.path, "e1000/e1000.ko");
    t.true(e1000?.depends.includes("netmap"));
    t.regex(e1000?.sha256 ?? "", /^[0-9a-f]{64}$/);
    t.deepEqual(
      m.apps.map((a) => a.name),
      ["pkt-gen"],
    );
    t.true(existsSync(join(cold.artifactsDir as string, "e1000/e1000.ko")));
    // make's progress was reported as objects compiled out of expected.
    const makeLog = readFileSync(join(cold.cacheEntry as string, "logs", "make.log"), "utf8");
    t.regex(makeLog, /^# compiled \d+\/\d+ objects/m);
    t.true(existsSync(join(cold.cacheEntry as string, "configure-report.json")));
    t.false(existsSync(cold.workDir), "the work dir is removed after a successful build");
  },
);

test.serial("same key again: cache hit, no configure or make, under 2 s", async (t) => {
  const objectsBefore = countObjects(cacheDir);
  const started = performance.now();
  const warm = await runBuild({ recipe: recipe(""), cacheDir, offline: true, jobs: 2 }, { exec });
  const ms = performance.now() - started;
  t.true(warm.ok);
  t.true(warm.cacheHit);
  t.is(warm.key, cold.key);
  t.false(warm.state.makeRan);
  t.is(warm.state.configure, undefined);
  t.is(countObjects(cacheDir), objectsBefore, "no new .o files");
  t.deepEqual(warm.manifest?.modules, cold.manifest?.modules);
  t.true(ms < 2000, `warm build took ${Math.round(ms)} ms`);
  t.log(`cache hit ${warm.key} in ${Math.round(ms)} ms`);
});

test.serial(
  "--drivers e1000,igb: igb's unpinned archive is left out, saying how to pin it; e1000 is the cold build",
  async (t) => {
    const r = await runBuild(
      { recipe: recipe("", "[e1000, igb]"), cacheDir, offline: true, jobs: 2 },
      { exec },
    );
    t.true(r.ok, String(r.error));
    const igb = r.state.skipped.find((s) => s.token === "igb");
    t.regex(igb?.why ?? "", /igb 5\.10\.2 archive .* no pinned sha256/);
    t.regex(igb?.why ?? "", /`sha256sum` in the recipe as netmap\.extDrivers\.igb\.sha256/);
    // Left out, the build is e1000's alone: the cold build's key, taken from the cache.
    t.true(r.cacheHit);
    t.is(r.key, cold.key);
    t.false(r.state.makeRan);
  },
);

test.serial(
  "configure drops igb (no patch): StepError naming igb and the reason, nothing built",
  async (t) => {
    const text = `name: build-test
kernel:
  version: running
  buildDir: ${KDIR}
  sources: { kind: local, path: ${kernelSources} }
netmap:
  source: { kind: local, path: ${standinDir} }
  apps: [pkt-gen]
  configure:
    options: [--no-ext-drivers=igb]
drivers: [e1000, igb]
`;
    const r = await runBuild(
      {
        recipe: parseRecipeText(text, "t.yaml", { knownDrivers }, repoRoot),
        cacheDir,
        offline: true,
        jobs: 2,
      },
      { exec },
    );
    t.false(r.ok);
    t.true(r.error instanceof StepError);
    const e = r.error as StepError;
    t.is(e.step, "configure");
    t.regex(e.message, /igb: no-patch/);
    t.regex(e.hint ?? "", /igb: netmap has no igb patch/);
    t.is(status(r, "make"), "skipped");
    t.is(status(r, "manifest"), "skipped");
    t.is(status(r, "cache-store"), "skipped");
    t.false(r.state.makeRan);
  },
);

test.serial("a changed driver set rebuilds under another key (igb accepted as emulated)", async (t) => {
  const text = `name: build-test
kernel:
  version: running
  buildDir: ${KDIR}
  sources: { kind: local, path: ${kernelSources} }
netmap:
  source: { kind: local, path: ${standinDir} }
  apps: [pkt-gen]
  configure:
    options: [--no-ext-drivers=igb]
drivers: [e1000, igb]
emulatedOk: [igb]
`;
  const r = await runBuild(
    { recipe: parseRecipeText(text, "t.yaml", { knownDrivers }, repoRoot), cacheDir, offline: true, jobs: 2 },
    { exec },
  );
  t.true(r.ok, String((r.error as Error | undefined)?.message));
  t.false(r.cacheHit);
  t.not(r.key, cold.key);
  t.true(r.state.makeRan);
  t.deepEqual(r.manifest?.native, ["e1000"]);
  t.deepEqual(r.manifest?.emulated, [{ driver: "igb", reason: "no-patch" }]);
});

test.serial("offline: a recipe needing a download fails in the first step, naming the URL", async (t) => {
  const url = "http://127.0.0.1:9/nothing.tar.gz";
  const text = `name: build-test
kernel:
  version: running
  buildDir: ${KDIR}
  sources: { kind: local, path: ${kernelSources} }
netmap:
  source: { kind: tarball, url: "${url}", sha256: "${"ab".repeat(32)}" }
drivers: [e1000]
`;
  const rec = parseRecipeText(text, "t.yaml", { knownDrivers }, repoRoot);
  for (const offline of [true, false]) {
    const r = await runBuild({ recipe: rec, cacheDir, offline, jobs: 2 }, { exec });
    t.false(r.ok);
    t.true(r.error instanceof BlockedError, `offline=${offline}`);
    const e = r.error as BlockedError;
    t.true(e.message.includes(url));
    t.true(e.message.includes("ab".repeat(32)));
    t.regex(e.hint ?? "", /netmap-provision fetch/);
    t.true((e.hint ?? "").includes(join(cacheDir, "downloads", "sha256")));
    t.is(status(r, "sources"), "failed");
    t.is(status(r, "configure"), "skipped");
    t.is(status(r, "make"), "skipped");
  }
});

test.serial(
  "build bundle: written from the cache, read back with checksums and release checked",
  async (t) => {
    const m = cold.manifest;
    if (!m || !cold.artifactsDir) return t.fail("no cold build");
    const file = join(cacheDir, "bundle.tar");
    // A private mirror's password stays on the build host: the bundle carries the URL without it.
    const withSecret = { ...recipe(""), mirror: "https://user:s3cret@example.org/netmap.git" };
    await writeBundle({ file, artifactsDir: cold.artifactsDir, manifest: m, recipe: withSecret, exec });
    const b = await readBundle(file, { exec, release: RELEASE, into: join(cacheDir, "bundle-open") });
    t.is((b.recipe as { mirror?: string }).mirror, "https://user:***@example.org/netmap.git");
    t.false(readFileSync(file).includes("s3cret"), "the password is in the bundle file");
    t.deepEqual(
      b.manifest.modules.map((x) => x.sha256),
      m.modules.map((x) => x.sha256),
    );
    const wrong = await t.throwsAsync(
      readBundle(file, { exec, release: OTHER_RELEASE, into: join(cacheDir, "bundle-open2") }),
    );
    t.true(wrong instanceof BlockedError);
    t.regex(
      wrong?.message ?? "",
      new RegExp(`built for ${reEscape(RELEASE)}, but this host runs ${reEscape(OTHER_RELEASE)}`),
    );
  },
);

/** A recipe in the seed's netmap layout (legacy-make, netmap_lin) on the stand-in's old layout. */
function legacyRecipe(sources: string): BuildRequest["recipe"] {
  const text = `name: build-test-legacy
kernel:
  version: running
  buildDir: ${KDIR}
  sources: { kind: local, path: ${sources} }
netmap:
  source: { kind: local, path: ${legacyStandinDir} }
  layout: legacy-make
  apps: [pkt-gen]
drivers: [e1000]
modules:
  strategy: replace
`;
  return parseRecipeText(text, "build-test-legacy.yaml", { knownDrivers }, repoRoot);
}

test.serial(
  "legacy layout: a copy of the tree, `make KSRC= SRC=` then `apps`; netmap_lin.ko, LINUX/e1000/e1000.ko depending on it, examples/pkt-gen",
  async (t) => {
    const r = await runBuild(
      { recipe: legacyRecipe(kernelSources), cacheDir, offline: true, jobs: 2 },
      { exec },
    );
    t.true(r.ok, String((r.error as Error | undefined)?.message));
    t.is(r.state.netmap?.layout, "legacy-make");
    t.is(r.state.configure, undefined, "no configure before v11.1");
    const m = r.manifest;
    if (!m || !r.artifactsDir) return t.fail("no manifest");
    t.is(m.netmapModule, "netmap_lin");
    t.deepEqual(m.native, ["e1000"]);
    const netmap = m.modules.find((x) => x.name === "netmap_lin");
    const e1000 = m.modules.find((x) => x.name === "e1000");
    t.is(netmap?.path, "LINUX/netmap_lin.ko");
    t.is(e1000?.path, "LINUX/e1000/e1000.ko");
    t.is(e1000?.driver, "e1000");
    t.deepEqual(e1000?.depends, ["netmap_lin"]);
    t.is(netmap?.vermagic.split(" ")[0], RELEASE);
    t.deepEqual(
      m.apps.map((a) => [a.name, a.path]),
      [["pkt-gen", "examples/pkt-gen"]],
    );
    // The source tree itself is never built in: the build made its copy.
    t.false(existsSync(join(legacyStandinDir, "LINUX", "netmap_lin.ko")));
    t.false(existsSync(join(legacyStandinDir, "LINUX", "e1000")));
    const makeLog = readFileSync(join(r.cacheEntry as string, "logs", "make.log"), "utf8");
    t.regex(makeLog, /expecting 5 objects \(netmap_lin 1, e1000\/e1000 4, 0 user-space\)/);
    t.regex(makeLog, /^# compiled 5\/5 objects/m);
    t.true(
      makeLog.includes(`KSRC=${KDIR} SRC=${kernelSources}`),
      "the kernel sources reach the old Makefile as SRC=",
    );
  },
);

test.serial(
  "legacy layout, kernel sources without e1000: the old make exits 0 without it, and the manifest step says so",
  async (t) => {
    // A tree of the right version with no drivers in it: v11.0's make copies nothing and goes on.
    const bare = join(cacheDir, "bare-ksrc");
    mkdirSync(bare, { recursive: true });
    copyFileSync(join(kernelSources, "Makefile"), join(bare, "Makefile"));
    // Its own cache: the key does not name the kernel sources, so the first legacy build would be a hit.
    const r = await runBuild(
      { recipe: legacyRecipe(bare), cacheDir: join(cacheDir, "bare-cache"), offline: true, jobs: 2 },
      { exec },
    );
    t.false(r.ok);
    t.is(status(r, "make"), "passed");
    t.is(status(r, "manifest"), "failed");
    const e = r.error as StepError;
    t.true(e instanceof StepError);
    t.regex(e.message, /e1000 was to be built natively .* but make produced no LINUX\/e1000\/e1000\.ko/);
    t.regex(e.hint ?? "", /netmap's old Makefile, which leaves out a driver/);
  },
);
