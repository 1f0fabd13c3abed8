/**
 * Parser for the output of netmap's `LINUX/configure`.
 *
 * configure disables drivers with a WARNING box and still exits 0 (netmap #480, #697, #740), so
 * the only way to know what will be built is to read its boxes and its final report, then compare
 * the requested drivers with the "native drivers" line and say, for each missing one, why.
 */

/** Why configure left a requested driver out. */
export type DropReason =
  | "download-failed"
  | "no-sources"
  | "no-patch"
  | "config-not-set"
  | "config-builtin"
  | "patch-failed"
  | "unknown";

/** A requested (or configure-known) driver that will not be built as a native netmap driver. */
export interface DroppedDriver {
  /** The driver as requested (e.g. "r8169.c"), or as configure named it when not requested. */
  driver: string;
  reason: DropReason;
  /** The configure line(s) that say it (box contents without the `*** ` frame, plus wget's error). */
  detail: string;
  /** For download failures: the URL configure tried to fetch with wget. */
  url?: string;
  /** For download failures: the path configure tests for before downloading (`test -e ...`). */
  archive?: string;
  /** What to do about it. */
  hint: string;
}

/** One `<driver>@conf/src/patch` triple from the drivers.mak dump at the end of the report. */
export interface DriversMakEntry {
  driver: string;
  conf?: string;
  src?: string;
  patch?: string;
}

export interface ConfigureWarning {
  text: string;
  hint?: string;
}

/** A configure ERROR box: configure exited 1. */
export interface ConfigureFatal {
  message: string;
  hint: string;
}

export interface ConfigureReport {
  kernelDir?: string;
  /** The realpath configure printed under the kernel directory, when it differs (a symlink). */
  kernelDirResolved?: string;
  kernelSources?: string;
  kernelSourcesResolved?: string;
  /** configure's hex version code, `printf "%03x%02x"` of LINUX_VERSION_CODE/256 and %256, e.g. "601c0". */
  versionCode?: string;
  /** The decoded version in brackets after the code, e.g. "6.1.192" (absent when perl was missing). */
  kernelVersion?: string;
  moduleFile?: string;
  subsystems: string[];
  apps: string[];
  /** Drivers that survived configure: these get a netmap-patched module. */
  native: string[];
  /** Native drivers whose CONFIG_ symbol is `=y`: built, but the module cannot replace the built-in
   *  one; they are also listed in `dropped` with reason "config-builtin". */
  builtin: string[];
  /** Drivers that will not give a loadable netmap-patched module, each with why and what to do. */
  dropped: DroppedDriver[];
  warnings: ConfigureWarning[];
  fatal?: ConfigureFatal;
  /** drivers.mak is written before the patch tests: it can list drivers that were disabled later. */
  driversMak: DriversMakEntry[];
}

type Chunk =
  | { type: "box"; kind: string; lines: string[]; index: number }
  | { type: "line"; text: string; index: number };

const BOX_OPEN = /^\*{5,}\s+(NOTE|WARNING|ERROR)\s+\*{5,}\s*$/;
const BOX_CLOSE = /^\*{20,}\s*$/;

/** Split configure output into framed message boxes and loose lines (wget, report). */
function chunk(text: string): Chunk[] {
  const out: Chunk[] = [];
  let box: { kind: string; lines: string[] } | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const open = BOX_OPEN.exec(raw);
    if (open) {
      box = { kind: open[1] ?? "", lines: [] };
      continue;
    }
    if (box) {
      if (BOX_CLOSE.test(raw)) {
        out.push({ type: "box", kind: box.kind, lines: box.lines, index: out.length });
        box = null;
      } else {
        box.lines.push(raw.replace(/^\*\*\* ?/, ""));
      }
      continue;
    }
    out.push({ type: "line", text: raw, index: out.length });
  }
  // A box cut off by a killed configure still carries its message.
  if (box) out.push({ type: "box", kind: box.kind, lines: box.lines, index: out.length });
  return out;
}

/** "virtio_net.c" and "virtio_net" name the same driver. */
const sameDriver = (a: string, b: string): boolean => a.replace(/\.c$/, "") === b.replace(/\.c$/, "");

const words = (s: string): string[] => s.trim().split(/\s+/).filter(Boolean);

const boxText = (lines: string[]): string =>
  lines
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== "")
    .join("\n");

/** The report's own fields (the same names as ConfigureReport), as the report lines give them. */
type ReportFields = Partial<
  Pick<
    ConfigureReport,
    | "kernelDir"
    | "kernelDirResolved"
    | "kernelSources"
    | "kernelSourcesResolved"
    | "versionCode"
    | "kernelVersion"
    | "moduleFile"
    | "subsystems"
    | "apps"
    | "native"
  >
