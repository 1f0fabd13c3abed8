import type { BuildManifest } from "../build/manifest.js";
import type { Exec } from "../core/exec.js";
import type { InstallStrategy, ModuleArtifact } from "../modules/install.js";
import type { InitramfsTool } from "../modules/persist.js";
import type { Recipe } from "../recipe/schema.js";
import type { InstalledRecord } from "../state/installed.js";
import type { Transaction } from "../state/journal.js";
import type { InterfaceState } from "../swap/iface-state.js";
import type { DmesgCursor } from "../verify/dmesg-cursor.js";
import type { VerifyReport } from "../verify/verify-report.js";
import type { DeadmanInfo } from "./deadman.js";
import type { UpReport } from "./up-report.js";

/**
 * What up's transaction steps need, resolved once from recipe + host facts + catalogs + flags
 * (toolkit/plan/plan.ts computes it): `plan` prints each step's describe() from it and `up` runs
 * the same step objects with it. Paths are host paths; `root` is only where they are read.
 */
export interface UpResolve {
  /** Where host files are read ("/" on a real host; a tree under `plan --root`). */
  root: string;
  release: string;
  stateDir: string;
  recipe: string;
  strategy: InstallStrategy;
  persist: boolean;
  /** The recipe's netmap module name (a bundle's manifest may name another; up uses that). */
  netmapModule: string;
  /** The drivers swapped for patched ones (native mode), with their stock file. */
  swapped: Array<{ token: string; module: string; stockPath: string }>;
  /** Every driver verify checks, with the mode expected of its interfaces. */
  expected: Array<{ module: string; mode: "native" | "emulated" }>;
  /** Interfaces the swap takes down and brings back; those of them carrying the management connection. */
  affected: string[];
  management: string[];
  /** The affected interfaces as `ip -j` shows them now; null when not readable (a host tree). */
  interfaces: InterfaceState[] | null;
  /** Of netmap and the swapped drivers, those loaded now (the swap unloads them first). */
  loaded: string[];
  /** Where pkt-gen will be when verify runs; null: no pkt-gen built, no smoke test. */
  pktgen: string | null;
  verify: Recipe["verify"];
  /** modules.persist: the initramfs generator found for the release (null: none to regenerate). */
  initramfs: { tool: InitramfsTool | null; note: string };
  /** The step before install (the build's last step, or the bundle). */
  after: string;
  /** `up --from <bundle>`. */
  from?: string;
}

/** What up's artifacts are: from the build cache or an opened bundle. */
export interface UpArtifacts {
  manifest: BuildManifest;
  artifactsDir: string;
  modules: ModuleArtifact[];
  pktgen: string | undefined;
  cleanup?: () => void;
}

/** What the steps hand each other while `up` runs. */
export interface UpState {
  artifacts?: UpArtifacts;
  record?: InstalledRecord;
  tx?: Transaction;
  cursor?: DmesgCursor;
  verify?: VerifyReport;
  deadman?: DeadmanInfo;
}

/** A running `up`: the resolve, the exec, the state the steps share, and the report they fill. */
export interface UpRun {
  u: UpResolve;
  exec: Exec;
  st: UpState;
  report: UpReport;
  recipe: Recipe;
  /** inputsDigest() of this run (recipe, overrides, bundle), kept in load.json. */
  inputs: string;
  /** `up --confirm-timeout` (else the recipe's guard). */
  confirmTimeoutSec?: number;
  warn?: (m: string) => void;
}

/** The netmap module up loads: the artifacts' (a bundle's manifest says), else the recipe's. */
export const netmapModuleOf = (r: UpRun): string => r.st.artifacts?.manifest.netmapModule ?? r.u.netmapModule;

/** A step's run outside `up` (plan only describes): a programming error, said plainly. */
export function running(r: UpRun | undefined, id: string): UpRun {
  if (!r) throw new Error(`step ${id} was described for plan, not built to run`);
  return r;
}
