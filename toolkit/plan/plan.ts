import { basename, join } from "node:path";
import { type BuildPreview, describeBuild, previewBuild } from "../build/pipeline.js";
import { builtKernelRelease } from "../build/resolve.js";
import type { DriverCatalog, DriverEntry } from "../catalog/drivers.js";
import { handlesKernel, type KernelCatalog, type NetmapUpstream, sameCommit } from "../catalog/kernels.js";
import { compareKernelVersions } from "../catalog/version-code.js";
import { ProvisionError } from "../core/errors.js";
import { redactDeep, redactUrl } from "../core/redact.js";
import { type DoctorCheck, driversToSwap, runDoctor } from "../doctor/checks.js";
import type { HostFacts } from "../host/facts.js";
import { describeKernelPhase, type KernelPhase } from "../kernel/phase.js";
import { detectInitramfs } from "../modules/persist.js";
import { kernelReleaseMatches, parseKernelVersion } from "../recipe/kernel-version.js";
import type { Recipe } from "../recipe/schema.js";
import type { PlannedCommand, StepDescription } from "../runner/step.js";
import { extDriverDecision } from "../sources/ext-drivers.js";
import {
  cachedNetmapCheckout,
  cloneDirPrefix,
  netmapGitArgv,
  revParseCandidates,
} from "../sources/netmap-source.js";
import type { InterfaceState } from "../swap/iface-state.js";
import { isLoaded } from "../swap/module-ops.js";
import type { UpResolve } from "../up/context.js";
import { transactionSteps } from "../up/steps.js";

/**
 * The plan: what `up` would do on this host with this recipe, as data: ordered steps with the
 * exact commands and every file created, moved or deleted, plus what blocks it. Pure: recipe,
 * host facts and catalogs in, plan out; `plan` prints it and `up` runs it.
 */

/** Something that stops `up` on this host, with what to do about it. */
export interface Blocker {
  id: string;
  message: string;
  fix: string;
  step?: string;
}

/** What one requested driver will become on the target kernel. */
export interface DriverPlan {
  token: string;
  module: string;
  /** native: a netmap patch exists for the target kernel; emulated: generic mode accepted. */
  mode: "native" | "emulated" | "unsupported";
  reason: string;
  /** The stock module file it shadows or replaces (host path), when known. */
  stockPath: string | null;
  /** Where the patched module comes out of the build, relative to the build dir. */
  output: string | null;
}

export interface Plan {
  recipe: string;
  /** What up's transaction steps run with (toolkit/up/context.ts): computed here, once. */
  up: UpResolve;
  /** The kernel release the modules are built for and loaded into. */
  targetRelease: string;
  /** Upstream x.y.z of the target, when known. */
  targetVersion: string | null;
  buildsKernel: boolean;
  /**
   * The netmap build's cache key and whether the cache holds it (then no build step runs), when
   * the plan can know it (the netmap tree is here); null without a netmap build on this host.
   */
  buildCache: { key: string | null; hit: boolean } | null;
  drivers: DriverPlan[];
  steps: StepDescription[];
  blockers: Blocker[];
  warnings: string[];
}

export interface PlanInputs {
  recipe: Recipe;
  facts: HostFacts;
  drivers: DriverCatalog;
  kernels: KernelCatalog;
  /** The upstream pin and its tags (a tagged commit carries its own native driver list). */
  upstream: NetmapUpstream;
  /** Module name -> host path from the target's modules.dep (empty when not readable). */
  modulesDep: Map<string, string>;
  /** First line of `cc --version` style: "12.2.0"; null when no compiler was found. */
  gccVersion: string | null;
  /** The first line of `cc --version`, as the build cache key takes it (the plan can name a hit). */
  compiler?: string;
  cacheDir: string;
  stateDir: string;
  jobs: number;
  /** The host's interfaces as `ip -j` shows them (null: not read, e.g. a host tree under --root). */
  interfaces?: InterfaceState[] | null;
  /** Allow unloading the driver of the management interface (with the dead-man timer). */
  allowManagement?: boolean;
  /**
   * `up --from <bundle>`: the modules come from a bundle built elsewhere, so nothing is fetched,
   * configured or compiled here; only install, swap and verify (and their blockers) remain.
   */
  from?: string;
  /** kernel.build recipes: the kernel phase resolved as it runs (gatherPlanInputs), its steps describe it. */
  kernelPhase?: KernelPhase;
}