> & { driversMak: DriversMakEntry[] };

/** Read configure's final report (also printed, framed, inside an ERROR box). */
function parseReportLines(lines: string[]): ReportFields {
  const r: ReportFields = { driversMak: [] };
  let last: "dir" | "src" | null = null;
  let inMak = false;
  const mak = new Map<string, DriversMakEntry>();
  for (const line of lines) {
    const field =
      /^(kernel directory|kernel sources|linux version|module file|subsystems|apps|native drivers)\s+(.*)$/.exec(
        line,
      );
    const resolved = /^\s{10,}\[(.+)\]\s*$/.exec(line);
    if (resolved && last) {
      if (last === "dir") r.kernelDirResolved = resolved[1];
      else r.kernelSourcesResolved = resolved[1];
      last = null;
      continue;
    }
    last = null;
    if (field) {
      const [, key, value = ""] = field;
      const v = value.trim();
      switch (key) {
        case "kernel directory":
          r.kernelDir = v;
          last = "dir";
          break;
        case "kernel sources":
          r.kernelSources = v;
          last = "src";
          break;
        case "linux version": {
          const m = /^(\S+)(?:\s+\[([^\]]+)\])?/.exec(v);
          if (m && m[1] !== "-") r.versionCode = m[1];
          if (m?.[2]) r.kernelVersion = m[2];
          break;
        }
        case "module file":
          r.moduleFile = v;
          break;
        case "subsystems":
          r.subsystems = words(v);
          break;
        case "apps":
          r.apps = words(v);
          break;
        case "native drivers":
          r.native = words(v);
          break;
      }
      continue;
    }
    // "native drivers" with nothing after it has no second column.
    if (/^native drivers\s*$/.test(line)) r.native = [];
    if (/^subsystems\s*$/.test(line)) r.subsystems = [];
    if (/^apps\s*$/.test(line)) r.apps = [];
    if (/^Contents of the drivers\.mak file:/.test(line)) {
      inMak = true;
      continue;
    }
    const m = inMak ? /^(\S+)@(conf|src|patch) := ?(.*)$/.exec(line) : null;
    if (m) {
      const [, driver = "", key, value = ""] = m;
      let e = mak.get(driver);
      if (!e) {
        e = { driver };
        mak.set(driver, e);
      }
      if (key === "conf" || key === "src" || key === "patch") e[key] = value.trim();
    }
  }
  r.driversMak = [...mak.values()];
  return r;
}

function fatalHint(message: string): string {
  if (/Cannot find kernel directory/i.test(message))
    return "install the headers of the running kernel (Debian: linux-headers-$(uname -r)) or pass --kernel-dir; check that /lib/modules/<kver>/build is not a broken symlink";
  if (/kernel not configured/i.test(message))
    return "the kernel directory has no .config or version.h: use the distro's headers package, or run `make olddefconfig && make modules_prepare` in the kernel tree";
  if (/not able to build kernel modules/i.test(message))
    return "a trivial module did not build: check config.log; install the compiler the kernel was built with (build-essential), libelf-dev, and headers matching the running kernel";
  if (/--fail-on-driver-errors/.test(message))
    return "a driver could not be prepared and --fail-on-driver-errors made it fatal: see the driver warning above";
  if (/leftovers from a previous/i.test(message))
    return "run `make distclean` in the netmap LINUX directory, or start from a clean checkout";
  return "configure stopped: read the message above and config.log in the build directory";
}

/** WARNING boxes that disable a driver: which capture group names it (and its CONFIG_ symbol). */
const DROP_RULES: Array<{ test: RegExp; reason: DropReason; driver: number; conf?: number }> = [
  { test: /^'([^']+)': sources not found/m, reason: "no-sources", driver: 1 },
  { test: /problems copying the sources of driver (\S+?)\.?$/m, reason: "no-sources", driver: 1 },
  { test: /^'([^']+)': no applicable patch found/m, reason: "no-patch", driver: 1 },
  { test: /problems patching the driver (\S+?)\.?$/m, reason: "patch-failed", driver: 1 },
  { test: /^(CONFIG_\w+) not set in (\S+), skipping (\S+)/m, reason: "config-not-set", driver: 3, conf: 1 },
  // The pristine vendor driver did not build against this kernel: not a netmap patch problem.
  { test: /problems building the external driver (\S+?)\.?$/m, reason: "unknown", driver: 1 },
];

interface DropFacts {
  versionCode?: string;
  kernelVersion?: string;
  kernelSources?: string;
  sourcesMissing: boolean;
}

