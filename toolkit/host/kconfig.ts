import { gunzipBounded } from "../core/bounded-read.js";
import { BlockedError } from "../core/errors.js";
import { hostJoin, readHostFile } from "./host-fs.js";
import type { KernelFacts } from "./kernel-facts.js";

/** Where the running kernel's configuration came from. */
export type KernelConfigKind = "boot" | "proc" | "build";

export interface KernelConfig {
  /** Host path read. */
  source: string;
  kind: KernelConfigKind;
  /** CONFIG_X -> "y" | "m" | a string/number value (quotes removed). "# ... is not set" is absent. */
  values: Map<string, string>;
  /** Sources tried before this one that exist but could not be used (a gzip bomb, a FIFO...). */
  skipped?: string[];
}

/** A kernel .config is a few hundred KiB; /proc/config.gz decompressed is capped at this. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** Parse a kernel .config: `CONFIG_X=value` lines; comments (including "is not set") are skipped. */
export function parseKernelConfig(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = line.match(/^(CONFIG_[A-Za-z0-9_]+)=(.*)$/);
    if (!m) continue;
    let value = (m[2] as string).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
      value = value.slice(1, -1).replace(/\\(["\\])/g, "$1");
    }
    values.set(m[1] as string, value);
  }
  return values;
}

/** The value of a symbol ("E1000" or "CONFIG_E1000"); undefined when unset. */
export function configValue(cfg: KernelConfig, sym: string): string | undefined {
  return cfg.values.get(sym.startsWith("CONFIG_") ? sym : `CONFIG_${sym}`);
}

/**
 * The running kernel's config, by the fallback chain kconfig itself does not do (field notes:
 * never fall back silently to an arch defconfig): /boot/config-<release>, then /proc/config.gz
 * (CONFIG_IKCONFIG_PROC), then the headers' .config.
 */
export function loadKernelConfig(root: string, kernel: Pick<KernelFacts, "release" | "build">): KernelConfig {
  const boot = `/boot/config-${kernel.release}`;
  const skipped: string[] = [];
  const found = (source: string, kind: KernelConfigKind, text: string): KernelConfig =>
    skipped.length > 0
      ? { source, kind, values: parseKernelConfig(text), skipped }
      : { source, kind, values: parseKernelConfig(text) };
  const readText = (path: string): string | null => {
    const r = readHostFile(root, path, MAX_CONFIG_BYTES);
    if ("bytes" in r) return r.bytes.toString("utf8");
    if (!r.missing) skipped.push(r.problem);
    return null;
  };

  const bootText = readText(boot);
  if (bootText !== null) return found(boot, "boot", bootText);

  const proc = "/proc/config.gz";
  // The compressed file is small (a .config gzips to ~50 KiB); its output is capped as well, so
  // a gzip bomb planted there costs at most MAX_CONFIG_BYTES, never what it claims.
  const gz = readHostFile(root, proc, 4 * 1024 * 1024);
  if ("bytes" in gz && gz.bytes.length > 0) {
    try {
      return found(proc, "proc", gunzipBounded(gz.bytes, MAX_CONFIG_BYTES, proc).toString("utf8"));
    } catch (e) {
      // A truncated, non-gzip or bomb file: fall through to the headers, and say so if they fail too.
      skipped.push((e as Error).message);
    }
  } else if ("problem" in gz && !gz.missing) skipped.push(gz.problem);

  const buildConfig = hostJoin(kernel.build.resolved ?? kernel.build.path, ".config");
  const buildText = readText(buildConfig);
  if (buildText !== null) return found(buildConfig, "build", buildText);

  throw new BlockedError(
    `cannot find the configuration of the running kernel ${kernel.release}: looked at ${boot}, ${proc} and ${buildConfig}${skipped.length > 0 ? ` (unusable: ${skipped.join("; ")})` : ""}`,
    `install the headers of this exact kernel (Debian/Ubuntu: apt-get install linux-headers-${kernel.release}; Fedora/RHEL: dnf install kernel-devel-${kernel.release}), or boot a kernel built with CONFIG_IKCONFIG_PROC=y so /proc/config.gz exists`,
  );
}
