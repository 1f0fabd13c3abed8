import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { compilerIdentity } from "../build/cache.js";
import { defaultJobs } from "../build/make.js";
import { localversionSuffix } from "../build/resolve.js";
import type { DriverCatalog } from "../catalog/drivers.js";
import type { KernelCatalog } from "../catalog/kernels.js";
import { ProvisionError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { readKernelFacts } from "../host/kernel-facts.js";
import { parseKernelVersion } from "../recipe/kernel-version.js";
import type { Recipe } from "../recipe/schema.js";
import type { Step, StepContext, StepDescription } from "../runner/step.js";
import { builtRelease } from "./build.js";
import {
  type KernelSourceSpec,
  kernelSourceSpec,
  type LocatedKernelSources,
  locateBuildSources,
  type ResolvedKernelSources,
} from "./build-sources.js";
import { kernelBuildStep } from "./build-step.js";
import { baseConfigSource, type ConfigBase, driverSymbols, parseModuleList, readFragment } from "./config.js";
import { kernelConfigStep } from "./config-step.js";
import { kernelInstallStep } from "./install-step.js";
import { describeReboot } from "./reboot-step.js";
import { kernelFetchStep } from "./sources-step.js";

/**
 * The kernel phase (`kernel build`, the kernel part of `up`) resolved ONCE: sources, version,
 * base config, fragments, driver symbols, localversion, the cache key and the O= dir it names,
 * whether that dir is built already, the release, how it is installed. The steps (kernel-fetch,
 * kernel-config, kernel-build, kernel-install) describe their exact commands from it for `plan`
 * and run from it, with the same argv builders, so the plan and the run cannot drift apart.
 *
 * Layout under the cache dir: kernel-sources/<x.y.z>/ (pristine, shared with netmap builds) and
 * kernel-build/<x.y.z>-<key>/ (the O= dir: .config, objects, bzImage, build.log).
 */

export interface KernelBuildRequest {
  recipe: Recipe;
  /** The recipe file, recorded in resume.json. */
  recipePath?: string;
  cacheDir: string;
  exec: Exec;
  /** Host root prefix for reading the running kernel's config and modules ("/" on a real host). */
  root?: string;
  /** Sources override (default: from recipe.kernel.sources). */
  sources?: KernelSourceSpec;
  /** Base config override (default: recipe.kernel.config.from). */
  base?: ConfigBase;
  /** Fragments added to the recipe's. */
  fragments?: readonly string[];
  /** "running": modules loaded now (/proc/modules); a list: those names. Undefined: no localmodconfig. */
  localmodconfig?: "running" | readonly string[];
  /** Driver tokens whose CONFIG symbol must be =m (default: the recipe's drivers when listed). */
  drivers?: readonly string[];
  driverCatalog: DriverCatalog;
  kernels?: KernelCatalog;
  /** Where to install: "/" is the real host (modules to /lib/modules, image to /boot). Undefined: build only. */
  installRoot?: string;
  /** Real host only: set the new kernel for the next boot once (grub-reboot). */
  setNextBoot?: boolean;
  /** Write resume.json here (kernel-built, kernel-installed, awaiting-reboot). */
  stateDir?: string;
  jobs?: number;
  offline?: boolean;
  /** gcc version; undefined: asked from `cc`. */
  gcc?: string | null;
  onProgress?: (text: string) => void;
}

/** The overrides `up`'s kernel phase and `plan` pass on to the kernel build (tests pin a cached build's inputs). */
export type KernelBuildOverrides = Pick<
  KernelBuildRequest,
  "sources" | "base" | "fragments" | "localmodconfig" | "drivers" | "jobs" | "offline" | "gcc"
>;

export interface KernelInstallPlan {
  /** "/" is the real host; anything else a staging root. */
  root: string;
  realHost: boolean;
  mode: "make" | "deb";
  /** grub-reboot after the install (real host only). */
  setNextBoot: boolean;
}

export interface KernelPhase {
  recipe: Recipe;
  cacheDir: string;
  root: string;
  sources: LocatedKernelSources;
  /** The version the recipe pins up front (the compiler is checked against it before any fetch). */
  pinned?: string;
  /** x.y.z of the tree; undefined until a git tag nobody pinned is cloned. */
  version?: string;
  base: ConfigBase;
  /** Where the base config comes from (a file, tinyconfig, /boot/config-<release>...). */
  baseSource: string;
  fragments: string[];
  /** CONFIG symbols forced to =m (the recipe's NIC drivers). */
  symbols: string[];
  localmodconfig?: string[];
  /** CONFIG_LOCALVERSION ("-np"), when the recipe sets kernel.localversion. */
  localversion?: string;
  /** First line of `cc --version` (part of the key). */
  compiler: string;
  /** The cache key of the O= dir; undefined while the version is unknown. */
  key?: string;
  /** The O= dir: `<cache>/kernel-build/<x.y.z>-<key>` (netmap's --kernel-dir). */
  out: string;
  /** The O= dir holds a finished build of exactly these inputs: nothing is configured or compiled. */
  cached: boolean;
  /** The release the build produces (read from the tree once built). */
  release: string;
  jobs: number;
  install?: KernelInstallPlan;
  stateDir?: string;
  /** What stops the phase, found while resolving for `plan` (the run throws these instead). */
  problems: Array<{ message: string; fix: string }>;
}

/** What the kernel steps hand each other while they run. */
export interface KernelPhaseContext extends StepContext {
  req: KernelBuildRequest;
  /** The phase; the fetch step settles it once the sources are on disk (a cloned tag's version). */
  phase: KernelPhase;
  kernels: KernelCatalog;
  gcc: string | null;
  progress: (text: string) => void;
  result: {
    src?: ResolvedKernelSources;
    compiled: number;
    buildMs: number;
    warnings: string[];
    debs?: string[];
    moduleDir?: string;
    nextBoot?: string[];
  };
}

/** The marker a finished build leaves in its O= dir: the key it was built with. */
export const BUILT_MARKER = ".netmap-provision-built";

/** The build log in the O= dir. */
export const kernelBuildLog = (out: string): string => join(out, "build.log");

/** The version a recipe pins, when it does without looking at the sources. */
export function pinnedVersion(recipe: Recipe, spec: KernelSourceSpec): string | undefined {
  if (spec.kind === "kernelorg") return spec.version;
  const v = parseKernelVersion(recipe.kernel.version);
  return "kind" in v && v.kind === "exact" ? v.version : undefined;
}

function configBase(req: KernelBuildRequest, root: string): ConfigBase {
  if (req.base) return req.base;
  const from = req.recipe.kernel.config.from;
  if (from !== "running") return { kind: "file", path: from.file };
  return { kind: "running", root, kernel: readKernelFacts(root) };
}

function baseIdentity(base: ConfigBase): string {
  if (base.kind === "tiny") return "tiny";
  if (base.kind === "file") return readFileSync(base.path, "utf8");
  return `running:${base.root}:${base.kernel.release}`;
}

/** The key of a kernel build: everything that shapes the O= dir's result. */
export function kernelBuildKey(i: {
  srcId: string;
  version: string;
  base: ConfigBase;
  fragments: readonly string[];
  localmodconfig?: readonly string[];
  symbols: readonly string[];
  /** kernel.localversion as the recipe writes it. */
  localversion?: string;
  compiler: string;
}): string {
  return createHash("sha256")
    .update(
      JSON.stringify({
        src: i.srcId,
        version: i.version,
        base: createHash("sha256").update(baseIdentity(i.base)).digest("hex"),
        fragments: i.fragments.map((f) => [f, readFragment(f)]),
        lmc: i.localmodconfig ? [...i.localmodconfig].sort() : null,
        symbols: i.symbols,
        localversion: i.localversion ?? null,
        cc: i.compiler,
      }),
    )
    .digest("hex")
    .slice(0, 16);
}

/** The key, the O= dir it names, whether it is built, and the release, for the phase's sources. */
export function settleKernelPhase(p: Omit<KernelPhase, "key" | "out" | "cached" | "release">): KernelPhase {
  const version = p.sources.version ?? p.pinned;
  const suffix = localversionSuffix(p.recipe.kernel.localversion);
  let key: string | undefined;
  if (p.sources.version && p.problems.length === 0)
    key = kernelBuildKey({
      srcId: p.sources.id,
      version: p.sources.version,
      base: p.base,
      fragments: p.fragments,
      ...(p.localmodconfig ? { localmodconfig: p.localmodconfig } : {}),
      symbols: p.symbols,
      ...(p.recipe.kernel.localversion !== undefined ? { localversion: p.recipe.kernel.localversion } : {}),
      compiler: p.compiler,
    });
  const out = join(
    p.cacheDir,
    "kernel-build",
    `${p.sources.version ?? "<version>"}-${key ?? "<inputs-key>"}`,
  );
  const marker = join(out, BUILT_MARKER);
  const cached = key !== undefined && existsSync(marker) && readFileSync(marker, "utf8").trim() === key;
  const release = (cached ? builtRelease(out) : undefined) ?? `${version ?? "<version>"}${suffix}`;
  return { ...p, version, ...(key ? { key } : {}), out, cached, release };
}

/**
 * Resolve the phase for `req`. Reads files and probes the compiler (`cc --version`); fetches,
 * writes and compiles nothing. forPlan: host problems (a missing tarball or config, an unknown
 * fragment) become `problems` instead of errors, so `plan` prints them as blockers.
 */
export async function resolveKernelPhase(
  req: KernelBuildRequest,
  o: { forPlan?: boolean } = {},
): Promise<KernelPhase> {
  const root = req.root ?? "/";
  const problems: KernelPhase["problems"] = [];
  const attempt = async <T>(f: () => T | Promise<T>, fallback: T): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      if (!o.forPlan || !(e instanceof ProvisionError)) throw e;
      problems.push({ message: e.message, fix: e.hint ?? "" });
      return fallback;
    }
  };
  const recipe = req.recipe;
  const spec = req.sources ?? kernelSourceSpec(recipe, root);
  const pinned = pinnedVersion(recipe, spec);
  const sources = await attempt<LocatedKernelSources>(
    () => locateBuildSources(spec, { cacheDir: req.cacheDir, ...(pinned ? { expectVersion: pinned } : {}) }),
    { spec, dir: "<kernel sources>", id: "", ready: false },
  );
  const fragments = [...recipe.kernel.config.fragments, ...(req.fragments ?? [])];
  await attempt(() => fragments.map((f) => readFragment(f)), []);
  const drivers = req.drivers ?? (Array.isArray(recipe.drivers) ? recipe.drivers : []);
  const symbols = driverSymbols(drivers, req.driverCatalog);
  const lmc =
    req.localmodconfig === "running"
      ? await attempt(() => parseModuleList(readFileSync(underRoot(root, "/proc/modules"), "utf8")), [])
      : req.localmodconfig
        ? [...req.localmodconfig]
        : undefined;
  const base = configBase(req, root);
  // Only `plan` shows it; a run finds a missing config when it configures (never on a cache hit).
  let baseSource = "<base config>";
  if (o.forPlan) baseSource = await attempt(() => baseConfigSource(base), baseSource);
  else
    try {
      baseSource = baseConfigSource(base);
    } catch {}
  if (base.kind === "file") await attempt(() => baseIdentity(base), "");
  const lv = recipe.kernel.localversion;
  const installRoot = req.installRoot;
  return settleKernelPhase({
    recipe,
    cacheDir: req.cacheDir,
    root,
    sources,
    ...(pinned ? { pinned } : {}),
    base,
    baseSource,
    fragments,
    symbols,
    ...(lmc ? { localmodconfig: lmc } : {}),
    ...(lv !== undefined ? { localversion: localversionSuffix(lv) } : {}),
    compiler: await compilerIdentity(req.exec),
    jobs: req.jobs ?? defaultJobs(),
    ...(installRoot !== undefined
      ? {
          install: {
            root: installRoot,
            realHost: resolve(installRoot) === "/",
            mode: recipe.kernel.install,
            setNextBoot: req.setNextBoot === true,
          },
        }
      : {}),
    ...(req.stateDir !== undefined ? { stateDir: req.stateDir } : {}),
    problems,
  });
}

/** The phase's steps in the order they run: fetch, config, build, and install when asked for. */
export function kernelPhaseSteps(p: KernelPhase): Step<KernelPhaseContext>[] {
  return [
    kernelFetchStep(p),
    kernelConfigStep(p),
    kernelBuildStep(p),
    ...(p.install ? [kernelInstallStep(p)] : []),
  ];
}

/** What `plan` prints of the phase: its steps' descriptions, then the reboot `up` waits for. */
export function describeKernelPhase(p: KernelPhase, o: { stateDir: string }): StepDescription[] {
  const steps = kernelPhaseSteps(p).map((s) => s.describe());
  return [...steps, describeReboot(p, { stateDir: o.stateDir, after: steps.at(-1)?.id ?? "kernel-build" })];
}
