import { gunzipSync } from "node:zlib";
import { BlockedError } from "../core/errors.js";
import { hostJoin, readHostBytes, readHostText } from "./host-fs.js";
import type { KernelFacts } from "./kernel.js";

/** Where the running kernel's configuration came from. */
export type KernelConfigKind = "boot" | "proc" | "build";

export interface KernelConfig {
  /** Host path read. */
  source: string;
  kind: KernelConfigKind;
  /** CONFIG_X -> "y" | "m" | a string/number value (quotes removed). "# ... is not set" is absent. */
  values: Map<string, string>;
}

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
  const bootText = readHostText(root, boot);
  if (bootText !== null) return { source: boot, kind: "boot", values: parseKernelConfig(bootText) };

  const proc = "/proc/config.gz";
  const gz = readHostBytes(root, proc);
  if (gz !== null && gz.length > 0) {
    try {
      return { source: proc, kind: "proc", values: parseKernelConfig(gunzipSync(gz).toString("utf8")) };
    } catch {
      // A truncated or non-gzip file: fall through to the headers, and say so if they fail too.
    }
  }

  const buildConfig = hostJoin(kernel.build.resolved ?? kernel.build.path, ".config");
  const buildText = readHostText(root, buildConfig);
  if (buildText !== null) return { source: buildConfig, kind: "build", values: parseKernelConfig(buildText) };

  throw new BlockedError(
    `cannot find the configuration of the running kernel ${kernel.release}: looked at ${boot}, ${proc} and ${buildConfig}`,
    `install the headers of this exact kernel (Debian/Ubuntu: apt-get install linux-headers-${kernel.release}; Fedora/RHEL: dnf install kernel-devel-${kernel.release}), or boot a kernel built with CONFIG_IKCONFIG_PROC=y so /proc/config.gz exists`,
  );
}
