import { join } from "node:path";
import { checkBundleRelease, readBundle } from "../build/bundle.js";
import type { BuildManifest } from "../build/manifest.js";
import { runBuild } from "../build/pipeline.js";
import { ProvisionError, StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import type { Step } from "../runner/step.js";
import type { UpArtifacts, UpRun } from "./context.js";
import type { UpOptions } from "./up.js";

/**
 * up's "build" step: the build pipeline (toolkit/build/pipeline.ts, whose own steps `plan` prints
 * one by one) or its cache, or a bundle checked against the target release. Nothing on the host
 * changes here; the artifacts are what install takes.
 */

function artifactsOf(manifest: BuildManifest, artifactsDir: string): Omit<UpArtifacts, "cleanup"> {
  const app = manifest.apps.find((a) => a.name === "pkt-gen");
  return {
    manifest,
    artifactsDir,
    modules: manifest.modules.map((m) => ({
      module: m.name,
      file: join(artifactsDir, m.path),
      sha256: m.sha256,
    })),
    pktgen: app ? join(artifactsDir, app.path) : undefined,
  };
}

async function getArtifacts(o: UpOptions, exec: Exec, release: string): Promise<UpArtifacts> {
  if (o.bundle && o.from) {
    // Opened and checked by runUp before anything else; here only the release is left to check.
    checkBundleRelease(o.from, o.bundle.manifest, release);
    return artifactsOf(o.bundle.manifest, o.bundle.artifactsDir);
  }
  if (o.from) {
    const b = await readBundle(o.from, { exec, release });
    return { ...artifactsOf(b.manifest, b.artifactsDir), cleanup: b.dispose };
  }
  const res = await runBuild(
    { recipe: o.run.recipe, cacheDir: o.run.cacheDir, root: o.run.root, catalog: o.run.catalog },
    { exec, renderer: "silent" },
  );
  if (!res.ok || !res.manifest || !res.artifactsDir) {
    if (res.error instanceof ProvisionError) throw res.error;
    throw new StepError("build", `the build failed (logs in ${res.workDir}/logs)`, undefined, res.error);
  }
  return artifactsOf(res.manifest, res.artifactsDir);
}

export function buildStep(o: UpOptions, r: UpRun): Step {
  return {
    describe: () => ({
      id: "build",
      title: o.from
        ? `Open the bundle ${o.from} (sha256 and release checked)`
        : "Build netmap and the patched drivers, or take them from the cache",
      mutates: false,
      dependsOn: [],
      commands: [],
      files: [],
      checks: [],
      notes: ["the build's own steps are in the plan: sources, configure, make, manifest, cache-store"],
    }),
    run: async () => {
      r.st.artifacts = await getArtifacts(o, r.exec, r.u.release);
    },
  };
}
