import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type DriverCatalog, loadDriverCatalog } from "../catalog/drivers.js";
import { BlockedError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { readNicFacts } from "../host/nics.js";
import type { DroppedDriver } from "../parse/configure-report.js";
import type { RunResult } from "../pipeline/runner.js";
import { runSteps } from "../pipeline/runner.js";
import type { Step, StepContext } from "../pipeline/step.js";
import { parseKernelVersion } from "../recipe/kernel-version.js";
import type { Recipe } from "../recipe/schema.js";
import { type DownloadSpec, preflightDownloads } from "../sources/download.js";
import {
  type ExtDriverNeed,
  type ExtDriverPin,
  extDriverNeeds,
  placeExtDrivers,
} from "../sources/ext-drivers.js";
import {
  distroSourceTarball,
  ensureKernelSources,
  type KernelSources,
  type KernelTarballSpec,
  type KernelTarget,
  kernelSourcesDownloads,
  readKernelTarget,
} from "../sources/kernel-sources.js";
import {
  type NetmapSourceSpec,
  netmapSourceDownloads,
  type ResolvedNetmapSource,
  resolveNetmapSource,
} from "../sources/netmap-source.js";
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
import { defaultJobs, runLegacyMake, runMake } from "./make.js";
import { type BuildManifest, checkVermagic, collectManifest, writeManifest } from "./manifest.js";

/**
 * The build as steps: sources (every download checked first, cache lookup), ext-drivers,
 * configure, make, manifest (vermagic checked), cache-store. On a cache hit every step after
 * sources does nothing and says so: no configure, no compiler.
 */

export interface BuildRequest {
  recipe: Recipe;
  cacheDir: string;
  offline?: boolean;
  /** Host root prefix for fixture trees ("/" on a real host). */
  root?: string;
  /** Target release; default: the build dir's (kernel.buildDir), the recipe's exact one, or `uname -r`. */
  release?: string;
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

/** The netmap source the recipe names, as the sources module takes it. */
export function netmapSpec(recipe: Recipe): NetmapSourceSpec {
  const s = recipe.netmap.source;
  if (s.kind === "git")
    return { kind: "git", url: s.url, commit: s.commit, allowMovingRef: s.allowMovingRef };
  if (s.kind === "local") return { kind: "local", path: s.path };
  return { kind: "tarball", url: s.url, sha256: s.sha256 };
}

/** UTS_RELEASE of a configured build dir. */
function buildDirRelease(dir: string): string | undefined {
  const p = join(dir, "include/generated/utsrelease.h");
  if (!existsSync(p)) return undefined;
  return /UTS_RELEASE\s+"([^"]+)"/.exec(readFileSync(p, "utf8"))?.[1];
}

/** Which release the build targets, from the request, the build dir, the recipe or the running kernel. */
export function targetRelease(req: BuildRequest): string {
  if (req.release) return req.release;
  const spec = parseKernelVersion(req.recipe.kernel.version);
  const fromDir = req.recipe.kernel.buildDir ? buildDirRelease(req.recipe.kernel.buildDir) : undefined;
  if (fromDir) {
    if ("kind" in spec && spec.kind === "exact" && spec.release !== fromDir) {
      throw new UserError(
        `kernel.buildDir ${req.recipe.kernel.buildDir} is for ${fromDir}, but kernel.version is ${spec.release}`,
        "point --kernel-dir at the build dir of the release the recipe targets",
      );
    }
    return fromDir;
  }
  if ("kind" in spec && spec.kind === "exact") return spec.release;
  const p = underRoot(req.root ?? "/", "/proc/sys/kernel/osrelease");
  const running = existsSync(p) ? readFileSync(p, "utf8").trim() : "";
  if (!running)
    throw new BlockedError("cannot read the running kernel release", "pass --kernel-dir <build dir>");
  return running;
}

/** The recipe's driver list; "auto" = the catalog drivers this host's NICs use. */
export function requestedDrivers(req: BuildRequest, catalog: DriverCatalog, target: KernelTarget): string[] {
  if (req.recipe.drivers !== "auto") return [...req.recipe.drivers];
  const nics = readNicFacts(
    req.root ?? "/",
    { release: target.release, version: target.version },
    {
      tokenForModule: (m) => catalog.byModule(m)?.token ?? null,
      nativeOn: (t, v) => catalog.nativeOn(t, v),
    },
  );
  return [...new Set(nics.flatMap((n) => (n.netmapDriver ? [n.netmapDriver] : [])))].sort();
}

