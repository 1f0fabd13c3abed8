import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { loadKernelCatalog } from "../../toolkit/catalog/kernels.js";
import { BlockedError, StepError, UserError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import { parseKernelConfig } from "../../toolkit/host/kconfig.js";
import { buildAndInstallKernel } from "../../toolkit/kernel/build-and-install.js";
import { ensureBuildSources } from "../../toolkit/kernel/build-sources.js";
import {
  configureKernel,
  driverSymbols,
  droppedLines,
  listFragments,
  lsmodText,
  mergeConfigFragments,
  notModules,
  oldConfigTarget,
  parseModuleList,
  readFragment,
} from "../../toolkit/kernel/config.js";
import { loadRecipe } from "../../toolkit/recipe/load.js";
import { debianKernel } from "../helpers/debian-kernel.js";
import { kernelTestCache, testKernelSources } from "../helpers/kernel-build.js";
import { repoRoot } from "../helpers/paths.js";

const drivers = loadDriverCatalog();
const exec = createExec();

test("fragments replace a symbol's line, including 'is not set' ones", (t) => {
  const base = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n";
  const out = mergeConfigFragments(base, ["CONFIG_B=m\n# CONFIG_C is not set\n# comment\n", 'CONFIG_D="x"']);
  t.is(out, 'CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x"\n');
});

test("droppedLines names fragment lines the final config does not honour", (t) => {
  const values = parseKernelConfig("CONFIG_A=y\nCONFIG_B=m\n");
  t.deepEqual(
    droppedLines(
      ["CONFIG_A=y\nCONFIG_B=y\n# CONFIG_A is not set\n# CONFIG_Z is not set\nCONFIG_Q=m"],
      values,
    ),
    ["CONFIG_B=y", "# CONFIG_A is not set", "CONFIG_Q=m"],
  );
});

test("lsmod listing and /proc/modules parsing agree", (t) => {
  const text = lsmodText(["virtio-net", "ext4", "ext4"]);
  t.is(text.split("\n")[0], "Module                  Size  Used by");
  t.deepEqual(parseModuleList(text), ["ext4", "virtio_net"]);
  t.deepEqual(parseModuleList("e1000 163840 0 - Live 0x0000000000000000\nnetmap 1 1 e1000, Live 0x0\n"), [
    "e1000",
    "netmap",
  ]);
});

test("driver tokens map to their CONFIG symbols from drivers/*.yaml", (t) => {
  t.deepEqual(driverSymbols(["e1000", "e1000e", "virtio_net.c"], drivers), ["E1000", "E1000E", "VIRTIO_NET"]);
  t.deepEqual(
    notModules(parseKernelConfig("CONFIG_E1000=m\nCONFIG_E1000E=y\n"), ["E1000", "E1000E", "IGB"]),
    [
      { symbol: "CONFIG_E1000E", value: "y" },
      { symbol: "CONFIG_IGB", value: "n" },
    ],
  );
});

test("olddefconfig from 3.7, oldnoconfig before", (t) => {
  t.is(oldConfigTarget("2.6.37"), "oldnoconfig");
  t.is(oldConfigTarget("3.7.0"), "olddefconfig");
  t.is(oldConfigTarget("6.1.192"), "olddefconfig");
});

test("the guest-minimal fragment ships and an unknown fragment lists the known ones", (t) => {
  t.true(listFragments().includes("guest-minimal"));
  t.regex(readFragment("guest-minimal"), /^CONFIG_E1000=m$/m);
  t.throws(() => readFragment("nope"), {
    instanceOf: UserError,
    message: /no kernel config fragment "nope"/,
  });
});

test("the running kernel's config comes from the fallback chain: /proc/config.gz when /boot has none", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "np-kcfg-"));
  mkdirSync(join(root, "proc"));
  writeFileSync(join(root, "proc", "config.gz"), gzipSync("CONFIG_FROM_PROC=y\n"));
  const out = mkdtempSync(join(tmpdir(), "np-kcfg-out-"));
  // A fake "make" is not used here: only the base step is exercised through a missing tree,
  // which fails after the base config was written.
  const kernel = { release: "9.9.9-test", build: { path: "/lib/modules/9.9.9-test/build", resolved: null } };
  await t.throwsAsync(
    configureKernel({
      src: join(root, "no-tree"),
      out,
      version: "6.1.0",
      base: { kind: "running", root, kernel: kernel as never },
      exec,
    }),
  );
  t.regex((await import("node:fs")).readFileSync(join(out, ".config"), "utf8"), /^CONFIG_FROM_PROC=y$/m);
  // With no config anywhere: BlockedError naming all three places.
  const empty = mkdtempSync(join(tmpdir(), "np-kcfg-empty-"));
  await t.throwsAsync(
    configureKernel({
      src: root,
      out,
      version: "6.1.0",
      base: { kind: "running", root: empty, kernel: kernel as never },
      exec,
    }),
    { instanceOf: BlockedError, message: /\/boot\/config-9\.9\.9-test, \/proc\/config\.gz and/ },
  );
});

