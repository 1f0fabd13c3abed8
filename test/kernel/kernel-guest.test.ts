import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { runBuild } from "../../toolkit/build/pipeline.js";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { createExec } from "../../toolkit/core/exec.js";
import { buildGuestInitramfs } from "../../toolkit/guest/initramfs.js";
import type { KernelBuildResult } from "../../toolkit/kernel/build-and-install.js";
import { ensureBuildSources } from "../../toolkit/kernel/build-sources.js";
import { loadRecipe, parseRecipeText } from "../../toolkit/recipe/load.js";
import { applyOverrides } from "../../toolkit/recipe/overrides.js";
import { staticBusybox } from "../helpers/debian-kernel.js";
import { assertBasicUpDown, runUpPayload } from "../helpers/guest-payload.js";
import {
  buildTestKernel,
  kernelTestCache,
  testKernelRecipeYaml,
  testKernelSources,
} from "../helpers/kernel-build.js";
import { standinDir } from "../helpers/kernel-sources.js";
import { fixture, repoRoot } from "../helpers/paths.js";

/**
 * Must hold: a small kernel from linux-source-6.1 with the guest-minimal fragment, built through
 * the toolkit (cached under .cache/kernel-test by its inputs, so reruns skip the compile), the
 * netmap stand-in built against it, and that kernel booted in the guest runner, where the real CLI
 * runs `up`, `status`, a second `up` and `down` (the committed payload's "basic" mode, held to the
 * same bar as the Debian-kernel tier in test/up/up-guest.test.ts).
 */

const catalog = loadDriverCatalog();
const knownDrivers = catalog.list().map((d) => d.token);
const exec = createExec();
const times: Record<string, number> = {};
let kernel: KernelBuildResult;
let stage = "";
const work = join(repoRoot, ".cache", "kernel-guest", `run-${process.pid}`);

test.after.always(() => {
  if (process.env.NP_KEEP_GUEST_RUNS !== "1") rmSync(work, { recursive: true, force: true });
});

const since = (t0: number): number => Math.round((performance.now() - t0) / 1000);

test.serial(
  "guest: the guest-minimal 6.1 kernel builds through the toolkit, e1000 as a module",
  async (t) => {
    t.timeout(40 * 60_000);
    const t0 = performance.now();
    const src = await ensureBuildSources(testKernelSources(), { cacheDir: kernelTestCache, exec });
    times.sources = since(t0);
    const recipe = parseRecipeText(
      testKernelRecipeYaml("kernel-guest", src, standinDir),
      "kernel-guest.yaml",
      { knownDrivers },
      repoRoot,
    );
    const t1 = performance.now();
    kernel = await buildTestKernel(recipe, catalog, exec, {
      jobs: 2,
    });
    times.kernelBuild = since(t1);
    t.is(kernel.release, `${src.version}-np`);
    t.true(existsSync(kernel.bootImage));
    const cfg = readFileSync(kernel.configPath, "utf8");
    t.regex(cfg, /^CONFIG_E1000=m$/m);
    t.regex(cfg, /^CONFIG_9P_FS=y$/m);
    t.regex(cfg, /^CONFIG_OVERLAY_FS=y$/m);
    t.deepEqual(kernel.warnings, []);

    // Modules into a staging root (modules_install runs depmod there); busybox beside them so the
    // initramfs builder reads everything from that one root.
    const t2 = performance.now();
    stage = join(kernelTestCache, "stage", kernel.key);
    const inst = await buildTestKernel(recipe, catalog, exec, {
      installRoot: stage,
    });
    times.install = since(t2);
    t.true(inst.cached, "the second call reuses the built tree");
    t.true(existsSync(join(stage, "lib/modules", kernel.release, "modules.dep")));
    t.true(existsSync(join(stage, "boot", `vmlinuz-${kernel.release}`)));
    t.log(
      `kernel ${kernel.release}: ${kernel.cached ? "cache hit" : `${kernel.compiled} objects compiled`} (${times.kernelBuild} s)`,
    );
  },
);

test.serial(
  "guest: in that kernel booted in QEMU, the CLI's up swaps and verifies, status shows it, down restores the stock e1000",
  async (t) => {
    t.timeout(25 * 60_000);
    if (!kernel) return t.fail("the kernel build failed");
    const t0 = performance.now();
    // The recipe and flags the Debian-kernel tier uses, pointed at this kernel's build dir and sources.
    const recipeFile = fixture("guest", "standin.yaml");
    const cacheDir = join(kernelTestCache, "netmap-builds");
    mkdirSync(cacheDir, { recursive: true });
    const { recipe } = applyOverrides(
      loadRecipe(recipeFile, { knownDrivers }).recipe,
      {
        netmapSource: standinDir,
        kernelDir: kernel.buildDir,
        kernelSources: kernel.srcDir,
        drivers: "e1000",
      },
      { knownDrivers },
    );
    // Built once here; the guest's `up` takes it from the same cache (a hit, no compiler run there).
    const built = await runBuild({ recipe, cacheDir, jobs: 2, offline: true, catalog }, { exec });
    if (!built.ok) throw built.error;
    times.netmapBuild = since(t0);
    const netmap = built.manifest?.modules.find((m) => m.name === "netmap");
    if (!netmap) return t.fail(`no netmap module: ${JSON.stringify(built.manifest?.modules)}`);
    t.true(netmap.vermagic.startsWith(`${kernel.release} `));

    const busybox = join(stage, "bin", "busybox");
    mkdirSync(join(stage, "bin"), { recursive: true });
    if (!existsSync(busybox)) copyFileSync(staticBusybox(), busybox);
    mkdirSync(work, { recursive: true });
    const initrd = join(work, "initramfs.cpio");
    // 9p, virtio and overlay are built in: modules.builtin lists them, so the closure is empty.
    const ird = await buildGuestInitramfs(exec, { root: stage, kernelRelease: kernel.release });
    t.deepEqual(ird.modules, []);
    writeFileSync(initrd, ird.image);

    // Its build symlink points at kernel.buildDir, so /lib/modules/<release>/build resolves in the guest.
    const moduleTree = join(stage, "lib", "modules", kernel.release);
    const flags = [
      "--recipe",
      recipeFile,
      "--netmap-source",
      standinDir,
      "--kernel-dir",
      kernel.buildDir,
      "--kernel-sources",
      kernel.srcDir,
      "--drivers",
      "e1000",
      "--cache-dir",
      cacheDir,
    ];
    const t1 = performance.now();
    const { out, log } = await runUpPayload({
      exec,
      kernel: kernel.bootImage,
      kernelRelease: kernel.release,
      work,
      mode: "basic",
      nics: [{ model: "e1000", id: "n0" }],
      flags,
      initrd,
      moduleTree,
      bootTimeoutMs: 300_000,
      totalTimeoutMs: 20 * 60_000,
    });
    times.guest = since(t1);
    t.log(log.split("\n")[0]);
    times.up = Math.round((out.up1?.ms ?? 0) / 1000);
    times.up2 = Math.round((out.up2?.ms ?? 0) / 1000);
    times.down = Math.round((out.down?.ms ?? 0) / 1000);
    t.log(`times (s): ${JSON.stringify(times)}`);
    t.is(
      out.stockPath,
      join("/lib/modules", kernel.release, "kernel/drivers/net/ethernet/intel/e1000/e1000.ko"),
    );
    assertBasicUpDown(t, out, log);
  },
);
