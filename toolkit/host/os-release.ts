import { escapeControl } from "../core/terminal-text.js";
import { readHostText } from "./host-fs.js";

/** The distribution family decides package names and package-manager commands in fixes. */
export type DistroFamily = "debian" | "rhel" | "arch" | "suse" | "other";

export interface OsRelease {
  id: string;
  versionId: string | null;
  prettyName: string;
  family: DistroFamily;
  /** Host path it was read from, or null when no os-release file exists. */
  source: string | null;
}

/** Parse os-release(5): KEY=value lines, values optionally quoted with shell-style escapes. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    let value = line.slice(eq + 1).trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\([\\$"`])/g, "$1");
    }
    out[line.slice(0, eq)] = value;
  }
  return out;
}

const familyIds: Array<[DistroFamily, string[]]> = [
  ["debian", ["debian", "ubuntu", "linuxmint", "pop", "raspbian", "kali"]],
  ["rhel", ["rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn"]],
  ["arch", ["arch", "manjaro", "endeavouros"]],
  ["suse", ["suse", "opensuse", "opensuse-leap", "opensuse-tumbleweed", "sles", "sled"]],
];

/** Family from ID, then from ID_LIKE (a derivative names its parents there). */
export function distroFamily(id: string, idLike: string): DistroFamily {
  for (const candidate of [id, ...idLike.split(/\s+/)]) {
    for (const [family, ids] of familyIds) if (ids.includes(candidate)) return family;
  }
  return "other";
}

/**
 * /etc/os-release, falling back to /usr/lib/os-release as os-release(5) specifies. Its values are
 * the host's to choose (PRETTY_NAME is free text): control characters come back escaped.
 */
export function readOsRelease(root: string): OsRelease {
  for (const path of ["/etc/os-release", "/usr/lib/os-release"]) {
    const text = readHostText(root, path);
    if (text === null) continue;
    const kv = Object.fromEntries(
      Object.entries(parseOsRelease(text)).map(([k, v]) => [k, escapeControl(v)]),
    ) as Record<string, string>;
    const id = kv.ID ?? "linux";
    return {
      id,
      versionId: kv.VERSION_ID ?? null,
      prettyName: kv.PRETTY_NAME ?? kv.NAME ?? id,
      family: distroFamily(id, kv.ID_LIKE ?? ""),
      source: path,
    };
  }
  return {
    id: "linux",
    versionId: null,
    prettyName: "Linux (no os-release file)",
    family: "other",
    source: null,
  };
}