/** Doctor findings that only matter to a build on this host (headers, sources, compilers). */
const BUILD_ONLY_CHECKS = new Set(["build-dir", "sources", "kconfig", "build-tools"]);

const step = (
  d: Omit<StepDescription, "checks" | "files" | "dependsOn"> & Partial<StepDescription>,
): StepDescription => ({
  dependsOn: [],
  files: [],
  checks: [],
  ...d,
});
const cmd = (argv: string[], mutates: boolean, cwd?: string): PlannedCommand =>
  cwd === undefined ? { argv, mutates } : { argv, mutates, cwd };

/** The release the recipe targets on this host, or a blocker saying why it cannot be chosen. */
function targetRelease(recipe: Recipe, facts: HostFacts): { release: string; blocker?: Blocker } {
  const running = facts.kernel.release;
  const spec = parseKernelVersion(recipe.kernel.version);
  if ("error" in spec) return { release: running };
  if (spec.kind === "running") return { release: running };
  if (recipe.kernel.build) return { release: builtKernelRelease(recipe) };
  if (kernelReleaseMatches(spec, facts.kernel.version ?? running) || kernelReleaseMatches(spec, running))
    return { release: running };
  return {
    release: running,
    blocker: {
      id: "kernel-version",
      message: `the running kernel ${running} (${facts.kernel.version ?? "version unknown"}) does not match kernel.version "${recipe.kernel.version}"`,
      fix: "boot a kernel that matches, or set kernel.build: true with pinned sources to build one",
    },
  };
}

/** The build's target, checked against kernel.version as the running kernel is. */
function previewTarget(recipe: Recipe, p: BuildPreview): { release: string; blocker?: Blocker } {
  const spec = parseKernelVersion(recipe.kernel.version);
  const { release, version, buildDir } = p.target;
  if ("error" in spec || kernelReleaseMatches(spec, version) || kernelReleaseMatches(spec, release))
    return { release };
  return {
    release,
    blocker: {
      id: "kernel-version",
      message: `the build dir ${buildDir} is for ${release} (${version}), which does not match kernel.version "${recipe.kernel.version}"`,
      fix: "point --kernel-dir at the build dir of a kernel that matches, or change kernel.version",
    },
  };
}

/** Decide native / emulated / unsupported for each requested driver. */
function planDrivers(
  i: PlanInputs,
  version: string | null,
  release: string,
  requested: string[],
  warnings: string[],
): DriverPlan[] {
  const emulatedOk = (t: string) =>
    i.recipe.emulatedOk === true || (Array.isArray(i.recipe.emulatedOk) && i.recipe.emulatedOk.includes(t));
  return requested.map((token) => {
    const d: DriverEntry = i.drivers.get(token);
    const native = version !== null && nativeAtPin(i, d.token, version);
    const bad = version
      ? i.kernels.knownBad(version, commitOf(i.recipe)).filter((b) => b.drivers.includes(d.token))
      : [];
    let mode: DriverPlan["mode"] =
      native && bad.length === 0 ? "native" : emulatedOk(d.token) ? "emulated" : "unsupported";
    let reason = native
      ? `netmap has a native patch for ${d.token} on ${version}`
      : `netmap has no native patch for ${d.token} on ${version ?? "this kernel"}`;
    if (bad.length > 0)
      reason = `known bad on ${version}: ${bad.map((b) => b.note.split(/[.:]/)[0]).join("; ")}`;
    if (mode === "emulated") reason += " (emulated mode accepted by the recipe)";
    if (d.output === null && mode === "native") {
      mode = emulatedOk(d.token) ? "emulated" : "unsupported";
      reason = `the catalog does not know where the build puts ${d.token}'s module`;
    }
    // An external driver whose archive nobody pinned is left out of a build here (ext-drivers.ts).
    const ext = extDriverDecision(d, {
      options: i.recipe.netmap.configure.options,
      pins: i.recipe.netmap.extDrivers,
    });
    if (
      mode === "native" &&
      ext.kind === "unpinned" &&
      i.from === undefined &&
      i.recipe.netmap.layout !== "legacy-make"
    ) {
      mode = "emulated";
      reason = ext.why;
      warnings.push(`${ext.why}; ${ext.howToPin}`);
    }
    const suffix = i.recipe.netmap.configure.driverSuffix ?? "";
    return {
      token: d.token,
      module: d.module,
      mode,
      reason,
      stockPath: stockPathOf(i, d, version, release),
      output: d.output?.replace("{suffix}", suffix) ?? null,
    };
  });
}

