import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import type { DriverCatalog } from "../catalog/drivers.js";
import { kernelVersionNumber } from "../catalog/version-code.js";
import { StepError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { catalogDir, underRoot } from "../core/paths.js";
import { loadKernelConfig, parseKernelConfig } from "../host/kconfig.js";
import type { KernelFacts } from "../host/kernel-facts.js";

/**
 * The kernel .config a build uses, in the order the steps run:
 *   base (the running kernel's config by the fallback chain, a file, or tinyconfig)
 *   + fragments from kernels/fragments/ + the Debian signing-key fix + localversion
 *   -> olddefconfig (oldnoconfig before 3.7)
 *   -> localmodconfig (optional: modules loaded now, or a list)
 *   -> the NIC drivers the recipe needs forced to =m -> olddefconfig -> checked.
 * The tree stays pristine: everything happens in the O= build dir.
 */

export type ConfigBase =
  | { kind: "running"; root: string; kernel: Pick<KernelFacts, "release" | "build"> }
  | { kind: "file"; path: string }
  /** The smallest config kbuild makes (allnoconfig before 3.17), for guest kernels. */
  | { kind: "tiny" };

export interface ConfigureKernelOptions {
  src: string;
  out: string;
  /** x.y.z of the tree: picks olddefconfig/oldnoconfig, tinyconfig/allnoconfig. */
  version: string;
  base: ConfigBase;
  /** Fragment names in kernels/fragments/ (without .config). */
  fragments?: readonly string[];
  /** Module names to keep (an lsmod list); undefined: no localmodconfig. */
  localmodconfig?: readonly string[];
  /** Symbols (E1000 or CONFIG_E1000) that must come out =m. */
  modules?: readonly string[];
  localversion?: string;
  exec: Exec;
  logFile?: string;
  fragmentsDir?: string;
}

export interface ConfigureKernelResult {
  configPath: string;
  /** Where the base config came from ("tinyconfig", a file, /boot/config-...). */
  baseSource: string;
  /** Fragment lines that did not survive olddefconfig (a dependency is missing): worth a warning. */
  droppedFragmentLines: string[];
  values: Map<string, string>;
}

const sym = (s: string): string => (s.startsWith("CONFIG_") ? s.slice(7) : s);

export const fragmentsDir = (): string => join(catalogDir("kernels"), "fragments");

/** The fragments shipped in kernels/fragments/. */
export function listFragments(dir: string = fragmentsDir()): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(".config"))
        .map((f) => f.slice(0, -7))
        .sort()
    : [];
}

/** The text of a named fragment; an unknown name is a UserError listing the known ones. */
export function readFragment(name: string, dir: string = fragmentsDir()): string {
  const p = join(dir, `${name}.config`);
  if (!/^[A-Za-z0-9._-]+$/.test(name) || !existsSync(p))
    throw new UserError(
      `no kernel config fragment "${name}" in kernels/fragments/`,
      `known fragments: ${listFragments(dir).join(", ") || "(none)"}`,
    );
  return readFileSync(p, "utf8");
}

/** The symbol a .config line sets ("CONFIG_X=y" and "# CONFIG_X is not set"), else undefined. */
function lineSymbol(line: string): string | undefined {
  return (
    /^(CONFIG_[A-Za-z0-9_]+)=/.exec(line)?.[1] ?? /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line)?.[1]
  );
}

/**
 * Merge fragments over a .config the way merge_config.sh -m does (a later line for a symbol
 * replaces the earlier one). Done here because merge_config.sh only exists since 3.2 and the
 * seed kernel is 2.6.37.
 */