/** Where full kernel sources come from, per the recipe. */
function kernelSourcesPlan(
  req: BuildRequest,
  target: KernelTarget,
): { given?: string; tarball?: KernelTarballSpec } {
  const s = req.recipe.kernel.sources;
  switch (s.kind) {
    case "local":
      return { given: s.path };
    case "kernelorg":
      return { tarball: { url: s.url as string, sha256: s.sha256 } };
    case "git":
      throw new UserError(
        "kernel.sources kind git is not supported by `build` yet",
        "unpack the tag yourself and pass --kernel-sources <tree>, or use the distro's source package",
      );
    case "running-headers": {
      const pkg = s.package;
      if (pkg && pkg !== "auto") {
        const p = ["tar.xz", "tar.bz2", "tar.gz"]
          .map((e) => underRoot(req.root ?? "/", `/usr/src/${pkg}.${e}`))
          .find((f) => existsSync(f));
        return p ? { tarball: { path: p } } : {};
      }
      const t = distroSourceTarball(target.version, req.root);
      return t ? { tarball: { path: t } } : {};
    }
  }
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

const hitNote = (ctx: BuildContext, report: { progress(t: string): void }): boolean => {
  if (!ctx.state.hit) return false;
  report.progress(`cache hit ${ctx.state.key}: nothing to do`);
  return true;
};

function sourcesStep(): Step<BuildContext> {
  return {
    describe: () => ({
      id: "sources",
      title: "Sources: downloads, netmap, kernel, build cache",
      mutates: false,
      dependsOn: [],
      commands: [],
      files: [],
      checks: ["every pinned download is in the cache or fetched (offline: fail here)", "build cache key"],
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
      const r = req.recipe;
      state.key = buildKey({
        kernelRelease: target.release,
        configHash: kernelConfigHash(target.buildDir),
        netmapId: state.netmap.id,
        drivers: state.drivers,
        options: options(r),
        suffix: r.netmap.configure.driverSuffix,
        moduleName: r.netmap.moduleName,
        compiler: await compilerIdentity(ctx.exec),
        layout: state.netmap.layout,
        apps: r.netmap.apps,
        emulatedOk: r.emulatedOk,
        extArchives: Object.fromEntries(ext.needs.map((n) => [n.token, n.download.sha256])),
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

function extDriversStep(): Step<BuildContext> {
  return {
    describe: () => ({
      id: "ext-drivers",
      title: "External driver archives into LINUX/ext-drivers",
      mutates: false,
      dependsOn: ["sources"],
      commands: [],
      files: [],
      checks: ["sha256 of each archive"],
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

function configureStep(): Step<BuildContext> {
  return {
    describe: () => ({
      id: "configure",
      title: "netmap configure (--fail-on-driver-errors, report checked)",
      mutates: false,
      dependsOn: ["ext-drivers"],
      commands: [],
      files: [],
      checks: ["requested drivers vs native drivers"],
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
      const r = req.recipe;
      state.configure = await runConfigure({
        script: src.configure as string,
        buildDir: state.buildDir,
        kernelDir: target.buildDir,
        kernelSources: state.kernelSources?.dir,
        drivers: state.drivers,
        emulatedOk: r.emulatedOk,
        options: options(r),
        driverSuffix: r.netmap.configure.driverSuffix,
        apps: r.netmap.apps,
        moduleName: r.netmap.moduleName,
        exec: ctx.exec,
        logFile: logTo(report),
        onProgress: (t) => report.progress(t),
      });
      report.progress(`native: ${state.configure.native.join(" ") || "(none)"}`);
    },
  };
}

function makeStep(): Step<BuildContext> {
  return {
    describe: () => ({
      id: "make",
      title: "make",
      mutates: false,
      dependsOn: ["configure"],
      commands: [],
      files: [],
      checks: [],
    }),
    async run(ctx, report) {
      if (hitNote(ctx, report)) return;
      const { state, req } = ctx;
      const jobs = req.jobs ?? defaultJobs();
      const target = state.target as KernelTarget;
      const legacy = state.netmap?.layout === "legacy-make";
      const dir = legacy ? join(state.buildDir, "LINUX") : state.buildDir;
      const legacyArgs = state.kernelSources ? [`SRC=${state.kernelSources.dir}`] : [];
      // The bar's end: what this make will compile, read from the files configure wrote.
      const expected = await expectedObjects({
        dir,
        kernelDir: target.buildDir,
        drivers: legacy ? state.drivers : (state.configure?.native ?? []),
        exec: ctx.exec,
        makeArgs: legacy ? [`KSRC=${target.buildDir}`, ...legacyArgs] : [],
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
          args: legacyArgs,
          apps: (req.recipe.netmap.apps?.length ?? 0) > 0,
        });
      } else {
        await runMake({ ...common, dir });
      }
    },
  };
}

function manifestStep(): Step<BuildContext> {
  return {
    describe: () => ({
      id: "manifest",
      title: "Artifacts manifest and vermagic check",
      mutates: false,
      dependsOn: ["make"],
      commands: [],
      files: [],
      checks: ["vermagic of every module equals the target release"],
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

function cacheStoreStep(): Step<BuildContext> {
  return {
    describe: () => ({
      id: "cache-store",
      title: "Store the build in the cache",
      mutates: false,
      dependsOn: ["manifest"],
      commands: [],
      files: [],
      checks: [],
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

/** The build steps, in order. */
export function buildSteps(): Step<BuildContext>[] {
  return [sourcesStep(), extDriversStep(), configureStep(), makeStep(), manifestStep(), cacheStoreStep()];
}

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