/**
 * Native support at the recipe's netmap pin: a tagged commit (v11.0 for the seed) carries its own
 * driver list and kernel range; anything else is judged by the catalog's ranges (the default pin).
 */
function nativeAtPin(i: PlanInputs, token: string, version: string): boolean {
  const src = i.recipe.netmap.source;
  const tag = src.kind === "git" ? i.upstream.tags.find((t) => sameCommit(t.commit, src.commit)) : undefined;
  if (tag?.drivers) return tag.drivers.includes(token) && handlesKernel(tag.handles, version);
  return i.drivers.nativeOn(token, version);
}

/** The stock module file: from modules.dep when the target is the running kernel, else guessed. */
function stockPathOf(i: PlanInputs, d: DriverEntry, version: string | null, release: string): string | null {
  const dep = release === i.facts.kernel.release ? i.modulesDep.get(d.module) : undefined;
  if (dep) return dep.startsWith("/") ? dep : join("/lib/modules", release, dep);
  return version ? stockGuess(d, version, release) : null;
}

/** The stock module's path when modules.dep cannot tell (a kernel not installed yet). */
function stockGuess(d: DriverEntry, version: string, release: string): string {
  const legacy = d.legacyInTreePath && compareKernelVersions(version, d.legacyInTreePath.before) < 0;
  return join(
    "/lib/modules",
    release,
    "kernel",
    legacy ? (d.legacyInTreePath?.path ?? d.inTreePath) : d.inTreePath,
    `${d.module}.ko`,
  );
}

const commitOf = (r: Recipe): string => (r.netmap.source.kind === "git" ? r.netmap.source.commit : "local");