function dropHint(
  reason: DropReason,
  driver: string,
  f: DropFacts,
  extra: { conf?: string; archive?: string },
): string {
  const kernel = f.kernelVersion ?? f.versionCode ?? "this kernel";
  switch (reason) {
    case "download-failed":
      return `configure could not download the original ${driver} sources (offline?): put the archive at ${
        extra.archive ?? "LINUX/ext-drivers/"
      } before configure, or let netmap-provision fetch it into its cache with a pinned sha256`;
    case "no-sources":
      return f.sourcesMissing
        ? `no full kernel sources: install the matching sources (Debian: linux-source-<series>) and pass --kernel-sources`
        : `the kernel sources${f.kernelSources ? ` at ${f.kernelSources}` : ""} have no file named ${driver} (renamed or removed in ${kernel}): its NICs can only use emulated (generic) mode`;
    case "no-patch":
      return `netmap has no ${driver} patch for ${kernel} (code ${f.versionCode ?? "?"}): pick a netmap commit with a patch for this kernel, or use emulated mode`;
    case "patch-failed":
      return `the netmap patch for ${driver} does not apply to these sources (distro backports?): pick a netmap commit whose patch fits this kernel, or use emulated mode`;
    case "config-not-set":
      return `${extra.conf ?? "the driver's CONFIG_ symbol"} is not set in the kernel .config: set ${
        extra.conf ?? "it"
      }=m (a kernel rebuild), or use emulated mode`;
    case "config-builtin":
      return `${extra.conf ?? "the driver"} is =y (built in): set ${extra.conf ?? "it"}=m, or pass --driver-suffix= to build a renamed module`;
    case "unknown":
      return "configure did not say why: check that it is a configure driver token (configure --show-drivers) and read config.log";
  }
}

/**
 * Parse configure's output. `requested` are the `--drivers=` tokens; each one missing from the
 * "native drivers" line is reported in `dropped` with a reason, "unknown" when configure said nothing.
 */
