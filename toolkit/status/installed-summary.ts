import { readFileSync } from "node:fs";
import { join } from "node:path";

/** What `status` shows of `<state-dir>/installed.json` (written by `up`, see toolkit/state/installed.ts). */
export interface InstalledSummary {
  stateDir: string;
  /** "absent": nothing installed by netmap-provision; "unreadable": the file exists but is not valid JSON. */
  state: "present" | "absent" | "unreadable";
  kernelRelease: string | null;
  installedAt: string | null;
  modules: Array<{ module: string; path: string; sha256: string }>;
  problem: string | null;
}

/** Read installed.json defensively: status must report a damaged record, not crash on it. */
export function readInstalledSummary(stateDir: string): InstalledSummary {
  const file = join(stateDir, "installed.json");
  const base = { stateDir, kernelRelease: null, installedAt: null, modules: [], problem: null };
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { ...base, state: "absent" };
    return { ...base, state: "unreadable", problem: `cannot read ${file}: ${(e as Error).message}` };
  }
  try {
    const rec = JSON.parse(text) as {
      kernelRelease?: unknown;
      installedAt?: unknown;
      modules?: Array<{ module?: unknown; path?: unknown; sha256?: unknown }>;
    };
    return {
      ...base,
      state: "present",
      kernelRelease: typeof rec.kernelRelease === "string" ? rec.kernelRelease : null,
      installedAt: typeof rec.installedAt === "string" ? rec.installedAt : null,
      modules: (Array.isArray(rec.modules) ? rec.modules : []).map((m) => ({
        module: String(m.module ?? "?"),
        path: String(m.path ?? "?"),
        sha256: String(m.sha256 ?? "?"),
      })),
    };
  } catch (e) {
    return { ...base, state: "unreadable", problem: `${file} is not valid JSON: ${(e as Error).message}` };
  }
}