/** Build the plan. Never throws for host problems: they become blockers. */
export function buildPlan(i: PlanInputs): Plan {
  const { recipe, facts } = i;
  const blockers: Blocker[] = [];
  const warnings: string[] = [];
  const buildsKernel = recipe.kernel.build;
  const fromBundle = i.from !== undefined;
  // A netmap build here is resolved once, as `build` resolves it: the plan names its target
  // (a --kernel-dir's release, not the running one), its sources and its exact commands.
  let preview: BuildPreview | undefined;
  if (!buildsKernel && !fromBundle) {
    try {
      preview = previewBuild(
        {
          recipe,
          cacheDir: i.cacheDir,
          root: facts.root,
          jobs: i.jobs,
          ...(i.compiler !== undefined ? { compiler: i.compiler } : {}),
        },
        i.drivers,
      );
    } catch (e) {
      if (!(e instanceof ProvisionError)) throw e;
      if (recipe.kernel.buildDir)
        blockers.push({
          id: "build-dir",
          message: e.message,
          fix: e.hint ?? "pass --kernel-dir <build dir>",
        });
    }
  }
  // A kernel phase names the release its build produces (read from the tree once built).
  const built =
    buildsKernel && i.kernelPhase && !i.kernelPhase.release.includes("<") ? i.kernelPhase : undefined;
  const target = preview
    ? previewTarget(recipe, preview)
    : built
      ? { release: built.release }
      : targetRelease(recipe, facts);
  if ("blocker" in target && target.blocker) blockers.push(target.blocker);
  const release = target.release;
  const version = buildsKernel
    ? release.replace(/[^0-9.].*$/, "")
    : (preview?.target.version ?? facts.kernel.version);
  const legacy = recipe.netmap.layout === "legacy-make";
  const moduleFile = `${recipe.netmap.moduleName}.ko`;

  const requested = driversToSwap(facts, { drivers: recipe.drivers, emulatedOk: recipe.emulatedOk });
  const drivers = planDrivers(i, version, release, requested, warnings);
  for (const d of drivers.filter((x) => x.mode === "unsupported"))
    blockers.push({
      id: `driver-${d.token}`,
      message: `${d.token}: ${d.reason}`,
      fix: `accept emulated (generic) mode with emulatedOk: [${d.token}], pin a netmap commit with a patch for this kernel, or drop ${d.token} from drivers`,
      step: i.from !== undefined ? "bundle" : "configure",
    });
  const swapped = drivers.filter((d) => d.mode === "native");

  // Host checks that block up (doctor's findings), unless the plan builds its own kernel.
  const doctor: DoctorCheck[] = buildsKernel
    ? []
    : runDoctor(facts, { drivers: recipe.drivers, emulatedOk: recipe.emulatedOk });
  for (const c of doctor.filter((c) => c.blocksUp)) {
    if (c.id.startsWith("management")) continue; // judged below, against the drivers actually swapped
    if (fromBundle && BUILD_ONLY_CHECKS.has(c.id)) continue;
    // The build's own resolve found the target's build dir and sources (a --kernel-dir, say).
    if (preview && (c.id === "build-dir" || c.id === "sources")) continue;
    blockers.push({
      id: c.id,
      message: `${c.title}: ${c.found}`,
      fix: c.fix ?? "see `netmap-provision doctor`",
      step: "preflight",
    });
  }
  const series = i.kernels.seriesFor(version ?? release);
  if (buildsKernel) {
    if (i.gccVersion === null)
      blockers.push({
        id: "compiler",
        message: "no C compiler found",
        fix: "install gcc (apt-get install build-essential)",
      });
    else {
      const cc = i.kernels.compilerOk(version ?? release, i.gccVersion);
      if (!cc.ok)
        blockers.push({
          id: "compiler",
          message: `gcc ${i.gccVersion} cannot build kernel ${version}: it needs ${cc.need}`,
          fix: `build on a host (or in a container/VM) with ${cc.need}, e.g. the distro of that era`,
          step: "kernel-build",
        });
    }
  }
  if (fromBundle) {
    // Without a build, the tools that still run are the module tools (depmod, modprobe, modinfo...).
    const compression = facts.kernel.moduleCompression;
    const missing = facts.tools.filter(
      (t) => t.path === null && (t.for === "modules" || (t.for === "zst" && compression === "zst")),
    );
    if (missing.length > 0)
      blockers.push({
        id: "module-tools",
        message: `missing module tools: ${missing.map((t) => t.name).join(", ")}`,
        fix: "install kmod (Debian: apt-get install kmod)",
        step: "preflight",
      });
  }
  if (version && !series)
    warnings.push(`kernel ${version} is not in the kernels/ catalog: compatibility is unknown`);

  const steps: StepDescription[] = [];
  const cache = i.cacheDir;
  const ksrcCache = join(cache, "kernel-sources");
  let kernelDir = recipe.kernel.buildDir ?? facts.kernel.build.path;
  let kernelSources = facts.kernel.sources.path ?? "";

  steps.push(
    step({
      id: "preflight",
      title: "Check the host (doctor), the recipe and the catalogs",
      mutates: false,
      commands: [],
      checks: doctor.map((c) => `${c.id}: ${c.status}`),
    }),
  );

  if (buildsKernel) {
    // The kernel phase's own steps, described from the resolve it runs on (toolkit/kernel/phase.ts):
    // the O= dir keyed by its inputs is also netmap's --kernel-dir; a cache hit plans no compile.
    const kp = i.kernelPhase;
    if (!kp)
      blockers.push({
        id: "kernel-phase",
        message: "the kernel phase was not resolved for this plan",
        fix: "gather the plan inputs with gatherPlanInputs",
        step: "kernel-fetch",
      });
    else {
      for (const [n, pr] of kp.problems.entries())
        blockers.push({
          id: n === 0 ? "kernel-phase" : `kernel-phase-${n + 1}`,
          message: pr.message,
          fix: pr.fix,
          step: "kernel-fetch",
        });
      kernelDir = kp.out;
      kernelSources = kp.sources.dir;
      steps.push(...describeKernelPhase(kp, { stateDir: i.stateDir }));
    }
  } else if (!fromBundle) {
    if (!preview && !recipe.kernel.buildDir && !facts.kernel.build.exists)
      blockers.push({
        id: "build-dir",
        message: `no build dir for ${release} at ${facts.kernel.build.path}`,
        fix: `install the headers of ${release} (Debian: apt-get install linux-headers-${release})`,
      });
    if (preview) {
      kernelSources = preview.kernelSources.dir ?? "";
      if (!kernelSources && swapped.some((d) => i.drivers.get(d.token).kind === "internal"))
        blockers.push({
          id: "kernel-sources",
          message: `no full sources of ${version ?? release}: patched in-kernel drivers are copied from them`,
          fix: `install them (Debian/Ubuntu: apt install linux-source-${(version ?? release).split(".").slice(0, 2).join(".")}) or pass --kernel-sources <tree of ${version ?? release}>`,
        });
    } else if (recipe.kernel.sources.kind === "local") kernelSources = recipe.kernel.sources.path;
    else if (facts.kernel.sources.kind === "tarball" && facts.kernel.sources.path && version) {
      // As toolkit/sources/target-kernel-sources.ts does it: the top folder stripped, into <version>/.
      kernelSources = join(ksrcCache, version);
      steps.push(
        step({
          id: "kernel-sources",
          title: `Unpack ${basename(facts.kernel.sources.path)} (the sources of ${version}) once`,
          mutates: true,
          commands: [
            cmd(
              [
                "tar",
                "--force-local",
                "-xf",
                facts.kernel.sources.path,
                "--strip-components=1",
                "-C",
                kernelSources,
              ],
              true,
            ),
          ],
          files: [{ action: "create", path: kernelSources }],
          checks: [`Makefile VERSION.PATCHLEVEL.SUBLEVEL = ${version}`],
        }),
      );
    } else if (
      facts.kernel.sources.kind === "none" &&
      swapped.some((d) => i.drivers.get(d.token).kind === "internal")
    )
      blockers.push({
        id: "kernel-sources",
        message: `no full sources of ${version ?? release}: patched in-kernel drivers are copied from them`,
        fix: facts.kernel.sources.detail,
      });
  }

  // netmap sources
  const ns = recipe.netmap.source;
  const srcDir =
    ns.kind === "local" ? ns.path : join(cache, "netmap", ns.kind === "git" ? ns.commit : ns.sha256);
  if (fromBundle) {
    // The bundle replaces sources, configure and make: its modules are checked, then installed.
    steps.push(
      step({
        id: "bundle",
        title: `Open the bundle ${i.from}: every module's sha256, and the release ${release} it was built for`,
        mutates: false,
        commands: [],
        checks: [
          `vermagic of every module starts with ${release}`,
          "every module and app named in manifest.json, inside the bundle, with the sha256 it records",
        ],
        notes: ["unpacked into a temporary directory, removed when up ends; nothing is built on this host"],
      }),
    );
  } else if (ns.kind === "git") {
    // toolkit/sources/netmap-source.ts's own argvs: into a fresh .clone-<tmp> dir, renamed to
    // <cache>/netmap/<commit> once checked; nothing at all when the cache has the commit.
    const url = redactUrl(ns.url);
    const cached = cachedNetmapCheckout(cache, ns.commit);
    const tmp = `${cloneDirPrefix(cache)}<tmp>`;
    const full = /^[0-9a-f]{40}$/.test(ns.commit);
    const git = (argv: string[], mutates: boolean) => cmd(argv, mutates, tmp);
    steps.push(
      step({
        id: "netmap-source",
        title: cached
          ? `Use netmap ${ns.commit.slice(0, 12)} from the cache (${cached})`
          : `Fetch netmap ${ns.commit.slice(0, 12)} from ${url}`,
        mutates: !cached,
        commands: cached
          ? []
          : [
              git(netmapGitArgv.init(), true),
              git(full ? netmapGitArgv.shallowFetch(url, ns.commit) : netmapGitArgv.fullFetch(url), true),
              ...revParseCandidates(ns.commit).map((c) => git(netmapGitArgv.revParse(c), false)),
              git(netmapGitArgv.checkout("<commit>"), true),
              git(netmapGitArgv.head(), false),
            ],
        files: cached ? [] : [{ action: "create", path: srcDir }],
        checks: [`git rev-parse HEAD starts with ${ns.commit}`],
        notes: cached
          ? []
          : [
              "<commit>: the full commit id rev-parse printed",
              ...(full
                ? ["a server that refuses a shallow fetch of one commit gets the full fetch instead"]
                : []),
            ],
      }),
    );
  } else if (ns.kind === "tarball")
    steps.push(
      step({
        id: "netmap-source",
        title: `Fetch netmap from ${redactUrl(ns.url)} (sha256 ${ns.sha256.slice(0, 12)}...)`,
        mutates: true,
        commands: [
          cmd(
            [
              "tar",
              "--force-local",
              "-xf",
              join(cache, "downloads", "sha256", ns.sha256),
              "-C",
              srcDir,
              "--strip-components=1",
            ],
            true,
          ),
        ],
        files: [{ action: "create", path: srcDir }],
        checks: [`sha256 = ${ns.sha256}`],
      }),
    );
  else
    steps.push(
      step({
        id: "netmap-source",
        title: `Use the netmap tree at ${ns.path}`,
        mutates: false,
        commands: [],
        checks: [legacy ? `${ns.path}/LINUX/Makefile exists` : `${ns.path}/configure exists`],
      }),
    );

  const afterSources = steps
    .filter((s) => s.id === "netmap-source" || s.id === "kernel-sources" || s.id === "reboot")
    .map((s) => s.id);
  // A fresh build dir per run (kept with its logs on failure); artifacts then go to <cache>/builds/<key>/.
  const buildDir = join(cache, "work", "<run>", "build");
  const outDir = legacy ? join(srcDir, "LINUX") : buildDir;
  if (preview) {
    // The build's own steps, described from the same resolve `build` runs on (build/pipeline.ts).
    for (const d of describeBuild(preview))
      steps.push(d.id === "sources" ? { ...d, dependsOn: afterSources } : d);
  } else if (!fromBundle) {
    const ext = swapped
      .map((d) => i.drivers.get(d.token))
      .filter(
        (d) =>
          extDriverDecision(d, { options: recipe.netmap.configure.options, pins: recipe.netmap.extDrivers })
            .kind === "archive",
      );
    if (ext.length > 0 && !legacy)
      steps.push(
        step({
          id: "ext-drivers",
          title: `Place external driver archives (${ext.map((d) => d.token).join(", ")}) so configure downloads nothing`,
          mutates: true,
          dependsOn: afterSources,
          commands: [],
          files: ext.map((d) => ({
            action: "copy" as const,
            path: join(
              cache,
              "downloads",
              "sha256",
              recipe.netmap.extDrivers[d.token]?.sha256 ?? d.external?.sha256 ?? "<sha256 not pinned>",
            ),
            to: join(srcDir, "LINUX", "ext-drivers", d.external?.archive ?? d.token),
          })),
        }),
      );

    if (legacy) {
      steps.push(
        step({
          id: "netmap-build",
          title: `Build ${moduleFile} and the patched drivers (make KSRC=${kernelDir}), then the apps`,
          mutates: true,
          dependsOn: afterSources,
          commands: [
            cmd(["make", `KSRC=${kernelDir}`], true, outDir),
            ...(recipe.netmap.apps.length > 0
              ? [cmd(["make", `KSRC=${kernelDir}`, "apps"], true, outDir)]
              : []),
          ],
          files: [
            { action: "create", path: join(outDir, moduleFile) },
            ...swapped.map((d) => ({ action: "create" as const, path: join(outDir, d.output ?? "") })),
          ],
        }),
      );
    } else {
      const configureArgv = [
        join(srcDir, "configure"),
        `--kernel-dir=${kernelDir}`,
        ...(kernelSources ? [`--kernel-sources=${kernelSources}`] : []),
        `--drivers=${swapped.map((d) => d.token).join(",")}`,
        "--fail-on-driver-errors",
        ...(recipe.netmap.configure.driverSuffix
          ? [`--driver-suffix=${recipe.netmap.configure.driverSuffix}`]
          : []),
        ...(recipe.netmap.moduleName !== "netmap" ? [`--mod-name=${recipe.netmap.moduleName}`] : []),
        ...(recipe.netmap.apps.length > 0 ? [`--apps=${recipe.netmap.apps.join(",")}`] : ["--no-apps"]),
        ...recipe.netmap.configure.options,
      ];
      if (swapped.length === 0) configureArgv.splice(configureArgv.indexOf(`--drivers=`), 1, "--no-drivers");
      steps.push(
        step({
          id: "configure",
          title: `Configure netmap for ${release} (drivers: ${swapped.map((d) => d.token).join(", ") || "none"})`,
          mutates: true,
          dependsOn: [...afterSources, ...(ext.length > 0 ? ["ext-drivers"] : [])],
          commands: [cmd(configureArgv, true, buildDir)],
          files: [{ action: "create", path: buildDir }],
          checks: [
            "configure's report: every requested driver among `native drivers`, else stop and say why",
          ],
        }),
      );
      steps.push(
        step({
          id: "make",
          title: `Build netmap and the patched drivers (make -j${i.jobs})`,
          mutates: true,
          dependsOn: ["configure"],
          commands: [cmd(["make", `-j${i.jobs}`], true, buildDir)],
          files: [
            { action: "create", path: join(buildDir, moduleFile) },
            ...swapped.map((d) => ({ action: "create" as const, path: join(buildDir, d.output ?? "") })),
          ],
        }),
      );
    }
    const kos = [join(outDir, moduleFile), ...swapped.map((d) => join(outDir, d.output ?? ""))];
    steps.push(
      step({
        id: "manifest",
        title: "Record every module's sha256, vermagic and depends; check vermagic",
        mutates: false,
        dependsOn: [legacy ? "netmap-build" : "make"],
        commands: kos.map((k) => cmd(["modinfo", k], false)),
        checks: [
          `vermagic starts with ${release}`,
          ...swapped.map((d) => `${d.module} depends on ${recipe.netmap.moduleName}`),
        ],
        files: [{ action: "create", path: join(cache, "builds", "<key>", "manifest.json") }],
        notes: [
          "<key> = sha256 of kernel release + .config, netmap commit, drivers, options and compiler: a later build with the same key reuses these artifacts",
        ],
      }),
    );
  }

  const affected = facts.nics
    .filter((n) => n.module !== null && swapped.some((d) => d.module === n.module))
    .map((n) => n.ifname);
  // The management guard: unloading the driver under the SSH session or default route cuts the user off.
  const mgmt = affected.filter((ifname) => facts.management.managementIfs.includes(ifname));
  if (mgmt.length > 0) {
    const how = facts.management.problem
      ? `${facts.management.problem}; interface(s) ${mgmt.join(", ")} may carry it and use a driver that would be unloaded`
      : `interface(s) ${mgmt.join(", ")} carry the management connection (default route or SSH) and use a driver that would be unloaded`;
    if (i.allowManagement || recipe.guard.management === "allow-with-timer")
      warnings.push(
        `${how}: allowed; a dead-man timer runs \`down\` unless \`netmap-provision confirm\` arrives within ${recipe.guard.confirmTimeoutSec} s`,
      );
    else
      blockers.push({
        id: "management",
        message: how,
        fix: "move the management connection to a NIC on another driver, or run with --allow-management (a dead-man timer rolls back unless `netmap-provision confirm` arrives)",
        step: "swap",
      });
  }
  let initramfs: UpResolve["initramfs"] = { tool: null, note: "" };
  if (recipe.modules.persist)
    try {
      const d = detectInitramfs(i.facts.root, release, recipe.modules.initramfs);
      initramfs = { tool: d.tool ?? null, note: d.note };
    } catch (e) {
      if (!(e instanceof ProvisionError)) throw e;
      blockers.push({ id: "initramfs", message: e.message, fix: e.hint ?? "", step: "persist" });
    }
  // up runs pkt-gen from where the artifacts stay: the bundle, or the build cache entry.
  const pktgen = !recipe.netmap.apps.includes("pkt-gen")
    ? null
    : fromBundle
      ? join("<tmp>", "artifacts", "build-apps", "pkt-gen", "pkt-gen")
      : join(
          cache,
          "builds",
          "<key>",
          "artifacts",
          legacy ? "examples/pkt-gen" : "build-apps/pkt-gen/pkt-gen",
        );
  const up: UpResolve = {
    root: facts.root,
    release,
    stateDir: i.stateDir,
    recipe: recipe.name,
    strategy: recipe.modules.strategy,
    persist: recipe.modules.persist,
    netmapModule: recipe.netmap.moduleName,
    swapped: swapped.map((d) => ({
      token: d.token,
      module: d.module,
      stockPath: d.stockPath ?? stockGuess(i.drivers.get(d.token), version ?? release, release),
    })),
    expected: drivers
      .filter((d) => d.mode !== "unsupported")
      .map((d) => ({ module: d.module, mode: d.mode as "native" | "emulated" })),
    affected,
    management: mgmt,
    interfaces: i.interfaces ? i.interfaces.filter((s) => affected.includes(s.ifname)) : null,
    loaded: [recipe.netmap.moduleName, ...swapped.map((d) => d.module)].filter((m) =>
      isLoaded(facts.root, m),
    ),
    pktgen,
    verify: recipe.verify,
    initramfs,
    after: steps.at(-1)?.id ?? "preflight",
    ...(i.from !== undefined ? { from: i.from } : {}),
  };
  // up's transaction: the same step objects `up` runs (toolkit/up/steps.ts), described.
  for (const s of transactionSteps(up)) steps.push(s.describe());

  // Every string of the plan goes out (terminal, --json, up's step titles): no URL password in any.
  return redactDeep({
    recipe: recipe.name,
    up,
    targetRelease: release,
    targetVersion: version,
    buildsKernel,
    buildCache: preview ? { key: preview.key ?? null, hit: preview.hit } : null,
    drivers,
    steps,
    blockers,
    warnings,
  });
}

/** Blocked steps carry their blocker so the printed plan shows it in place. */
export function attachBlockers(plan: Plan): Plan {
  for (const b of plan.blockers) {
    const s = plan.steps.find((x) => x.id === (b.step ?? "preflight"));
    if (s && !s.blocked) s.blocked = { reason: b.message, fix: b.fix };
  }
  return plan;
}