export function parseConfigureLog(text: string, requested: string[]): ConfigureReport {
  const chunks = chunk(text);
  const loose = chunks.flatMap((c) => (c.type === "line" ? [c.text] : []));
  let fields = parseReportLines(loose);

  const warnings: ConfigureWarning[] = [];
  const builtin: string[] = [];
  let fatal: ConfigureFatal | undefined;
  let sourcesMissing = false;
  // Raw drops in order of appearance; hints are filled in once the report is known.
  const raw: Array<{
    driver: string;
    reason: DropReason;
    detail: string;
    url?: string;
    archive?: string;
    conf?: string;
  }> = [];
  const builtinConf = new Map<string, string>();
  // Download attempts announced by a NOTE box, keyed by driver, waiting for a failure box.
  const fetches = new Map<string, { url?: string; archive?: string; at: number }>();

  for (const c of chunks) {
    if (c.type !== "box") continue;
    const body = boxText(c.lines);
    const first = c.lines.find((l) => l.trim() !== "")?.trim() ?? "";

    if (c.kind === "NOTE") {
      const dl =
        /original sources for driver\s+(\S+)\s+using the following command:\s+(.+?)\s+If this fails/s.exec(
          c.lines.join("\n"),
        );
      if (dl) {
        const cmd = dl[2] ?? "";
        const url = /\bwget\s+(?:-\S+\s+)*(\S+:\/\/\S+)/.exec(cmd)?.[1];
        const archive = /\btest -e\s+(\S+)/.exec(cmd)?.[1];
        fetches.set(dl[1] ?? "", { url, archive, at: c.index });
      }
      continue;
    }

    if (c.kind === "ERROR") {
      const cut = c.lines.findIndex((l) => /Current configuration values:/.test(l));
      const msgLines = (cut >= 0 ? c.lines.slice(0, cut) : c.lines).map((l) => l.trim());
      const para: string[] = [];
      for (const l of msgLines) {
        if (l === "" && para.length) break;
        if (l !== "") para.push(l);
      }
      fatal = { message: para.join(" "), hint: fatalHint(body) };
      // An ERROR box embeds the report, framed: use it when configure died before printing one.
      if (cut >= 0 && fields.kernelDir === undefined) fields = parseReportLines(c.lines.slice(cut + 1));
      continue;
    }

    // WARNING boxes.
    const fetchFail = /Unable to fetch the sources for driver (\S+?)\.? Disabling driver/.exec(body);
    if (fetchFail) {
      const driver = fetchFail[1] ?? "";
      const f = fetches.get(driver);
      // wget's own complaint sits between the NOTE box and this one.
      const wget = f
        ? chunks
            .slice(f.at + 1, c.index)
            .flatMap((x) => (x.type === "line" && x.text.trim() !== "" ? [x.text.trim()] : []))
            .filter((l) => !/^--\d{4}-\d\d-\d\d /.test(l))
        : [];
      raw.push({
        driver,
        reason: "download-failed",
        detail: [...wget, body].join("\n"),
        url: f?.url,
        archive: f?.archive,
      });
      continue;
    }
    const drop = DROP_RULES.map((r) => ({ r, m: r.test.exec(body) })).find((x) => x.m !== null);
    if (drop?.m) {
      const conf = drop.r.conf !== undefined ? drop.m[drop.r.conf] : undefined;
      raw.push({ driver: drop.m[drop.r.driver] ?? "", reason: drop.r.reason, detail: body, conf });
      continue;
    }
    const notModule = /^The (\S+) driver is not compiled as a module/m.exec(body);
    if (notModule) {
      const driver = notModule[1] ?? "";
      const conf = /^\s*(CONFIG_\w+)=m/m.exec(body)?.[1];
      builtin.push(driver);
      if (conf) builtinConf.set(driver, conf);
      warnings.push({
        text: body,
        hint: `${driver} is built into the kernel: its patched module cannot be loaded; set ${conf ?? "its CONFIG_ symbol"}=m or pass --driver-suffix=`,
      });
      continue;
    }
    if (/^Cannot find full kernel sources/m.test(body)) {
      sourcesMissing = true;
      warnings.push({
        text: first,
        hint: "only headers were found: install the matching kernel sources (Debian: linux-source-<series>) and pass --kernel-sources; netmap.ko still builds",
      });
      continue;
    }
    const unrecognized = /^Unrecognized option: (.*)$/m.exec(body);
    warnings.push(
      unrecognized
        ? { text: body, hint: `configure ignored ${unrecognized[1]}: check the spelling (configure --help)` }
        : { text: body },
    );
  }

  const native = fields.native ?? [];
  const facts: DropFacts = {
    versionCode: fields.versionCode,
    kernelVersion: fields.kernelVersion,
    kernelSources: fields.kernelSources,
    sourcesMissing,
  };
  const named = (d: string): string => requested.find((r) => sameDriver(r, d)) ?? d;

  const dropped: DroppedDriver[] = [];
  for (const d of raw) {
    if (dropped.some((x) => sameDriver(x.driver, d.driver))) continue; // first reason wins
    const out: DroppedDriver = {
      driver: named(d.driver),
      reason: d.reason,
      detail: d.detail,
      hint:
        d.reason === "unknown"
          ? `the unpatched external ${d.driver} did not build against this kernel: pin an older or newer driver version (--select-version) or use emulated mode`
          : dropHint(d.reason, d.driver, facts, d),
    };
    if (d.url) out.url = d.url;
    if (d.archive) out.archive = d.archive;
    dropped.push(out);
  }
  // configure keeps a built-in (=y) driver and only warns, but its patched module can never be
  // loaded over the built-in one: for the user that is a drop.
  for (const b of builtin) {
    if (dropped.some((x) => sameDriver(x.driver, b))) continue;
    const conf = builtinConf.get(b);
    dropped.push({
      driver: named(b),
      reason: "config-builtin",
      detail: warnings.find((w) => w.text.includes(`The ${b} driver`))?.text ?? "",
      hint: dropHint("config-builtin", b, facts, { conf }),
    });
  }
  // Requested drivers that neither survived nor were explained.
  // Skipped when configure failed before its report: nothing survived, and the fatal error says why.
  if (!fatal) {
    for (const r of requested) {
      if (native.some((n) => sameDriver(n, r)) || dropped.some((x) => sameDriver(x.driver, r))) continue;
      dropped.push({ driver: r, reason: "unknown", detail: "", hint: dropHint("unknown", r, facts, {}) });
    }
  }

  const report: ConfigureReport = {
    subsystems: fields.subsystems ?? [],
    apps: fields.apps ?? [],
    native,
    builtin,
    dropped,
    warnings,
    driversMak: fields.driversMak,
  };
  if (fields.kernelDir !== undefined) report.kernelDir = fields.kernelDir;
  if (fields.kernelDirResolved !== undefined) report.kernelDirResolved = fields.kernelDirResolved;
  if (fields.kernelSources !== undefined) report.kernelSources = fields.kernelSources;
  if (fields.kernelSourcesResolved !== undefined) report.kernelSourcesResolved = fields.kernelSourcesResolved;
  if (fields.versionCode !== undefined) report.versionCode = fields.versionCode;
  if (fields.kernelVersion !== undefined) report.kernelVersion = fields.kernelVersion;
  if (fields.moduleFile !== undefined) report.moduleFile = fields.moduleFile;
  if (fatal) report.fatal = fatal;
  return report;
}
