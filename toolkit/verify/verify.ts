import { statSync } from "node:fs";
import { posix } from "node:path";
import { createContext, runInContext } from "node:vm";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { listHostDir, readHostLink, readHostText } from "../host/host-fs.js";
import { type DmesgLine, netmapEvents } from "../parse/dmesg.js";
import { parseProcMisc, parseProcModules } from "../parse/proc.js";
import { DEFAULT_DMESG_EXPECT } from "../recipe/schema.js";
import { type DmesgCursor, linesAfter, readDmesg } from "./dmesg-cursor.js";
import { type PktGenSmokeSpec, pktgenSmoke, type SmokeTiming } from "./pktgen-smoke.js";
import type { VerifyReport } from "./verify-report.js";

export interface VerifyOptions {
  exec: Exec;
  root: string;
  /** Taken before loading; null cursor ts: judge the whole log (re-verifying an earlier load). */
  cursor: DmesgCursor;
  /** netmap's module ("netmap", "netmap_lin"): in /proc/modules, and what the patched drivers depend on. */
  netmapModule: string;
  /** The drivers swapped, with the mode the plan expects of their interfaces. */
  drivers: ReadonlyArray<{ module: string; mode: "native" | "emulated" }>;
  /** The recipe's verify.dmesg.expect: each pattern must match a kernel line since the cursor. */
  dmesgExpect?: readonly string[];
  /** pkt-gen binary when it was built; undefined skips the smoke test. */
  pktgen?: PktGenSmokeSpec & { path: string };
  /** Shorter pkt-gen timings (tests). */
  pktgenTiming?: Partial<SmokeTiming>;
}

/** The recipe's pkt-gen smoke test for a built pkt-gen; undefined when none was built or none is asked for. */
export function pktgenOptions(p: PktGenSmokeSpec, path: string | undefined): VerifyOptions["pktgen"] {
  if (!path || !(p.vale || p.interfaces.length > 0)) return undefined;
  const spec = { path, vale: p.vale, interfaces: p.interfaces, seconds: p.seconds, size: p.size };
  return p.count === undefined ? spec : { ...spec, count: p.count };
}

/**
 * One failure per verify.dmesg.expect pattern that no kernel line since the load matches. The
 * default patterns restate the mknod and "loaded module" checks verifyLoad always makes (with
 * better messages), so those are not reported twice.
 */
export function dmesgExpectFailures(
  lines: readonly DmesgLine[],
  patterns: readonly string[],
  timeoutMs: number = DMESG_MATCH_TIMEOUT_MS,
): string[] {
  const failures: string[] = [];
  const texts = lines.map((l) => l.text);
  for (const p of patterns) {
    if (DEFAULT_DMESG_EXPECT.includes(p)) continue;
    const found = matchesAnyBounded(p, texts, timeoutMs);
    if (found === "timeout")
      failures.push(
        `dmesg pattern /${p}/ (the recipe's verify.dmesg.expect) took over ${timeoutMs} ms to match and was stopped: write it without nested or overlapping repeats`,
      );
    else if (!found)
      failures.push(`dmesg since the load has no line matching /${p}/ (the recipe's verify.dmesg.expect)`);
  }
  return failures;
}

/** A recipe's pattern runs against the kernel log: its match time is bounded, whatever it is. */
export const DMESG_MATCH_TIMEOUT_MS = 2000;

/**
 * Whether `pattern` matches one of `texts`, run in a vm context with a timeout: V8 interrupts a
 * backtracking regex there, so a catastrophic pattern (`(x|x)*y`) cannot hang verify.
 */
function matchesAnyBounded(
  pattern: string,
  texts: readonly string[],
  timeoutMs: number,
): boolean | "timeout" {
  const context = createContext({ pattern, texts });
  try {
    return runInContext("{ const re = new RegExp(pattern); texts.some((t) => re.test(t)); }", context, {
      timeout: timeoutMs,
    }) as boolean;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_SCRIPT_EXECUTION_TIMEOUT") return "timeout";
    throw e;
  }
}

/** The misc device netmap registers (/dev/netmap, /proc/misc), whatever its module's name. */
export const NETMAP_MISC_DEVICE = "netmap";

/** A device number's minor as Linux encodes it in st_rdev (new_encode_dev). */
export const rdevMinor = (rdev: number): number => (rdev & 0xff) | ((rdev >> 12) & 0xfff00);

/** The NICs (those with a device link) and the module of the driver bound to each. */
export function boundInterfaces(
  root: string,
): Array<{ ifname: string; driver: string | null; module: string | null }> {
  return listHostDir(root, "/sys/class/net")
    .filter((ifname) => ifname !== "lo" && readHostLink(root, `/sys/class/net/${ifname}/device`) !== null)
    .map((ifname) => {
      const drv = readHostLink(root, `/sys/class/net/${ifname}/device/driver`);
      const mod = drv ? readHostLink(root, `/sys/class/net/${ifname}/device/driver/module`) : null;
      return {
        ifname,
        driver: drv ? posix.basename(drv) : null,
        module: mod ? posix.basename(mod).replaceAll("-", "_") : drv ? posix.basename(drv) : null,
      };
    });
}

