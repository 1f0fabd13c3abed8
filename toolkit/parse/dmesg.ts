/**
 * Reading the kernel log around a netmap load, and explaining insmod/modprobe failures.
 * The evidence that netmap works is in dmesg, not in exit codes (design: "verify with evidence").
 */

/** One kernel log line: `[    4.636868] text` gives ts 4.636868; a line without a timestamp gives null. */
export interface DmesgLine {
  ts: number | null;
  text: string;
}

/** Split `dmesg` output into lines with their timestamps (seconds since boot). */
export function parseDmesg(text: string): DmesgLine[] {
  const out: DmesgLine[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (raw.trim() === "") continue;
    const m = /^\[\s*(\d+\.\d+)\]\s?(.*)$/.exec(raw);
    out.push(m ? { ts: Number(m[1]), text: m[2] ?? "" } : { ts: null, text: raw });
  }
  return out;
}

export interface RingGeometry {
  rings: number;
  slots: number;
}

/** An interface whose driver attached natively to netmap. */
export interface NativeAttach {
  ifname: string;
  tx: RingGeometry;
  rx: RingGeometry;
}

export type DmesgErrorKind =
  | "unknown-symbol"
  | "invalid-format"
  | "key-rejected"
  | "lockdown"
  | "disagrees-version"
  | "hook-busy"
  | "no-hw-slots";

export interface DmesgError {
  kind: DmesgErrorKind;
  module?: string;
  /** The first kernel line that shows it. */
  text: string;
  hint: string;
}

export interface NetmapEvents {
  /** From `run mknod /dev/netmap c 10 <minor> # returned <err>` (2012: `# error <err>`); the last one. */
  mknod?: { major: number; minor: number; err: number };
  loaded: boolean;
  /** Timestamp of the last `netmap: loaded module`, to look only at what followed it. */
  loadedAt?: number | null;
  unloaded: boolean;
  /** Interfaces that printed `netmap queues/slots:` (native mode); one entry per ifname, the last wins. */
  native: NativeAttach[];
  /** Interfaces for which an emulated (generic) adapter was created or activated. */
  emulated: string[];
  /** Distinct `<module>: Unknown symbol <symbol>` pairs. */
  unknownSymbols: Array<{ module: string; symbol: string }>;
  /** One entry per kind and module. */
  errors: DmesgError[];
  /** Lines that look alarming but are expected for an unsigned out-of-tree module. */
  noise: DmesgLine[];
}

const SECURE_BOOT_HINT =
  "the kernel enforces module signatures (Secure Boot / lockdown): sign netmap.ko and the driver with the kernel's scripts/sign-file and a MOK key enrolled with `mokutil --import` (then reboot to confirm the enrolment)";

const HARMLESS: RegExp[] = [
  /loading out-of-tree module taints kernel/,
  /module verification failed: signature and\/or required key missing - tainting kernel/,
  /module license '.*' taints kernel/,
  /Disabling lock debugging due to kernel taint/,
];

/** Taint and unenforced-signature messages: expected for every unsigned out-of-tree module. */
export const isHarmlessNoise = (text: string): boolean => HARMLESS.some((r) => r.test(text));

interface ErrorRule {
  kind: DmesgErrorKind;
  test: RegExp;
  /** Index of the module name capture, if any. */
  module?: number;
  hint: (mod: string | undefined) => string;
}

const ERROR_RULES: ErrorRule[] = [
  {
    kind: "unknown-symbol",
    test: /^(\S+): Unknown symbol \S+ \(err -?\d+\)/,
    module: 1,
    hint: (mod) =>
      `${mod ?? "the driver"} needs netmap's symbols: load netmap.ko before the patched driver; if netmap is loaded, the two come from different builds (rebuild them together)`,
  },
  {
    kind: "disagrees-version",
    test: /^(\S+): disagrees about version of symbol \S+/,
    module: 1,
    hint: (mod) =>
      `${mod ?? "the module"} was built against another kernel or another netmap build (mixed trees): rebuild netmap and its drivers together for the running kernel`,
  },
  {
    kind: "invalid-format",
    test: /^(\S+): (?:version magic '.*' should be '.*'|no symbol version for \S+)/,
    module: 1,
    hint: (mod) =>
      `${mod ?? "the module"} was built for another kernel (vermagic mismatch): rebuild it against the running kernel's headers`,
  },
  {
    kind: "lockdown",
    test: /Lockdown: .*(?:unsigned module loading is restricted|module)/,
    hint: () => SECURE_BOOT_HINT,
  },
  {
    kind: "key-rejected",
    test: /Loading of (?:unsigned module|module with unavailable key) is rejected|PKCS#7 signature not signed with a trusted key|Key was rejected by service/,
    hint: () => SECURE_BOOT_HINT,
  },
  {
    kind: "hook-busy",
    test: /Error: netmap adapter hook is busy/,
    hint: () =>
      "another netmap adapter (or a previous generic one not torn down) holds the interface's hook: close the netmap users of that interface, or unload and reload netmap",
  },
  {
    kind: "no-hw-slots",
    test: /Device has no hw slots \(tx \d+, rx \d+\)/,
    hint: () =>
      "the interface reports no hardware ring slots, so emulated mode cannot size its rings: set the generic_ringsize parameter, or use a NIC with a native driver",
  },
];