export function mergeConfigFragments(base: string, fragments: readonly string[]): string {
  const lines = base.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const frag of fragments) {
    for (const raw of frag.split("\n")) {
      const line = raw.trim();
      const s = lineSymbol(line);
      if (!s) continue;
      const i = lines.findIndex((l) => lineSymbol(l) === s);
      if (i >= 0) lines.splice(i, 1);
      lines.push(line);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Fragment lines the final config does not honour. "is not set" is honoured by absence or "=n". */
export function droppedLines(fragments: readonly string[], values: Map<string, string>): string[] {
  const out: string[] = [];
  for (const frag of fragments)
    for (const raw of frag.split("\n")) {
      const line = raw.trim();
      const off = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line)?.[1];
      if (off) {
        const v = values.get(off);
        if (v !== undefined && v !== "n") out.push(line);
        continue;
      }
      const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
      if (!m) continue;
      const want = (m[2] as string).replace(/^"(.*)"$/, "$1");
      if ((values.get(m[1] as string) ?? "n") !== want) out.push(line);
    }
  return out;
}

/** An lsmod-format listing of `modules`, for `make LSMOD=<file> localmodconfig`. */
export function lsmodText(modules: readonly string[]): string {
  const names = [...new Set(modules.map((m) => m.replaceAll("-", "_")))].sort();
  return `Module                  Size  Used by\n${names.map((n) => `${n} 16384 0`).join("\n")}\n`;
}

/** Module names from /proc/modules (or an lsmod listing): the first column. */
export function parseModuleList(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n !== "" && n !== "Module" && !n.startsWith("#"));
}

/** The CONFIG symbols of the recipe's drivers, from the driver catalog (drivers/*.yaml). */
export function driverSymbols(tokens: readonly string[], catalog: DriverCatalog): string[] {
  return [...new Set(tokens.map((t) => sym(catalog.get(t).config)))];
}

/** Symbols that are not =m: [] when all are modules. */
export function notModules(
  values: Map<string, string>,
  symbols: readonly string[],
): Array<{ symbol: string; value: string }> {
  return symbols
    .map((s) => ({ symbol: `CONFIG_${sym(s)}`, value: values.get(`CONFIG_${sym(s)}`) ?? "n" }))
    .filter((x) => x.value !== "m");
}

/** olddefconfig arrived in 3.7; before it, oldnoconfig does the same job (new symbols off). */
export const oldConfigTarget = (version: string): string =>
  kernelVersionNumber(version) < kernelVersionNumber("3.7") ? "oldnoconfig" : "olddefconfig";
const tinyTarget = (version: string): string =>
  kernelVersionNumber(version) < kernelVersionNumber("3.17") ? "allnoconfig" : "tinyconfig";

/** Where the base config text comes from: a file, tinyconfig, or the running kernel's by the fallback chain. */
export function baseConfigSource(base: ConfigBase): string {
  if (base.kind === "file") return base.path;
  if (base.kind === "tiny") return "tinyconfig";
  // The fallback chain (boot -> /proc/config.gz -> build dir): BlockedError when none exists.
  return loadKernelConfig(base.root, base.kernel).source;
}

function baseConfigText(base: ConfigBase): { text: string; source: string } {
  if (base.kind === "file") {
    if (!existsSync(base.path)) throw new UserError(`kernel config file ${base.path} does not exist`);
    return { text: readFileSync(base.path, "utf8"), source: base.path };
  }
  if (base.kind === "tiny") return { text: "", source: "tinyconfig" };
  const cfg = loadKernelConfig(base.root, base.kernel);
  const bytes = readFileSync(underRoot(base.root, cfg.source));
  const text = cfg.kind === "proc" ? gunzipSync(bytes).toString("utf8") : bytes.toString("utf8");
  return { text, source: cfg.source };
}

/** What configures an O= dir, as data: the configure run and the kernel-config step's describe. */
export type KernelConfigSpec = Omit<ConfigureKernelOptions, "exec" | "logFile" | "fragmentsDir">;

/**
 * One thing configuring does, in order: a command (the only place its argv is made) or a file
 * the toolkit writes itself (the base config, the fragments merged over it, the lsmod list).
 */
export type ConfigOp =
  | { kind: "run"; argv: string[]; cwd?: string }
  | { kind: "write-base"; path: string }
  | { kind: "merge-fragments"; path: string; fragments: readonly string[] }
  | { kind: "write-lsmod"; path: string; modules: readonly string[] };

