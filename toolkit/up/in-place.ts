import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { release as osRelease } from "node:os";
import { join } from "node:path";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { persistenceInPlace } from "../modules/persist.js";
import type { RunRecipe } from "../recipe/run-recipe.js";
import { treeContentHash } from "../sources/netmap-source.js";
import { readJsonRecord, sha256File, sha256IfExists, writeFileAtomic } from "../state/atomic-file.js";
import { readInstalled } from "../state/installed.js";
import type { DmesgCursor } from "../verify/dmesg-cursor.js";
import { pktgenOptions, verifyLoad } from "../verify/verify.js";
import type { VerifyReport } from "../verify/verify-report.js";

/**
 * The no-change path of `up`: when the last successful `up` was made from the same inputs, for
 * the running kernel, and every file it installed still has its bytes, `up` only verifies the
 * load (about a second on a host) instead of planning and consulting the build cache again.
 * Anything that differs, or a verify that fails, falls through to the full transaction.
 */

/** `<stateDir>/load.json`: what the last successful `up` loaded, and how to verify it again. */
export interface LoadRecord {
  txid?: string;
  /** dmesg cursor taken before that load: a re-verify judges that load's lines only. */
  cursor: DmesgCursor;
  at: string;
  /** inputsDigest() of that run. */
  inputs?: string;
  netmapModule?: string;
  /** The drivers and the mode their interfaces were verified in. */
  expected?: Array<{ module: string; mode: "native" | "emulated" }>;
  /** pkt-gen in the build cache (absent for a bundle, whose copy is gone after up). */
  pktgen?: string;
}

export const loadRecordPath = (stateDir: string): string => join(stateDir, "load.json");

export function readLoadRecord(stateDir: string): LoadRecord | undefined {
  return readJsonRecord<LoadRecord>(loadRecordPath(stateDir));
}

export function writeLoadRecord(stateDir: string, rec: LoadRecord): void {
  writeFileAtomic(loadRecordPath(stateDir), `${JSON.stringify(rec)}\n`);
}

/**
 * Everything a run's result depends on that the user controls: the resolved recipe (flag
 * overrides applied), a local netmap tree's content, and the bundle's bytes. A git or tarball
 * source is pinned inside the recipe already.
 */
export function inputsDigest(run: RunRecipe, from?: string): string {
  const h = createHash("sha256").update(JSON.stringify(run.recipe));
  const src = run.recipe.netmap.source;
  if (src.kind === "local" && existsSync(src.path)) h.update(`tree:${treeContentHash(src.path)}`);
  if (from) h.update(`bundle:${existsSync(from) ? sha256File(from) : "missing"}`);
  return h.digest("hex");
}

/** Why the fast path does not apply (for debugging), or the load record it can verify. */
export function inPlace(run: RunRecipe, from: string | undefined): LoadRecord | string {
  const rec = readInstalled(run.stateDir);
  const load = readLoadRecord(run.stateDir);
  if (!rec || !load?.inputs || !load.expected) return "no record of an earlier up";
  // The modules are loaded into the running kernel: a record for another release is stale.
  if (run.root === "/" && rec.kernelRelease !== osRelease()) return "another kernel is running";
  if (rec.strategy !== run.recipe.modules.strategy) return "the strategy changed";
  for (const m of rec.modules)
    if (sha256IfExists(underRoot(run.root, m.path)) !== m.sha256) return `${m.path} changed`;
  if (run.recipe.modules.persist && !persistenceInPlace(run.root, rec)) return "persistence is not in place";
  if (load.inputs !== inputsDigest(run, from)) return "the recipe or its sources changed";
  return load;
}

/** Verify the earlier load when nothing changed; undefined when the full `up` must run. */
export async function verifyInPlace(o: {
  run: RunRecipe;
  exec: Exec;
  from?: string;
  warn?: (m: string) => void;
}): Promise<VerifyReport | undefined> {
  const load = inPlace(o.run, o.from);
  if (typeof load === "string") return undefined;
  const pktgen = pktgenOptions(
    o.run.recipe.verify.pktgen,
    load.pktgen && existsSync(load.pktgen) ? load.pktgen : undefined,
  );
  const v = await verifyLoad({
    exec: o.exec,
    root: o.run.root,
    cursor: load.cursor,
    netmapModule: load.netmapModule ?? o.run.recipe.netmap.moduleName,
    drivers: load.expected ?? [],
    dmesgExpect: o.run.recipe.verify.dmesg.expect,
    ...(pktgen ? { pktgen } : {}),
  });
  if (v.ok) return v;
  o.warn?.(`the installed modules do not verify (${v.failures[0]}); swapping them again`);
  return undefined;
}
