import { type DriverCatalog, loadDriverCatalog } from "../catalog/drivers.js";
import { formatError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { type KernelConfigKind, loadKernelConfig } from "./kconfig.js";
import { type KernelFacts, readKernelFacts } from "./kernel-facts.js";
import { type KvmFacts, readKvmFacts } from "./kvm.js";
import { type ManagementFacts, readManagementFacts } from "./management.js";
import { type NicDriverLookup, type NicFacts, readNicFacts } from "./nics.js";
import { type OsRelease, readOsRelease } from "./os-release.js";
import { probeSecureBootWithMokutil, readSecureBootFacts, type SecureBootFacts } from "./secure-boot.js";
import { findTools, type ToolFacts } from "./tools.js";

/** The kernel config as plain data (a Map does not survive JSON). */
export interface KernelConfigFacts {
  source: string;
  kind: KernelConfigKind;
  values: Record<string, string>;
  /** Config sources tried first that exist but were unusable (a FIFO, a gzip bomb...). */
  skipped?: string[];
}

/** Everything the toolkit knows about a host before touching it. JSON-serialisable. */
export interface HostFacts {
  /** The root prefix read ("/" for the real host). */
  root: string;
  os: OsRelease;
  kernel: KernelFacts;
  /** null when no config was found; kconfigProblem says where it looked and what to do. */
  kconfig: KernelConfigFacts | null;
  kconfigProblem: { message: string; hint: string | null } | null;
  nics: NicFacts[];
  management: ManagementFacts;
  secureBoot: SecureBootFacts;
  tools: ToolFacts[];
  kvm: KvmFacts;
}

export interface GatherOptions {
  /** Root prefix of the host tree; default "/". */
  root?: string;
  /** Only used when a file cannot answer (EFI host without readable efivars: mokutil). */
  exec?: Exec;
  /** The environment of the session (SSH_CONNECTION, PATH); default process.env. */
  env?: Record<string, string | undefined>;
  /** Default: the project's driver catalog. */
  catalog?: DriverCatalog;
}

/** Adapt the driver catalog to what NIC facts need. */
export function catalogLookup(catalog: DriverCatalog): NicDriverLookup {
  return {
    tokenForModule: (module) => catalog.byModule(module)?.token ?? null,
    nativeOn: (token, version) => catalog.nativeOn(token, version),
  };
}

/** Read the host. Files only on the usual path: no process is spawned unless exec is needed and given. */
export async function gatherHostFacts(opts: GatherOptions = {}): Promise<HostFacts> {
  const root = opts.root ?? "/";
  const env = opts.env ?? process.env;
  const os = readOsRelease(root);
  const kernel = readKernelFacts(root);
  let kconfig: KernelConfigFacts | null = null;
  let kconfigProblem: HostFacts["kconfigProblem"] = null;
  try {
    const cfg = loadKernelConfig(root, kernel);
    kconfig = { source: cfg.source, kind: cfg.kind, values: Object.fromEntries(cfg.values) };
    if (cfg.skipped) kconfig.skipped = cfg.skipped;
  } catch (err) {
    const hint = err instanceof Error && "hint" in err ? ((err as { hint?: string }).hint ?? null) : null;
    kconfigProblem = { message: err instanceof Error ? err.message : formatError(err).text, hint };
  }
  const catalog = opts.catalog ?? loadDriverCatalog();
  const secureBoot = readSecureBootFacts(root);
  if (secureBoot.efi && secureBoot.secureBoot === null && opts.exec && (root === "/" || root === "")) {
    secureBoot.secureBoot = await probeSecureBootWithMokutil(opts.exec);
    if (secureBoot.secureBoot) secureBoot.refusesUnsignedModules = true;
  }
  return {
    root,
    os,
    kernel,
    kconfig,
    kconfigProblem,
    nics: readNicFacts(root, kernel, catalogLookup(catalog)),
    management: readManagementFacts(root, env),
    secureBoot,
    tools: findTools(root, env.PATH),
    kvm: readKvmFacts(root),
  };
}
