import { ProvisionError } from "../core/errors.js";
import { readInstalled } from "../state/installed.js";

/** What `status` shows of `<state-dir>/installed.json` (written by `up`, see toolkit/state/installed.ts). */
export interface InstalledSummary {
  stateDir: string;
  /** "absent": nothing installed by netmap-provision; "unreadable": the file exists but is damaged. */
  state: "present" | "absent" | "unreadable";
  kernelRelease: string | null;
  installedAt: string | null;
  /** Which recorded module is netmap itself (null: absent, or a record that predates the field). */
  netmapModule: string | null;
  modules: Array<{ module: string; path: string; sha256: string }>;
  problem: string | null;
  /** What to do about a damaged record (with state "unreadable"). */
  hint?: string;
}

/**
 * Read installed.json through the same reader as up and down (bounded, schema-checked, paths
 * confined), but report a damaged record instead of throwing: status still shows the rest of the
 * host, and the command then exits 2 naming the file.
 */
export function readInstalledSummary(stateDir: string): InstalledSummary {
  const base = {
    stateDir,
    kernelRelease: null,
    installedAt: null,
    netmapModule: null,
    modules: [],
    problem: null,
  };
  try {
    const rec = readInstalled(stateDir);
    if (!rec) return { ...base, state: "absent" };
    return {
      ...base,
      state: "present",
      kernelRelease: rec.kernelRelease,
      installedAt: rec.installedAt,
      netmapModule: rec.netmapModule ?? null,
      modules: rec.modules.map((m) => ({ module: m.module, path: m.path, sha256: m.sha256 })),
    };
  } catch (e) {
    if (!(e instanceof ProvisionError)) throw e;
    return e.hint
      ? { ...base, state: "unreadable", problem: e.message, hint: e.hint }
      : { ...base, state: "unreadable", problem: e.message };
  }
}
