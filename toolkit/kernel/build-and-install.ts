import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { compilerIdentity } from "../build/cache.js";
import { defaultJobs } from "../build/make.js";
import { localversionSuffix } from "../build/resolve.js";
import type { DriverCatalog } from "../catalog/drivers.js";
import { type KernelCatalog, loadKernelCatalog } from "../catalog/kernels.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { readKernelFacts } from "../host/kernel.js";
import { gccVersion } from "../plan/inputs.js";
import { parseKernelVersion } from "../recipe/kernel-version.js";
import type { Recipe } from "../recipe/schema.js";
import {
  bootImage,
  buildKernel,
  builtRelease,
  installKernel,
  installKernelDeb,
  nextBootArgv,
  packageKernelDeb,
} from "./build.js";
import { type ConfigBase, configureKernel, driverSymbols, parseModuleList, readFragment } from "./config.js";
import { advance, readResume, startResume, writeResume } from "./resume.js";
import { ensureBuildSources, type KernelSourceSpec, kernelSourceSpec } from "./sources.js";
import { assertCompilerFits } from "./toolchain.js";

/**
 * `kernel build` and the kernel part of `up`: sources -> config -> build -> install, with a
 * cache of built trees keyed by everything that shapes the result, so a second run with the
 * same inputs reuses the tree instead of compiling again.
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

export interface KernelBuildResult {
  release: string;
  version: string;
  srcDir: string;
  /** The O= dir: the kernel build dir netmap builds against (--kernel-dir). */
  buildDir: string;
  configPath: string;
  bootImage: string;
  key: string;
  /** True when the cache had this exact build: nothing was compiled. */
  cached: boolean;
  compiled: number;
  buildMs: number;
  logFile: string;
  warnings: string[];
  /** Set when installed: the module tree of the release. */
  moduleDir?: string;
  /** The command that was run (real host) to boot the kernel once. */
  nextBoot?: string[];
  /** kernel.install "deb": the packages made (under <buildDir>/debs). */
  debs?: string[];
}

const BUILT = ".netmap-provision-built";

/** The version a recipe pins, when it does without looking at the sources. */
function pinnedVersion(recipe: Recipe, spec: KernelSourceSpec): string | undefined {
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

/** Build (or reuse) and optionally install the recipe's kernel. */
export async function buildAndInstallKernel(req: KernelBuildRequest): Promise<KernelBuildResult> {
  const root = req.root ?? "/";
  const kernels = req.kernels ?? loadKernelCatalog();
  const spec = req.sources ?? kernelSourceSpec(req.recipe, root);
  const gcc = req.gcc === undefined ? await gccVersion(req.exec) : req.gcc;
  const pinned = pinnedVersion(req.recipe, spec);
  // Compiler first, before any download or unpack, when the version is known up front.
  if (pinned) assertCompilerFits(kernels, pinned, gcc);
  const progress = req.onProgress ?? (() => {});

  progress("kernel sources");
  const src = await ensureBuildSources(spec, {
    cacheDir: req.cacheDir,
    exec: req.exec,
    offline: req.offline,
  });
  if (!pinned) assertCompilerFits(kernels, src.version, gcc);

  const fragments = [...req.recipe.kernel.config.fragments, ...(req.fragments ?? [])];
  const drivers = req.drivers ?? (Array.isArray(req.recipe.drivers) ? req.recipe.drivers : []);
  const symbols = driverSymbols(drivers, req.driverCatalog);
  const lmc =
    req.localmodconfig === "running"
      ? parseModuleList(readFileSync(underRoot(root, "/proc/modules"), "utf8"))
      : req.localmodconfig;
  const base = configBase(req, root);
  const localversion = req.recipe.kernel.localversion;
  const key = createHash("sha256")
    .update(
      JSON.stringify({
        src: src.id,
        version: src.version,
        base: createHash("sha256").update(baseIdentity(base)).digest("hex"),
        fragments: fragments.map((f) => [f, readFragment(f)]),
        lmc: lmc ? [...lmc].sort() : null,
        symbols,
        localversion: localversion ?? null,
        cc: await compilerIdentity(req.exec),
      }),
    )
    .digest("hex")
    .slice(0, 16);
  const out = join(req.cacheDir, "kernel-build", `${src.version}-${key}`);
  mkdirSync(out, { recursive: true });
  const logFile = join(out, "build.log");
  const warnings: string[] = [];

  const cached = existsSync(join(out, BUILT)) && readFileSync(join(out, BUILT), "utf8").trim() === key;
  let compiled = 0;
  let buildMs = 0;
  if (!cached) {
    progress(`kernel config (${base.kind === "running" ? "running kernel's" : base.kind})`);
    const cfg = await configureKernel({
      src: src.dir,
      out,
      version: src.version,
      base,
      fragments,
      ...(lmc ? { localmodconfig: lmc } : {}),
      modules: symbols,
      ...(localversion !== undefined ? { localversion: localversionSuffix(localversion) } : {}),
      exec: req.exec,
      logFile,
    });
    for (const l of cfg.droppedFragmentLines)
      warnings.push(`fragment line not honoured (a dependency is off): ${l}`);
    progress("kernel build");
    const b = await buildKernel({
      src: src.dir,
      out,
      exec: req.exec,
      jobs: req.jobs ?? defaultJobs(),
      logFile,
      onProgress: (t) => progress(`kernel build: ${t}`),
    });
    compiled = b.compiled;
    buildMs = b.durationMs;
    writeFileSync(join(out, BUILT), `${key}\n`);
  } else {
    progress(`kernel build: cache hit ${key}, nothing to compile`);
  }
  const release = builtRelease(out) as string;
  const recipePath = req.recipePath ? resolve(req.recipePath) : "(no recipe file)";
  if (req.stateDir) writeResume(req.stateDir, startResume({ release, recipe: recipePath, buildDir: out }));

  const result: KernelBuildResult = {
    release,
    version: src.version,
    srcDir: src.dir,
    buildDir: out,
    configPath: join(out, ".config"),
    bootImage: bootImage(out),
    key,
    cached,
    compiled,
    buildMs,
    logFile,
    warnings,
  };
  if (req.installRoot !== undefined) {
    const realHost = resolve(req.installRoot) === "/";
    if (req.recipe.kernel.install === "deb") {
      progress("kernel package (make bindeb-pkg)");
      const pkg = await packageKernelDeb({ src: src.dir, out, exec: req.exec, jobs: req.jobs, logFile });
      result.debs = pkg.debs;
      progress(`kernel install into ${req.installRoot} (${realHost ? "dpkg -i" : "dpkg -x"})`);
      const inst = await installKernelDeb({
        image: pkg.image,
        release,
        root: req.installRoot,
        exec: req.exec,
        logFile,
      });
      result.moduleDir = inst.moduleDir;
    } else {
      progress(`kernel install into ${req.installRoot}`);
      const inst = await installKernel({
        src: src.dir,
        out,
        exec: req.exec,
        modPath: req.installRoot,
        bootDir: join(req.installRoot, "boot"),
        logFile,
        mutates: true,
      });
      result.moduleDir = inst.moduleDir;
    }
    if (realHost && req.setNextBoot) {
      result.nextBoot = nextBootArgv(release);
      await req.exec.run(result.nextBoot, { mutates: true, logFile });
    }
    if (req.stateDir) {
      let s = readResume(req.stateDir);
      if (s) {
        s = advance(s, "kernel-installed");
        s = advance(s, "awaiting-reboot");
        writeResume(req.stateDir, s);
      }
    }
  }
  return result;
}
