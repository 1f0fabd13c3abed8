import { statSync } from "node:fs";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { compilerIdentity } from "../build/cache.js";
import type { DriverCatalog } from "../catalog/drivers.js";
import { loadKernelCatalog, loadNetmapUpstream } from "../catalog/kernels.js";
import { UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { gatherHostFacts } from "../host/facts.js";
import { type KernelBuildOverrides, resolveKernelPhase } from "../kernel/phase.js";
import { readModulesDep } from "../modules/resolve.js";
import type { Recipe } from "../recipe/schema.js";
import { recordInterfaceState } from "../swap/iface-state.js";
import type { PlanInputs } from "./plan.js";

/** The gcc version (`cc -dumpfullversion`), or null without a compiler: a read-only probe. */
export async function gccVersion(exec: Exec): Promise<string | null> {
  const r = await exec.run(["cc", "-dumpfullversion", "-dumpversion"], { reject: false });
  return r.exitCode === 0 ? r.stdout.trim().split("\n")[0] || null : null;
}

/** Gather everything buildPlan needs from the host (reads files; one compiler probe). */
export async function gatherPlanInputs(o: {
  recipe: Recipe;
  catalog: DriverCatalog;
  root: string;
  exec: Exec;
  cacheDir: string;
  stateDir: string;
  allowManagement?: boolean;
  /** `--from <bundle>`: plan an install of the bundle's modules, no build. */
  from?: string;
  /**
   * kernel.build recipes: the kernel build's overrides, as `up`'s kernel phase gets them
   * (KernelPhaseOptions.build), and the root it installs into (default "/": this host).
   */
  kernel?: KernelBuildOverrides & { installRoot?: string };
}): Promise<PlanInputs> {
  if (o.from !== undefined) checkBundlePath(o.from);
  const facts = await gatherHostFacts({ root: o.root, catalog: o.catalog, exec: o.exec });
  // What the swap will put back on each NIC (read-only `ip -j`): only on the host itself, as a
  // host tree's interfaces are not this machine's.
  const nics = facts.nics.filter((n) => n.module !== null).map((n) => n.ifname);
  const interfaces = o.root === "/" ? await recordInterfaceState(o.exec, nics).catch(() => null) : null;
  // The kernel phase as up runs it (toolkit/up/kernel-phase.ts): build, install, next boot on the host.
  const installRoot = o.kernel?.installRoot ?? "/";
  const kernelPhase =
    o.recipe.kernel.build && o.from === undefined
      ? await resolveKernelPhase(
          {
            recipe: o.recipe,
            cacheDir: o.cacheDir,
            exec: o.exec,
            root: o.root,
            driverCatalog: o.catalog,
            ...o.kernel,
            installRoot,
            setNextBoot: resolve(installRoot) === "/",
            stateDir: o.stateDir,
          },
          { forPlan: true },
        )
      : undefined;
  return {
    recipe: o.recipe,
    facts,
    drivers: o.catalog,
    kernels: loadKernelCatalog(),
    upstream: loadNetmapUpstream(),
    modulesDep: facts.kernel.moduleDirExists ? readModulesDep(o.root, facts.kernel.release) : new Map(),
    gccVersion: await gccVersion(o.exec),
    // A bundle builds nothing here, so its plan needs no build key.
    ...(o.from === undefined ? { compiler: await compilerIdentity(o.exec) } : {}),
    cacheDir: o.cacheDir,
    stateDir: o.stateDir,
    jobs: Math.max(1, cpus().length),
    allowManagement: o.allowManagement ?? false,
    interfaces,
    ...(o.from !== undefined ? { from: o.from } : {}),
    ...(kernelPhase ? { kernelPhase } : {}),
  };
}

/** The bundle must be a regular file (a FIFO or a device would make the unpack wait or read forever). */
function checkBundlePath(file: string): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch {
    throw new UserError(`bundle ${file} does not exist`, "pass the file written by `build --out`");
  }
  if (!st.isFile())
    throw new UserError(
      `bundle ${file} is not a regular file`,
      "pass the .tar file written by `build --out`, not a directory, pipe or device",
    );
}