/** The .config of an O= dir. */
export const kernelConfigPath = (out: string): string => join(out, ".config");

/** `make O=<out> <args...>`, run in the source tree. */
export const kernelMakeArgv = (out: string, ...args: string[]): string[] => ["make", `O=${out}`, ...args];

/** The tree's scripts/config on the O= dir's .config. */
export const scriptsConfigArgv = (src: string, out: string, ...args: string[]): string[] => [
  join(src, "scripts", "config"),
  "--file",
  kernelConfigPath(out),
  ...args,
];

/** The steps of configuring `o.out`, in the order configureKernel runs them. */
export function configureOps(o: KernelConfigSpec): ConfigOp[] {
  const make = (...args: string[]): ConfigOp => ({
    kind: "run",
    argv: kernelMakeArgv(o.out, ...args),
    cwd: o.src,
  });
  const sc = (...args: string[]): ConfigOp => ({
    kind: "run",
    argv: scriptsConfigArgv(o.src, o.out, ...args),
  });
  const configPath = kernelConfigPath(o.out);
  const old = oldConfigTarget(o.version);
  const ops: ConfigOp[] = [
    o.base.kind === "tiny" ? make(tinyTarget(o.version)) : { kind: "write-base", path: configPath },
    { kind: "merge-fragments", path: configPath, fragments: o.fragments ?? [] },
    // Debian's config names signing certificates that exist only in Debian's build tree; empty
    // strings make the build generate its own key instead of failing on a missing .pem.
    sc("--set-str", "SYSTEM_TRUSTED_KEYS", "", "--set-str", "SYSTEM_REVOCATION_KEYS", ""),
  ];
  // Recognisable release (6.1.192-np); no "+" from LOCALVERSION_AUTO, so the release is predictable.
  if (o.localversion !== undefined)
    ops.push(sc("--set-str", "LOCALVERSION", o.localversion, "--disable", "LOCALVERSION_AUTO"));
  ops.push(make(old));
  if (o.localmodconfig !== undefined) {
    const lsmod = join(o.out, ".netmap-provision-lsmod");
    ops.push(
      { kind: "write-lsmod", path: lsmod, modules: o.localmodconfig },
      make(`LSMOD=${lsmod}`, "localmodconfig"),
    );
  }
  const modules = (o.modules ?? []).map(sym);
  if (modules.length > 0) ops.push(sc(...modules.flatMap((m) => ["--module", m])), make(old));
  return ops;
}

/** Configure the O= dir `out` for the tree `src`. */
export async function configureKernel(o: ConfigureKernelOptions): Promise<ConfigureKernelResult> {
  const configPath = kernelConfigPath(o.out);
  const { text, source } = baseConfigText(o.base);
  const fragments = (o.fragments ?? []).map((f) => readFragment(f, o.fragmentsDir));
  for (const op of configureOps(o)) {
    if (op.kind === "run")
      await o.exec.run(op.argv, { ...(op.cwd !== undefined ? { cwd: op.cwd } : {}), logFile: o.logFile });
    else if (op.kind === "write-base") writeFileSync(op.path, text);
    else if (op.kind === "merge-fragments")
      writeFileSync(op.path, mergeConfigFragments(readFileSync(op.path, "utf8"), fragments));
    else writeFileSync(op.path, lsmodText(op.modules));
  }
  const modules = (o.modules ?? []).map(sym);
  const values = parseKernelConfig(readFileSync(configPath, "utf8"));
  const bad = notModules(values, modules);
  if (bad.length > 0) {
    throw new StepError(
      "kernel-config",
      `the kernel config does not build ${bad.map((b) => `${b.symbol} as a module (it is ${b.value})`).join(", ")}, though the recipe's drivers need it`,
      "a symbol it depends on is off (see its `depends on` in the Kconfig file): add the dependency to a fragment in kernels/fragments/, or do not use --localmodconfig",
    );
  }
  return { configPath, baseSource: source, droppedFragmentLines: droppedLines(fragments, values), values };
}
