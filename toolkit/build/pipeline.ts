import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type DriverCatalog, loadDriverCatalog } from "../catalog/drivers.js";
import { UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { extractArgv } from "../core/safe-archive.js";
import type { DroppedDriver } from "../parse/configure-report.js";
import type { Recipe } from "../recipe/schema.js";
import type { RunResult } from "../runner/runner.js";
import { runSteps } from "../runner/runner.js";
import type { PlannedCommand, Step, StepContext, StepDescription } from "../runner/step.js";
import { type DownloadSpec, preflightDownloads } from "../sources/download.js";
import {
  type ExtDriverNeed,
  type ExtDriverPin,
  extDriverNeeds,
  placeExtDrivers,
} from "../sources/ext-drivers.js";
import {
  detectLayout,
  type NetmapSourceSpec,
  netmapSourceDownloads,
  type ResolvedNetmapSource,
  resolveNetmapSource,
  treeContentHash,
} from "../sources/netmap-source.js";
import {
  ensureKernelSources,
  type KernelSources,
  type KernelTarballSpec,
  type KernelTarget,
  kernelSourcesDownloads,
  kernelSourcesUnpackDir,
  readKernelTarget,
} from "../sources/target-kernel-sources.js";
import {
  buildKey,
  type CachedBuild,
  compilerIdentity,
  kernelConfigHash,
  lookupBuild,
  storeBuild,
} from "./cache.js";
import { type ConfigureOutcome, configureArgv, runConfigure } from "./configure.js";
import { describeExpected, expectedObjects } from "./expected-objects.js";
import { defaultJobs, legacyMakeArgs, makeArgv, runLegacyMake, runMake } from "./make.js";
import {
  type BuildManifest,
  checkVermagic,
  collectManifest,
  modinfoArgv,
  writeManifest,
} from "./manifest.js";
import {
  type KernelSourcesResolution,
  kernelSourcesPlan,
  type ResolveRequest,
  requestedDrivers,
  resolveKernelSources,
  targetRelease,
} from "./resolve.js";

export { targetRelease } from "./resolve.js";

/**
 * The build as steps: sources (every download checked first, cache lookup), ext-drivers,
 * configure, make, manifest (vermagic checked), cache-store. On a cache hit every step after
 * sources does nothing and says so: no configure, no compiler.
 */

export interface BuildRequest extends ResolveRequest {
  offline?: boolean;
  jobs?: number;
  /** sha256 pins for external driver archives the catalog does not pin. */
  extPins?: Record<string, ExtDriverPin>;
  catalog?: DriverCatalog;
}

/** What the steps hand each other. */
export interface BuildState {
  workDir: string;
  buildDir: string;
  logDir: string;
  target?: KernelTarget;
  drivers: string[];
  /** Drivers left out before configure (unpinned external archive, emulated accepted). */
  skipped: Array<{ token: string; why: string }>;
  extNeeds: ExtDriverNeed[];
  netmap?: ResolvedNetmapSource;
  kernelSources?: KernelSources;
  key?: string;
  hit?: CachedBuild;
  configure?: ConfigureOutcome;
  manifest?: BuildManifest;
  stored?: CachedBuild;
  makeRan: boolean;
}

export interface BuildContext extends StepContext {
  req: BuildRequest;
  state: BuildState;
  catalog: DriverCatalog;
}

export interface BuildResult {
  ok: boolean;
  cacheHit: boolean;
  key?: string;
  manifest?: BuildManifest;
  /** Module and app paths in the manifest are relative to this. */
  artifactsDir?: string;
  /** `<cache>/builds/<key>`. */
  cacheEntry?: string;
  /** Kept on failure, for the logs and the half-built tree. */
  workDir: string;
  run: RunResult;
  error?: unknown;
  state: BuildState;
}

/**
 * What `plan` knows of a build before it runs, resolved as the build resolves it (resolve.ts):
 * given one, each build step describes the exact commands it will run; `build` and `up` run the
 * same steps, so the plan and the run cannot drift apart.
 */
export interface BuildPreview {
  recipe: Recipe;
  cacheDir: string;
  jobs: number;
  target: { release: string; buildDir: string; version: string };
  /** The drivers configure is asked for (--drivers), after unpinned external ones are left out. */
  drivers: string[];
  kernelSources: KernelSourcesResolution;
  /** The netmap tree: a local path, or where the sources step fetches it in the cache. */
  netmapDir: string;
  /** Its configure script (configure layout), as the sources step finds it. */
  configureScript: string;
  layout: "configure" | "legacy-make";
  /** Driver token -> the module the build puts out, relative to the build dir. */
  driverOutputs: Record<string, string>;
  /** External driver archives copied from the download cache into LINUX/ext-drivers. */
  extNeeds: ExtDriverNeed[];
  /** Drivers left out before configure, and why. */
  skipped: Array<{ token: string; why: string }>;
  /**
   * The build cache key, when the plan can know it (the netmap tree is here and the compiler was
   * probed), and whether the cache holds that build: then every later step runs nothing.
   */
  key?: string;
  hit: boolean;
}

/**
 * Resolve a build for `plan` exactly as its sources step will (target release and build dir,
 * drivers, kernel sources, netmap tree); throws the BlockedError the build would stop with.
 */
export function previewBuild(
  /** compiler: the first line of `cc --version` (the plan's probe), for the cache key. */
  req: BuildRequest & { jobs: number; compiler?: string },
  catalog: DriverCatalog,
): BuildPreview {
  const r = req.recipe;
  const root = req.root ?? "/";
  const target = readKernelTarget({ release: targetRelease(req), root, buildDir: r.kernel.buildDir });
  const wanted = requestedDrivers(req, catalog, target);
  const ext = extDriverNeeds({
    drivers: wanted,
    catalog,
    options: options(r),
    pins: req.extPins ?? r.netmap.extDrivers,
    emulatedOk: r.emulatedOk,
  });
  const drivers = wanted.filter((d) => !ext.skipped.some((x) => x.token === d));
  const src = r.netmap.source;
  const netmapDir =
    src.kind === "local"
      ? src.path
      : join(req.cacheDir, "netmap", src.kind === "git" ? src.commit : src.sha256);
  const found = src.kind === "local" || existsSync(netmapDir) ? detectLayout(netmapDir) : undefined;
  const detected = found && "layout" in found ? found : undefined;
  const layout =
    r.netmap.layout === "legacy-make" || detected?.layout === "legacy-make" ? "legacy-make" : "configure";
  // The key as the sources step computes it, from the same inputs; a git or tarball tree that is
  // not fetched yet has no layout here, so its key (and a hit) waits for the run.
  const netmapId = !detected
    ? undefined
    : src.kind === "local"
      ? `tree:${treeContentHash(src.path)}`
      : src.kind === "git"
        ? `commit:${src.commit}`
        : `sha256:${src.sha256.toLowerCase()}`;
  const key =
    netmapId !== undefined && req.compiler !== undefined
      ? cacheKeyOf(r, {
          release: target.release,
          buildDir: target.buildDir,
          netmapId,
          layout: detected?.layout ?? layout,
          drivers,
          compiler: req.compiler,
          extNeeds: ext.needs,
        })
      : undefined;
  const suffix = r.netmap.configure.driverSuffix ?? "";
  const driverOutputs: Record<string, string> = {};
  for (const d of drivers) {
    const out = catalog.has(d) ? catalog.get(d).output : null;
    if (out)
      driverOutputs[d] = `${layout === "legacy-make" ? "LINUX/" : ""}${out.replace("{suffix}", suffix)}`;
  }
  return {
    recipe: r,
    cacheDir: req.cacheDir,
    jobs: req.jobs,
    target: { release: target.release, buildDir: target.buildDir, version: target.version },
    drivers,
    kernelSources: resolveKernelSources(req, target),
    netmapDir,
    configureScript: detected?.configure ?? join(netmapDir, "configure"),
    layout,
    driverOutputs,
    extNeeds: ext.needs,
    skipped: ext.skipped,
    ...(key !== undefined ? { key } : {}),
    hit: key !== undefined && lookupBuild(req.cacheDir, key) !== undefined,
  };
}

/** The build cache key of a resolved build: the one function the run and the plan compute it with. */
export function cacheKeyOf(
  r: Recipe,
  o: {
    release: string;
    buildDir: string;
    netmapId: string;
    layout: string;
    drivers: readonly string[];
    compiler: string;
    extNeeds: readonly ExtDriverNeed[];
  },
): string {
  return buildKey({
    kernelRelease: o.release,
    configHash: kernelConfigHash(o.buildDir),
    netmapId: o.netmapId,
    drivers: o.drivers,
    options: options(r),
    suffix: r.netmap.configure.driverSuffix,
    moduleName: r.netmap.moduleName,
    compiler: o.compiler,
    layout: o.layout,
    apps: r.netmap.apps,
    emulatedOk: r.emulatedOk,
    extArchives: Object.fromEntries(o.extNeeds.map((n) => [n.token, n.download.sha256])),
  });
}

/** A fresh build dir per run (`<run>` in a plan), kept with its logs on failure. */
export const planBuildDir = (cacheDir: string): string => join(cacheDir, "work", "<run>", "build");

const run = (argv: string[], cwd?: string): PlannedCommand =>
  cwd === undefined ? { argv, mutates: true } : { argv, cwd, mutates: true };

/** The netmap module file a build puts out, relative to the build dir. */
export const netmapModuleOutput = (layout: BuildPreview["layout"], moduleName: string): string =>
  `${layout === "legacy-make" ? "LINUX/" : ""}${moduleName}.ko`;

/** The netmap source the recipe names, as the sources module takes it. */
export function netmapSpec(recipe: Recipe): NetmapSourceSpec {
  const s = recipe.netmap.source;
  if (s.kind === "git")
    return { kind: "git", url: s.url, commit: s.commit, allowMovingRef: s.allowMovingRef };
  if (s.kind === "local") return { kind: "local", path: s.path };
  return { kind: "tarball", url: s.url, sha256: s.sha256 };
}

const options = (r: Recipe): string[] => r.netmap.configure.options ?? [];

/** Every file a build downloads, for the preflight and for `fetch`. */
export function buildDownloads(
  req: BuildRequest,
  extNeeds: readonly ExtDriverNeed[],
  tarball?: KernelTarballSpec,
): DownloadSpec[] {
  return [
    ...netmapSourceDownloads(netmapSpec(req.recipe)),
    ...kernelSourcesDownloads(tarball),
    ...extNeeds.map((n) => n.download),
  ];
}

function logTo(report: { logFile: string | undefined }): string | undefined {
  return report.logFile;
}

/** What a step after sources describes on a planned cache hit: it runs nothing. */
const onHit = (p: BuildPreview | undefined, what: string): Partial<StepDescription> | undefined =>
  p?.hit
    ? { title: `${what}: cache hit, nothing to run`, mutates: false, commands: [], files: [], notes: [] }
    : undefined;

const hitNote = (ctx: BuildContext, report: { progress(t: string): void }): boolean => {
  if (!ctx.state.hit) return false;
  report.progress(`cache hit ${ctx.state.key}: nothing to do`);
  return true;
};

function sourcesStep(p?: BuildPreview): Step<BuildContext> {
  const ks = p?.kernelSources;
  // A tarball is unpacked once (checked member by member first) into a private dir, then renamed.
  const unpack =
    p && !p.hit && ks?.dir && ks.tarballFile && ks.compression && !ks.given && !ks.cached
      ? [run(extractArgv(ks.tarballFile, kernelSourcesUnpackDir(p.cacheDir), ks.compression, 1))]
      : [];
  return {
    describe: () => ({
      id: "sources",
      title: "Sources: downloads, netmap, kernel, build cache",
      mutates: unpack.length > 0,
      dependsOn: [],
      commands: unpack,
      files: unpack.length > 0 && ks?.dir ? [{ action: "create", path: ks.dir }] : [],
      checks: [
        "every pinned download is in the cache or fetched (offline: fail here)",
        ...(ks?.dir
          ? [`kernel sources ${ks.dir}${ks.given ? " (given)" : ""}: Makefile version = the target's`]
          : []),
        "build cache key: a hit skips every later step",
      ],
      ...(unpack.length > 0
        ? { notes: ["<tmp>: a private dir, renamed into place once the tree is checked"] }
        : {}),
      ...(p?.hit
        ? { notes: [`cache hit: build ${p.key} is in the cache, so no later build step runs`] }
        : {}),
    }),
    async run(ctx, report) {
      const { req, state } = ctx;
      const root = req.root ?? "/";
      if (req.recipe.kernel.build) {
        throw new UserError(
          "this recipe builds a kernel (kernel.build: true), which `build` does not do",
          "build and boot the kernel first (or run `up`), then run `build` against its build dir with --kernel-dir",
        );
      }
      const release = targetRelease(req);
      const target = readKernelTarget({ release, root, buildDir: req.recipe.kernel.buildDir });
      state.target = target;
      report.progress(`target ${target.release} (Linux ${target.version}, code ${target.versionCode})`);
      const wanted = requestedDrivers(req, ctx.catalog, target);
      const ext = extDriverNeeds({
        drivers: wanted,
        catalog: ctx.catalog,
        options: options(req.recipe),
        pins: req.extPins ?? req.recipe.netmap.extDrivers,
        emulatedOk: req.recipe.emulatedOk,
      });
      state.skipped = ext.skipped;
      state.extNeeds = ext.needs;
      state.drivers = wanted.filter((d) => !ext.skipped.some((s) => s.token === d));
      const ksPlan = kernelSourcesPlan(req, target);
      // Everything the network must provide, checked before any build step.
      await preflightDownloads(buildDownloads(req, ext.needs, ksPlan.tarball), {
        cacheDir: req.cacheDir,
        offline: req.offline,
      });
      state.netmap = await resolveNetmapSource(netmapSpec(req.recipe), {
        cacheDir: req.cacheDir,
        exec: ctx.exec,
        offline: req.offline,
        logFile: logTo(report),
      });
      state.key = cacheKeyOf(req.recipe, {
        release: target.release,
        buildDir: target.buildDir,
        netmapId: state.netmap.id,
        layout: state.netmap.layout,
        drivers: state.drivers,
        compiler: await compilerIdentity(ctx.exec),
        extNeeds: ext.needs,
      });
      state.hit = lookupBuild(req.cacheDir, state.key);
      if (state.hit) {
        report.progress(`cache hit ${state.key}`);
        return;
      }
      state.kernelSources = await ensureKernelSources(target, {
        ...ksPlan,
        cacheDir: req.cacheDir,
        exec: ctx.exec,
        root,
        offline: req.offline,
        logFile: logTo(report),
      });
      report.progress(
        `cache miss ${state.key}; kernel sources ${state.kernelSources.dir} (${state.kernelSources.origin})`,
      );
    },
  };
}

function extDriversStep(p?: BuildPreview): Step<BuildContext> {
  return {
    describe: () => ({
      id: "ext-drivers",
      title: "External driver archives into LINUX/ext-drivers",
      mutates: false,
      dependsOn: ["sources"],
      commands: [],
      files: [],
      checks: ["sha256 of each archive"],
      ...(p && p.extNeeds.length > 0
        ? {
            title: `Place external driver archives (${p.extNeeds.map((n) => n.token).join(", ")}) so configure downloads nothing`,
            mutates: true,
            files: p.extNeeds.map((n) => ({
              action: "copy" as const,
              path: join(p.cacheDir, "downloads", "sha256", (n.download.sha256 ?? "").toLowerCase()),
              to: join(p.netmapDir, "LINUX", "ext-drivers", n.archive),
            })),
          }
        : {}),
      ...(p && p.skipped.length > 0 ? { notes: p.skipped.map((x) => `${x.token} left out: ${x.why}`) } : {}),
      ...onHit(p, "External driver archives"),
    }),
    async run(ctx, report) {
      if (hitNote(ctx, report)) return;
      const { state, req } = ctx;
      for (const s of state.skipped) report.progress(`${s.token} left out: ${s.why}`);
      if (state.extNeeds.length === 0 || !state.netmap) return;
      const placed = await placeExtDrivers(state.extNeeds, {
        linuxDir: join(state.netmap.dir, "LINUX"),
        cacheDir: req.cacheDir,
        offline: req.offline,
      });
      report.progress(`placed ${placed.map((p) => p.token).join(", ")}`);
    },
  };
}

/** The configure inputs of a build (the run's and the plan's), from the recipe and its resolve. */
function configureInputs(r: Recipe, o: { script: string; kernelDir: string; kernelSources?: string }) {
  return {
    script: o.script,
    kernelDir: o.kernelDir,
    kernelSources: o.kernelSources,
    emulatedOk: r.emulatedOk,
    options: options(r),
    driverSuffix: r.netmap.configure.driverSuffix,
    apps: r.netmap.apps,
    moduleName: r.netmap.moduleName,
  };
}

function configureStep(p?: BuildPreview): Step<BuildContext> {
  const dir = p ? planBuildDir(p.cacheDir) : "";
  const describeIt = (): Partial<StepDescription> => {
    if (!p) return {};
    if (p.layout === "legacy-make")
      return {
        title: "Copy the netmap tree to the build dir (the legacy layout has no configure)",
        files: [{ action: "copy", path: p.netmapDir, to: dir }],
      };
    const i = configureInputs(p.recipe, {
      script: p.configureScript,
      kernelDir: p.target.buildDir,
      ...(p.kernelSources.dir ? { kernelSources: p.kernelSources.dir } : {}),
    });
    return {
      title: `Configure netmap for ${p.target.release} (drivers: ${p.drivers.join(", ") || "none"})`,
      commands: [run(configureArgv(i, p.drivers), dir)],
      files: [{ action: "create", path: dir }],
      notes: [
        "configure runs once more without a driver it drops when the recipe accepts that driver emulated",
      ],
    };
  };
  return {
    describe: () => ({
      id: "configure",
      title: "netmap configure (--fail-on-driver-errors, report checked)",
      mutates: false,
      dependsOn: ["ext-drivers"],
      commands: [],
      files: [],
      checks: ["configure's report: every requested driver among `native drivers`, else stop and say why"],
      ...(onHit(p, "Configure netmap") ?? describeIt()),
    }),
    async run(ctx, report) {
      if (hitNote(ctx, report)) return;
      const { state, req } = ctx;
      const src = state.netmap as ResolvedNetmapSource;
      const target = state.target as KernelTarget;
      if (src.layout === "legacy-make") {
        // No configure before v11.1: the tree builds in place, so build a copy, never the source.
        rmSync(state.buildDir, { recursive: true, force: true });
        cpSync(src.dir, state.buildDir, { recursive: true, filter: (p) => !p.endsWith("/.git") });
        report.progress("legacy layout: no configure; sources copied to the build dir");
        return;
      }
      state.configure = await runConfigure({
        ...configureInputs(req.recipe, {
          script: src.configure as string,
          kernelDir: target.buildDir,
          ...(state.kernelSources ? { kernelSources: state.kernelSources.dir } : {}),
        }),
        buildDir: state.buildDir,
        drivers: state.drivers,
        exec: ctx.exec,
        logFile: logTo(report),
        onProgress: (t) => report.progress(t),
      });
      report.progress(`native: ${state.configure.native.join(" ") || "(none)"}`);
    },
  };
}

function makeStep(p?: BuildPreview): Step<BuildContext> {
  const describeIt = (): Partial<StepDescription> => {
    if (!p) return {};
    const dir = planBuildDir(p.cacheDir);
    const outputs = [
      netmapModuleOutput(p.layout, p.recipe.netmap.moduleName),
      ...Object.values(p.driverOutputs),
    ];
    const files = outputs.map((o) => ({ action: "create" as const, path: join(dir, o) }));
    if (p.layout === "legacy-make") {
      const args = legacyMakeArgs(p.target.buildDir, p.kernelSources.dir);
      const linux = join(dir, "LINUX");
      return {
        title: `Build ${p.recipe.netmap.moduleName}.ko and the patched drivers (make ${args.join(" ")}), then the apps`,
        commands: [
          run(makeArgv(p.jobs, args), linux),
          ...(p.recipe.netmap.apps.length > 0 ? [run(makeArgv(p.jobs, args, "apps"), linux)] : []),
        ],
        files,
      };
    }
    return {
      title: `Build netmap and the patched drivers (make -j${p.jobs})`,
      commands: [run(makeArgv(p.jobs), dir)],
      files,
    };
  };
  return {
    describe: () => ({
      id: "make",
      title: "make",
      mutates: false,
      dependsOn: ["configure"],
      commands: [],
      files: [],
      checks: [],
      ...(onHit(p, "Build netmap and the patched drivers") ?? describeIt()),
    }),
    async run(ctx, report) {
      if (hitNote(ctx, report)) return;
      const { state, req } = ctx;
      const jobs = req.jobs ?? defaultJobs();
      const target = state.target as KernelTarget;
      const legacy = state.netmap?.layout === "legacy-make";
      const dir = legacy ? join(state.buildDir, "LINUX") : state.buildDir;
      // The bar's end: what this make will compile, read from the files configure wrote.
      const expected = await expectedObjects({
        dir,
        kernelDir: target.buildDir,
        drivers: legacy ? state.drivers : (state.configure?.native ?? []),
        exec: ctx.exec,
        makeArgs: legacy ? legacyMakeArgs(target.buildDir, state.kernelSources?.dir) : [],
      });
      report.progress(describeExpected(expected));
      const common = {
        exec: ctx.exec,
        jobs,
        expected: expected.total,
        logFile: logTo(report),
        onProgress: (t: string) => report.progress(t),
      };
      state.makeRan = true;
      if (legacy) {
        await runLegacyMake({
          ...common,
          dir,
          ksrc: target.buildDir,
          ...(state.kernelSources ? { kernelSources: state.kernelSources.dir } : {}),
          apps: (req.recipe.netmap.apps?.length ?? 0) > 0,
        });
      } else {
        await runMake({ ...common, dir });
      }
    },
  };
}

function manifestStep(p?: BuildPreview): Step<BuildContext> {
  const describeIt = (): Partial<StepDescription> => {
    if (!p) return {};
    const dir = planBuildDir(p.cacheDir);
    const kos = [netmapModuleOutput(p.layout, p.recipe.netmap.moduleName), ...Object.values(p.driverOutputs)];
    return {
      title: "Record every module's sha256, vermagic and depends; check vermagic",
      commands: kos.map((k) => ({ argv: modinfoArgv(join(dir, k)), mutates: false })),
      checks: [
        `vermagic starts with ${p.target.release}`,
        ...Object.keys(p.driverOutputs).map((d) => `${d} depends on ${p.recipe.netmap.moduleName}`),
      ],
      notes: ["modinfo runs on every .ko the build put out"],
    };
  };
  return {
    describe: () => ({
      id: "manifest",
      title: "Artifacts manifest and vermagic check",
      mutates: false,
      dependsOn: ["make"],
      commands: [],
      files: [],
      checks: ["vermagic of every module equals the target release"],
      ...(onHit(p, "Manifest and vermagic check") ?? describeIt()),
    }),
    async run(ctx, report) {
      const { state, req } = ctx;
      const target = state.target as KernelTarget;
      if (state.hit) {
        // Still checked on a hit: a cache entry must never install modules for another kernel.
        checkVermagic(state.hit.manifest, target.release);
        state.manifest = state.hit.manifest;
        report.progress(`cache hit ${state.key}: ${state.manifest.modules.length} modules, vermagic ok`);
        return;
      }
      const legacy = state.netmap?.layout === "legacy-make";
      const suffix = req.recipe.netmap.configure.driverSuffix ?? "";
      const native = legacy ? state.drivers : (state.configure?.native ?? []);
      const driverOutputs: Record<string, string> = {};
      for (const d of native) {
        const out = ctx.catalog.has(d) ? ctx.catalog.get(d).output : null;
        if (out) driverOutputs[d] = `${legacy ? "LINUX/" : ""}${out.replace("{suffix}", suffix)}`;
      }
      const emulated = [
        ...(state.configure?.emulated ?? []).map((d: DroppedDriver) => ({
          driver: d.driver,
          reason: d.reason,
        })),
        ...state.skipped.map((s) => ({ driver: s.token, reason: "archive-not-pinned" })),
      ];
      state.manifest = await collectManifest({
        root: state.buildDir,
        exec: ctx.exec,
        kernelRelease: target.release,
        kernelVersion: target.version,
        netmapId: (state.netmap as ResolvedNetmapSource).id,
        netmapModule: req.recipe.netmap.moduleName,
        native,
        emulated,
        driverOutputs,
        apps: req.recipe.netmap.apps,
      });
      checkVermagic(state.manifest, target.release);
      writeManifest(state.buildDir, state.manifest);
      report.progress(
        `${state.manifest.modules.length} modules, ${state.manifest.apps.length} apps, vermagic ${target.release}`,
      );
    },
  };
}

function cacheStoreStep(p?: BuildPreview): Step<BuildContext> {
  return {
    describe: () => ({
      id: "cache-store",
      title: "Store the build in the cache",
      mutates: false,
      dependsOn: ["manifest"],
      commands: [],
      files: p ? [{ action: "create", path: join(p.cacheDir, "builds", "<key>", "manifest.json") }] : [],
      checks: [],
      ...(p
        ? {
            notes: [
              "<key> = sha256 of kernel release + .config, netmap tree, drivers, options and compiler: a later build with the same key reuses these artifacts",
            ],
          }
        : {}),
      ...onHit(p, "Store the build in the cache"),
    }),
    async run(ctx, report) {
      if (hitNote(ctx, report)) return;
      const { state, req } = ctx;
      const reportFile = join(state.workDir, "configure-report.json");
      if (state.configure) writeFileSync(reportFile, `${JSON.stringify(state.configure.report, null, 2)}\n`);
      state.stored = storeBuild({
        cacheDir: req.cacheDir,
        key: state.key as string,
        buildDir: state.buildDir,
        manifest: state.manifest as BuildManifest,
        extras: {
          "configure-report.json": reportFile,
          "configure.out": join(state.buildDir, "configure.out"),
          logs: state.logDir,
        },
      });
      report.progress(`stored ${state.stored.dir}`);
    },
  };
}

/** The build steps, in order; with a preview each describes the exact commands it will run. */
export function buildSteps(p?: BuildPreview): Step<BuildContext>[] {
  return [
    sourcesStep(p),
    extDriversStep(p),
    configureStep(p),
    makeStep(p),
    manifestStep(p),
    cacheStoreStep(p),
  ];
}

/** What `plan` prints for a build: the build steps' own descriptions. */
export const describeBuild = (p: BuildPreview): StepDescription[] => buildSteps(p).map((s) => s.describe());

/** The configure argv a request would run (for `plan`), once the sources step resolved its inputs. */
export { configureArgv };

/** Run the whole build. The work dir is removed on success and kept (with its logs) on failure. */
export async function runBuild(
  req: BuildRequest,
  o: { exec: Exec; renderer?: "auto" | "plain" | "silent"; dryRun?: boolean },
): Promise<BuildResult> {
  const workDir = join(
    req.cacheDir,
    "work",
    `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`,
  );
  const state: BuildState = {
    workDir,
    buildDir: join(workDir, "build"),
    logDir: join(workDir, "logs"),
    drivers: [],
    skipped: [],
    extNeeds: [],
    makeRan: false,
  };
  mkdirSync(state.logDir, { recursive: true });
  const ctx: BuildContext = {
    exec: o.exec,
    dryRun: o.dryRun ?? false,
    data: {},
    req,
    state,
    catalog: req.catalog ?? loadDriverCatalog(),
  };
  const run = await runSteps(buildSteps(), ctx, { logDir: state.logDir, renderer: o.renderer ?? "silent" });
  const entry = state.hit ?? state.stored;
  if (run.ok) rmSync(workDir, { recursive: true, force: true });
  return {
    ok: run.ok,
    cacheHit: state.hit !== undefined,
    key: state.key,
    manifest: entry?.manifest ?? state.manifest,
    artifactsDir: entry?.artifactsDir,
    cacheEntry: entry?.dir,
    workDir,
    run,
    error: run.error,
    state,
  };
}