/**
 * Verify a netmap load with evidence: the kernel's own lines since the cursor (mknod returned 0,
 * "netmap: loaded module", each of the recipe's dmesg.expect patterns), /dev/netmap's minor equal to the one /proc/misc registered, each
 * patched driver depending on netmap in /proc/modules, each interface in the mode the recipe
 * expects, and pkt-gen moving packets. Read-only; every failure is one sentence in `failures`.
 */
export async function verifyLoad(o: VerifyOptions): Promise<VerifyReport> {
  const failures: string[] = [];
  const since = linesAfter(await readDmesg(o.exec), o.cursor);
  const ev = netmapEvents(since);
  if (!ev.mknod) failures.push("dmesg since the load has no `run mknod /dev/netmap ...` line");
  else if (ev.mknod.err !== 0) failures.push(`netmap's mknod of /dev/netmap returned ${ev.mknod.err}`);
  if (!ev.loaded) failures.push("dmesg since the load has no `netmap: loaded module` line");
  for (const e of ev.errors) failures.push(`kernel: ${e.text} (${e.hint})`);
  failures.push(...dmesgExpectFailures(since, o.dmesgExpect ?? []));

  // The misc device is "netmap" whatever the module is called (netmap_lin.ko registers it too).
  const misc = parseProcMisc(readHostText(o.root, "/proc/misc") ?? "").get(NETMAP_MISC_DEVICE) ?? null;
  let minor: number | null = null;
  try {
    const st = statSync(underRoot(o.root, "/dev/netmap"));
    if (st.isCharacterDevice()) minor = rdevMinor(st.rdev);
  } catch {
    // absent: reported below
  }
  if (minor === null) failures.push("/dev/netmap does not exist (or is not a character device)");
  if (misc === null) failures.push(`/proc/misc does not list ${NETMAP_MISC_DEVICE}`);
  if (minor !== null && misc !== null && minor !== misc)
    failures.push(`/dev/netmap has minor ${minor} but /proc/misc registered ${misc}: a stale device node`);

  const loaded = parseProcModules(readHostText(o.root, "/proc/modules") ?? "");
  const netmap = loaded.find((m) => m.name === o.netmapModule);
  if (!netmap) failures.push(`${o.netmapModule} is not in /proc/modules`);
  const modules = o.drivers
    .filter((d) => d.mode === "native")
    .map((d) => {
      const deps = loaded.filter((m) => m.deps.includes(d.module)).map((m) => m.name);
      const dependsOnNetmap = deps.includes(o.netmapModule);
      if (!loaded.some((m) => m.name === d.module)) failures.push(`${d.module} is not loaded`);
      else if (!dependsOnNetmap)
        failures.push(
          `${d.module} does not depend on ${o.netmapModule}: the stock driver is loaded, not the patched one`,
        );
      return { name: d.module, deps, dependsOnNetmap };
    });

  const attached = new Set(ev.native.map((n) => n.ifname));
  const interfaces: VerifyReport["interfaces"] = [];
  for (const nic of boundInterfaces(o.root)) {
    const d = o.drivers.find((x) => x.module === nic.module);
    if (!d) continue;
    const patched = netmap?.deps.includes(d.module) ?? false;
    const mode: "native" | "emulated" | "none" = !netmap
      ? "none"
      : patched && attached.has(nic.ifname)
        ? "native"
        : "emulated";
    interfaces.push({ ifname: nic.ifname, driver: nic.driver, mode, expected: d.mode });
    if (mode !== d.mode)
      failures.push(
        `${nic.ifname} (${nic.driver}) runs netmap in ${mode} mode, the recipe expects ${d.mode}${
          d.mode === "native" && patched && !attached.has(nic.ifname)
            ? ": the patched driver is loaded but printed no `netmap queues/slots` line for it"
            : ""
        }`,
      );
  }

  let pktgen: VerifyReport["pktgen"] = null;
  if (o.pktgen && failures.length === 0) {
    const { path, ...spec } = o.pktgen;
    const smoke = await pktgenSmoke({
      ...spec,
      exec: o.exec,
      root: o.root,
      pktgen: path,
      ...(o.pktgenTiming ? { timing: o.pktgenTiming } : {}),
    });
    pktgen = smoke.pktgen;
    failures.push(...smoke.failures);
  }

  return {
    ok: failures.length === 0,
    failures,
    devNetmap: { present: minor !== null, minor, miscMinor: misc },
    dmesg: {
      mknod: ev.mknod ?? null,
      loaded: ev.loaded,
      excerpt: since.map((l) => (l.ts === null ? l.text : `[${l.ts.toFixed(6)}] ${l.text}`)),
      errors: ev.errors.map((e) => ({ ...e })),
    },
    modules,
    interfaces,
    pktgen,
  };
}