/** What the kernel log says about netmap: /dev/netmap, load/unload, native and emulated adapters, errors. */
export function netmapEvents(lines: DmesgLine[]): NetmapEvents {
  const ev: NetmapEvents = {
    loaded: false,
    unloaded: false,
    native: [],
    emulated: [],
    unknownSymbols: [],
    errors: [],
    noise: [],
  };
  const native = new Map<string, NativeAttach>();
  const emulated = new Set<string>();
  const symbols = new Set<string>();

  for (const line of lines) {
    const t = line.text;
    const mknod = /run mknod \/dev\/netmap c (\d+) (\d+) # (?:returned|error) (-?\d+)/.exec(t);
    const attach = /(?:^|\s)([\w.:@-]+): netmap queues\/slots: TX (\d+)\/(\d+), RX (\d+)\/(\d+)/.exec(t);
    const generic = /Emulated adapter for (\S+) (?:created|activated)/.exec(t);
    if (mknod) {
      ev.mknod = { major: Number(mknod[1]), minor: Number(mknod[2]), err: Number(mknod[3]) };
    } else if (/netmap: loaded module/.test(t)) {
      ev.loaded = true;
      ev.loadedAt = line.ts;
    } else if (/netmap: unloaded module/.test(t)) {
      ev.unloaded = true;
    } else if (attach) {
      const ifname = attach[1] ?? "";
      native.delete(ifname); // re-insert so the order is that of the last attach
      native.set(ifname, {
        ifname,
        tx: { rings: Number(attach[2]), slots: Number(attach[3]) },
        rx: { rings: Number(attach[4]), slots: Number(attach[5]) },
      });
    } else if (generic) {
      emulated.add(generic[1] ?? "");
    } else if (isHarmlessNoise(t)) {
      ev.noise.push(line);
    }

    const sym = /^(\S+): Unknown symbol (\S+) \(err -?\d+\)/.exec(t);
    if (sym && !symbols.has(`${sym[1]} ${sym[2]}`)) {
      symbols.add(`${sym[1]} ${sym[2]}`);
      ev.unknownSymbols.push({ module: sym[1] ?? "", symbol: sym[2] ?? "" });
    }
    for (const r of ERROR_RULES) {
      const e = r.test.exec(t);
      if (!e) continue;
      const mod = r.module !== undefined ? e[r.module] : undefined;
      if (ev.errors.some((x) => x.kind === r.kind && x.module === mod)) break;
      const err: DmesgError = { kind: r.kind, text: t, hint: r.hint(mod) };
      if (mod !== undefined) err.module = mod;
      ev.errors.push(err);
      break;
    }
  }
  ev.native = [...native.values()];
  ev.emulated = [...emulated];
  return ev;
}

/** Lines logged at or after a timestamp (e.g. since this run's load); untimed lines are kept. */
export const linesSince = (lines: DmesgLine[], ts: number): DmesgLine[] =>
  lines.filter((l) => l.ts === null || l.ts >= ts);

export type ModuleLoadErrorKind =
  | "unknown-symbol"
  | "already-loaded"
  | "invalid-format"
  | "key-rejected"
  | "lockdown"
  | "in-use"
  | "not-found"
  | "not-permitted";

export interface ModuleLoadExplanation {
  kind: ModuleLoadErrorKind;
  /** The stderr line that shows it. */
  line: string;
  hint: string;
}

const LOAD_RULES: Array<{ kind: ModuleLoadErrorKind; test: RegExp; hint: string }> = [
  {
    kind: "unknown-symbol",
    test: /unknown symbol in module|Unknown symbol/i,
    hint: "the module needs symbols no loaded module exports: load netmap.ko before the patched driver; if it is loaded, the two come from different builds (mixed trees): rebuild them together. dmesg names the symbols",
  },
  {
    kind: "already-loaded",
    test: /File exists/,
    hint: "a module of that name is already loaded: nothing to do, or rmmod it first to load another build",
  },
  {
    kind: "invalid-format",
    test: /Invalid module format|Exec format error/,
    hint: "the module was built for another kernel (vermagic mismatch, see dmesg): rebuild it against the running kernel's headers",
  },
  {
    kind: "key-rejected",
    test: /Key was rejected by service|Required key not available/,
    hint: SECURE_BOOT_HINT,
  },
  { kind: "lockdown", test: /Lockdown/i, hint: SECURE_BOOT_HINT },
  {
    kind: "in-use",
    test: /is in use|Resource temporarily unavailable|Device or resource busy/,
    hint: "something still uses the module (a dependent driver, or a process holding /dev/netmap or the interface): unload the users first",
  },
  {
    kind: "not-found",
    test: /not found in directory|Module \S+ not found|No such file or directory/,
    hint: "modprobe cannot find it: check the path, or run depmod after installing the module",
  },
  {
    kind: "not-permitted",
    test: /Operation not permitted/,
    hint: "not allowed: run as root; if already root, the kernel may be locked down (Secure Boot): check /sys/kernel/security/lockdown and dmesg",
  },
];

/** Explain insmod/modprobe/rmmod stderr (kmod or busybox wording); undefined when nothing is recognised. */
export function explainModuleLoadError(text: string): ModuleLoadExplanation | undefined {
  for (const line of text.split(/\r?\n/)) {
    for (const r of LOAD_RULES) {
      if (r.test.test(line)) return { kind: r.kind, line: line.trim(), hint: r.hint };
    }
  }
  return undefined;
}
