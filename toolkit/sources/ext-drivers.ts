import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DriverCatalog, DriverEntry } from "../catalog/drivers.js";
import { redactUrl } from "../core/redact.js";
import { type DownloadSpec, ensureDownload, hashFile } from "./download.js";

/**
 * External driver archives (Intel's out-of-tree igb/ixgbe/..., e1000e, virtio_net.c): netmap's
 * configure downloads them with wget unless they already sit in `LINUX/ext-drivers/`. We fetch
 * them into the content-addressed cache with a pinned sha256 and place them there first, so
 * configure never touches the network (offline lab hosts, netmap #480).
 */

/** A recipe's pin for an archive whose catalog entry has no sha256 (or another version). */
export interface ExtDriverPin {
  sha256: string;
  url?: string;
}

/** One archive a build needs, and where configure looks for it. */
export interface ExtDriverNeed {
  token: string;
  version: string;
  /** Path under LINUX/ext-drivers/ ("igb/v5.10.2.zip"). */
  archive: string;
  download: DownloadSpec;
}

/** `--select-version=igb:5.9.1,ixgbe:5.13.4` options, as a map token -> version. */
function selectedVersions(options: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const o of options) {
    if (!o.startsWith("--select-version=")) continue;
    for (const pair of o.slice("--select-version=".length).split(",")) {
      const [t, v] = pair.split(":");
      if (t && v) out.set(t, v);
    }
  }
  return out;
}

/** Does `--no-ext-drivers[=a,b]` make configure patch the in-tree copy of `token` instead? */
function usesInTreeCopy(token: string, options: readonly string[]): boolean {
  return options.some(
    (o) =>
      o === "--no-ext-drivers" ||
      (o.startsWith("--no-ext-drivers=") && o.slice(17).split(",").includes(token)),
  );
}

/**
 * What a driver needs from LINUX/ext-drivers: nothing (not external, or --no-ext-drivers patches
 * the kernel's own copy), its archive (pinned by sha256), or it is left out: an archive nobody
 * pinned cannot be fetched safely, and configure would only fail to download it.
 */
export type ExtDriverDecision =
  | { kind: "none" }
  | { kind: "archive"; need: ExtDriverNeed }
  | { kind: "unpinned"; why: string; howToPin: string };

export function extDriverDecision(
  d: DriverEntry,
  o: { options?: readonly string[]; pins?: Record<string, ExtDriverPin> },
): ExtDriverDecision {
  const options = o.options ?? [];
  if (d.kind !== "external" || !d.external || usesInTreeCopy(d.token, options)) return { kind: "none" };
  const ext = d.external;
  const version = selectedVersions(options).get(d.token) ?? ext.version;
  const other = version !== ext.version;
  const archive =
    other && ext.archivePattern ? ext.archivePattern.replaceAll("{version}", version) : ext.archive;
  const pin = o.pins?.[d.token];
  const url =
    pin?.url ?? (other && ext.urlPattern ? ext.urlPattern.replaceAll("{version}", version) : ext.url);
  const sha256 = pin?.sha256 ?? (other ? null : ext.sha256);
  if (!sha256)
    return {
      kind: "unpinned",
      why: `the ${d.token} ${version} archive (${archive}) has no pinned sha256, so it is not fetched: ${d.token} is left out of the build and its NICs keep the stock driver (netmap in emulated mode)`,
      howToPin: `to build it, download ${redactUrl(url)}, check it, and pin its \`sha256sum\` in the recipe as netmap.extDrivers.${d.token}.sha256; or patch the kernel's own copy with netmap.configure.options: [--no-ext-drivers=${d.token}]`,
    };
  return {
    kind: "archive",
    need: {
      token: d.token,
      version,
      archive,
      download: { url, sha256, label: `${d.token} ${version} driver archive` },
    },
  };
}

/**
 * The archives the requested drivers need. A driver whose archive has no pinned sha256 is
 * returned in `skipped` (why, and how to pin it) and left out of the build, whatever the recipe's
 * emulatedOk says: a shipped recipe listing Intel's drivers stays usable on a host that has none
 * of their NICs, and the plan warns where one would run emulated.
 */
export function extDriverNeeds(o: {
  drivers: readonly string[];
  catalog: DriverCatalog;
  options?: readonly string[];
  pins?: Record<string, ExtDriverPin>;
  /** Kept for callers; an unpinned archive is skipped either way. */
  emulatedOk?: boolean | readonly string[];
}): { needs: ExtDriverNeed[]; skipped: Array<{ token: string; why: string }> } {
  const needs: ExtDriverNeed[] = [];
  const skipped: Array<{ token: string; why: string }> = [];
  for (const token of o.drivers) {
    const d = o.catalog.get(token);
    const r = extDriverDecision(d, {
      ...(o.options ? { options: o.options } : {}),
      ...(o.pins ? { pins: o.pins } : {}),
    });
    if (r.kind === "archive") needs.push(r.need);
    else if (r.kind === "unpinned") skipped.push({ token: d.token, why: `${r.why}; ${r.howToPin}` });
  }
  return { needs, skipped };
}

/**
 * Fetch (or find in the cache) each archive and copy it to `<linuxDir>/ext-drivers/<archive>`,
 * the path configure tests with `test -e` before it would run wget.
 */
export async function placeExtDrivers(
  needs: readonly ExtDriverNeed[],
  o: { linuxDir: string; cacheDir: string; offline?: boolean },
): Promise<Array<{ token: string; path: string; copied: boolean }>> {
  const placed: Array<{ token: string; path: string; copied: boolean }> = [];
  for (const n of needs) {
    const { path: cached } = await ensureDownload({
      ...n.download,
      cacheDir: o.cacheDir,
      offline: o.offline,
    });
    const dest = join(o.linuxDir, "ext-drivers", n.archive);
    const same = existsSync(dest) && (await hashFile(dest)) === n.download.sha256.toLowerCase();
    if (!same) {
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(cached, dest);
    }
    placed.push({ token: n.token, path: dest, copied: !same });
  }
  return placed;
}
