import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeBundle } from "../../toolkit/build/bundle.js";
import { runBuild } from "../../toolkit/build/pipeline.js";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { createExec } from "../../toolkit/core/exec.js";
import { loadRecipe } from "../../toolkit/recipe/load.js";
import { applyOverrides } from "../../toolkit/recipe/overrides.js";
import type { DebianKernel } from "./debian-kernel.js";
import { ensureKernelDriverSources, standinDir } from "./kernel-sources.js";

export interface StandinBundle {
  /** The bundle file (`up --from`). */
  bundle: string;
  /** The build's cache dir. */
  cacheDir: string;
  /** The unpacked kernel sources the stand-in's e1000 was built from. */
  kernelSources: string;
  /** The flags that build the same thing again with the CLI (`up`, `build`). */
  flags: string[];
}

/**
 * The guest tiers' one build: the netmap stand-in and its patched e1000 built ONCE on the host
 * through the toolkit's own pipeline (offline, into `<work>/cache`), then written as a bundle.
 */
export async function buildStandinBundle(
  work: string,
  recipeFile: string,
  debian: DebianKernel,
  /** The stand-in tree: the configure layout (default), or its old layout (legacyStandinDir). */
  netmapSource: string = standinDir,
): Promise<StandinBundle> {
  const exec = createExec();
  const cacheDir = join(work, "cache");
  const bundle = join(work, "standin.bundle");
  mkdirSync(cacheDir, { recursive: true });
  const kernelSources = ensureKernelDriverSources(debian.sourceTarball);
  const catalog = loadDriverCatalog();
  const knownDrivers = catalog.list().map((d) => d.token);
  const { recipe } = applyOverrides(
    loadRecipe(recipeFile, { knownDrivers }).recipe,
    { netmapSource, kernelDir: debian.buildDir, kernelSources, drivers: "e1000" },
    { knownDrivers },
  );
  const res = await runBuild({ recipe, cacheDir, offline: true, jobs: 2, catalog }, { exec });
  if (!res.ok || !res.manifest || !res.artifactsDir) throw res.error ?? new Error("stand-in build failed");
  await writeBundle({ file: bundle, artifactsDir: res.artifactsDir, manifest: res.manifest, recipe, exec });
  const flags = [
    ...["--recipe", recipeFile, "--netmap-source", netmapSource, "--kernel-dir", debian.buildDir],
    ...["--kernel-sources", kernelSources, "--drivers", "e1000", "--cache-dir", cacheDir],
  ];
  return { bundle, cacheDir, kernelSources, flags };
}
