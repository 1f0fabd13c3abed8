import { existsSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { createExec } from "../../toolkit/core/exec.js";
import { ensureBuildSources } from "../../toolkit/kernel/build-sources.js";
import { parseRecipeText } from "../../toolkit/recipe/load.js";
import {
  buildTestKernel,
  kernelTestCache,
  testKernelRecipeYaml,
  testKernelSources,
} from "../helpers/kernel-build.js";
import { standinDir } from "../helpers/kernel-sources.js";
import { repoRoot } from "../helpers/paths.js";
import { tempDirs } from "../helpers/temp.js";

/**
 * kernel.install: deb: the toolkit-built 6.1 test kernel (a cache hit once
 * test/kernel/kernel-guest.test.ts built it) packaged with the kernel's own `make bindeb-pkg`,
 * then installed from the package into a staging root (`dpkg -x`, then `depmod -b`), so that on a
 * host removing the kernel is `apt remove linux-image-<release>`.
 */

const catalog = loadDriverCatalog();
const exec = createExec();
const tmp = tempDirs(test);

test("kernel.install deb: bindeb-pkg makes linux-image-<release>, and the staged install from it has the image and e1000.ko", async (t) => {
  t.timeout(40 * 60_000);
  const src = await ensureBuildSources(testKernelSources(), { cacheDir: kernelTestCache, exec });
  const recipe = parseRecipeText(
    testKernelRecipeYaml("kernel-package", src, standinDir).replace(
      "  localversion: np\n",
      "  localversion: np\n  install: deb\n",
    ),
    "kernel-package.yaml",
    { knownDrivers: catalog.list().map((d) => d.token) },
    repoRoot,
  );
  t.is(recipe.kernel.install, "deb");
  const stage = tmp("np-kdeb-root-");
  const r = await buildTestKernel(recipe, catalog, exec, {
    installRoot: stage,
    jobs: 2,
  });
  t.log(`kernel ${r.release}: ${r.cached ? "cache hit" : `${r.compiled} objects compiled`}`);
  const image = (r.debs ?? []).find((d) => d.includes(`/linux-image-${r.release}_`));
  if (!image) return t.fail(`no linux-image package among ${JSON.stringify(r.debs)}`);
  t.true(image.startsWith(join(r.buildDir, "debs")), "kept with its build, not beside other builds");
  const control = await exec.run(["dpkg-deb", "--field", image, "Package", "Version"]);
  t.regex(control.stdout, new RegExp(`^Package: linux-image-${r.release.replaceAll(".", "\\.")}$`, "m"));
  const listing = (await exec.run(["dpkg-deb", "--contents", image])).stdout;
  t.regex(listing, new RegExp(`\\./boot/vmlinuz-${r.release.replaceAll(".", "\\.")}\\b`));
  t.regex(listing, /\/kernel\/drivers\/net\/ethernet\/intel\/e1000\/e1000\.ko\b/);
  // Installed from the package into the staging root, indexed there.
  t.true(existsSync(join(stage, "boot", `vmlinuz-${r.release}`)));
  t.true(
    existsSync(join(stage, "lib/modules", r.release, "kernel/drivers/net/ethernet/intel/e1000/e1000.ko")),
  );
  t.true(existsSync(join(stage, "lib/modules", r.release, "modules.dep")));
  t.is(r.moduleDir, join(stage, "lib", "modules", r.release));
});