test("an out-of-range compiler is refused before any download or unpack (seed 2.6.37, gcc 12)", async (t) => {
  const { recipe, source } = loadRecipe(join(repoRoot, "recipes", "seed-2.6.37-e1000.yaml"), {
    knownDrivers: drivers.list().map((d) => d.token),
  });
  const cacheDir = mkdtempSync(join(tmpdir(), "np-kcache-"));
  const e = await t.throwsAsync(
    buildAndInstallKernel({
      recipe,
      recipePath: source.file,
      cacheDir,
      exec,
      driverCatalog: drivers,
      gcc: "12.2.0",
      offline: true,
    }),
    { instanceOf: BlockedError },
  );
  t.regex(e?.message ?? "", /gcc 12\.2\.0 cannot build Linux 2\.6\.37: this series needs gcc 3\.2 to 4\.9/);
  t.false(existsSync(join(cacheDir, "downloads")));
  t.false(existsSync(join(cacheDir, "kernel-sources")));
  t.truthy(loadKernelCatalog().seriesFor("2.6.37"));
});

// The real thing: Debian's full 6.1 config, localmodconfig from a module list without e1000,
// then the recipe's driver forced back to =m, checked by reading the result.
test("localmodconfig on the real 6.1 tree drops e1000; forcing brings it back as =m", async (t) => {
  t.timeout(20 * 60_000);
  const src = await ensureBuildSources(testKernelSources(), { cacheDir: kernelTestCache, exec });
  // The installed Debian kernel's config (linux-image-amd64), whichever ABI release apt put there.
  const bootConfig = debianKernel().config;
  const base = { kind: "file" as const, path: bootConfig };
  const modules = ["virtio_net", "virtio_pci", "ext4", "9p", "overlay"];
  const out = mkdtempSync(join(tmpdir(), "np-lmc-"));
  const plain = await configureKernel({
    src: src.dir,
    out,
    version: src.version,
    base,
    localmodconfig: modules,
    exec,
  });
  t.not(plain.values.get("CONFIG_E1000"), "m", "localmodconfig without forcing must drop e1000");
  t.is(plain.values.get("CONFIG_VIRTIO_NET"), "m");
  t.is(
    parseKernelConfig((await import("node:fs")).readFileSync(bootConfig, "utf8")).get("CONFIG_E1000"),
    "m",
  );

  const forced = await configureKernel({
    src: src.dir,
    out,
    version: src.version,
    base,
    localmodconfig: modules,
    modules: driverSymbols(["e1000"], drivers),
    localversion: "-np",
    exec,
  });
  t.is(forced.values.get("CONFIG_E1000"), "m");
  t.is(forced.values.get("CONFIG_LOCALVERSION"), "-np");
  t.is(forced.values.get("CONFIG_SYSTEM_TRUSTED_KEYS"), "");
  // A driver whose dependency localmodconfig left off cannot be forced: a clear error, not a silent =n.
  await t.throwsAsync(
    configureKernel({
      src: src.dir,
      out,
      version: src.version,
      base,
      localmodconfig: modules,
      modules: ["MLX5_CORE", "E1000"],
      fragments: [],
      exec,
    }).then(async (r) => {
      // If MLX5 survived (its deps are bools kept by localmodconfig), force a truly impossible one.
      if (r.values.get("CONFIG_MLX5_CORE") === "m")
        await configureKernel({
          src: src.dir,
          out,
          version: src.version,
          base,
          modules: ["NO_SUCH_SYMBOL_X"],
          exec,
        });
    }),
    { instanceOf: StepError, message: /does not build CONFIG_(MLX5_CORE|NO_SUCH_SYMBOL_X) as a module/ },
  );
});
