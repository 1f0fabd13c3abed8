import { setTimeout as sleep } from "node:timers/promises";
import { TimeoutError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { hostExists } from "../host/host-fs.js";

/**
 * An interface's configuration as `ip -j` shows it, kept across a driver swap: unloading the
 * driver destroys the netdev with its addresses and routes, so they must be put back by hand.
 */
export interface InterfaceState {
  ifname: string;
  up: boolean;
  mtu: number | null;
  promisc: boolean;
  /** Addresses set by hand or DHCP ("10.0.2.15/24", "2001:db8::1/64"); link-local IPv6 comes back by itself. */
  addresses: Array<{ family: "inet" | "inet6"; local: string; prefixlen: number }>;
  /** Default routes through this interface. */
  defaultRoutes: Array<{ family: "inet" | "inet6"; gateway: string | null; metric: number | null }>;
}

interface IpAddrJson {
  ifname?: string;
  flags?: string[];
  mtu?: number;
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number; scope?: string }>;
}
interface IpRouteJson {
  dst?: string;
  gateway?: string;
  dev?: string;
  metric?: number;
}

/** Parse `ip -j addr show dev X` and `ip -j route show default` (both families) into one state. */
export function parseInterfaceState(
  ifname: string,
  addrJson: string,
  routes4Json: string,
  routes6Json: string,
): InterfaceState {
  const addr = (JSON.parse(addrJson || "[]") as IpAddrJson[]).find((a) => a.ifname === ifname);
  const flags = addr?.flags ?? [];
  const routes = (text: string, family: "inet" | "inet6") =>
    (JSON.parse(text || "[]") as IpRouteJson[])
      .filter((r) => r.dev === ifname && (r.dst === "default" || r.dst === undefined))
      .map((r) => ({ family, gateway: r.gateway ?? null, metric: r.metric ?? null }));
  return {
    ifname,
    up: flags.includes("UP"),
    mtu: addr?.mtu ?? null,
    promisc: flags.includes("PROMISC"),
    addresses: (addr?.addr_info ?? [])
      .filter((a) => (a.family === "inet" || a.family === "inet6") && a.local && a.scope !== "link")
      .map((a) => ({
        family: a.family as "inet" | "inet6",
        local: a.local ?? "",
        prefixlen: a.prefixlen ?? (a.family === "inet" ? 32 : 128),
      })),
    defaultRoutes: [...routes(routes4Json, "inet"), ...routes(routes6Json, "inet6")],
  };
}

const IP_TIMEOUT_MS = 10_000;

/** The read-only argvs recordInterfaceState runs (one place each: the run and `down --plan`). */
export const defaultRoutesArgv = (family: "inet" | "inet6"): string[] => [
  "ip",
  "-j",
  family === "inet6" ? "-6" : "-4",
  "route",
  "show",
  "default",
];
export const addrShowArgv = (ifname: string): string[] => ["ip", "-j", "addr", "show", "dev", ifname];

/** What recordInterfaceState runs for `ifnames`, in order (nothing when there are none). */
export function recordInterfaceArgvs(ifnames: readonly string[]): string[][] {
  if (ifnames.length === 0) return [];
  return [defaultRoutesArgv("inet"), defaultRoutesArgv("inet6"), ...ifnames.map(addrShowArgv)];
}

/** Record the state of each interface that exists now (read-only `ip -j` calls). */
export async function recordInterfaceState(
  exec: Exec,
  ifnames: readonly string[],
): Promise<InterfaceState[]> {
  const out: InterfaceState[] = [];
  if (ifnames.length === 0) return out;
  const run = async (argv: string[]) => (await exec.run(argv, { timeoutMs: IP_TIMEOUT_MS })).stdout;
  const r4 = await run(defaultRoutesArgv("inet"));
  const r6 = await run(defaultRoutesArgv("inet6"));
  for (const ifname of ifnames) {
    const a = await exec.run(addrShowArgv(ifname), {
      timeoutMs: IP_TIMEOUT_MS,
      reject: false,
    });
    if (a.exitCode !== 0) continue; // gone already (no driver bound): nothing to record
    out.push(parseInterfaceState(ifname, a.stdout, r4, r6));
  }
  return out;
}

/** Wait until the driver has registered `ifname` again (modprobe returns before udev settles). */
export async function waitForInterface(root: string, ifname: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!hostExists(root, `/sys/class/net/${ifname}`)) {
    if (Date.now() > deadline)
      throw new TimeoutError(
        `${ifname} did not come back within ${timeoutMs / 1000} s after loading its driver`,
        "check `ip link` and dmesg: the driver may have failed to probe the device, or udev renamed it",
      );
    await sleep(100);
  }
}

/** The argv list that puts a recorded state back (pure, so it can be shown and tested). */
export function restoreArgvs(s: InterfaceState): string[][] {
  const out: string[][] = [];
  if (s.mtu !== null) out.push(["ip", "link", "set", "dev", s.ifname, "mtu", String(s.mtu)]);
  if (s.promisc) out.push(["ip", "link", "set", "dev", s.ifname, "promisc", "on"]);
  for (const a of s.addresses)
    out.push(["ip", "addr", "replace", `${a.local}/${a.prefixlen}`, "dev", s.ifname]);
  if (s.up) out.push(["ip", "link", "set", "dev", s.ifname, "up"]);
  if (s.up)
    for (const r of s.defaultRoutes) {
      const argv = ["ip", r.family === "inet6" ? "-6" : "-4", "route", "replace", "default"];
      if (r.gateway) argv.push("via", r.gateway);
      argv.push("dev", s.ifname);
      if (r.metric !== null) argv.push("metric", String(r.metric));
      out.push(argv);
    }
  return out;
}

/**
 * Bring each interface back as it was, once its driver registered it again. Keeps going past a
 * failed command (the others are independent) and returns what failed, for the report.
 */
export async function restoreInterfaceState(
  exec: Exec,
  root: string,
  states: readonly InterfaceState[],
): Promise<string[]> {
  const failures: string[] = [];
  for (const s of states) {
    try {
      await waitForInterface(root, s.ifname);
    } catch (err) {
      failures.push((err as Error).message);
      continue;
    }
    for (const argv of restoreArgvs(s)) {
      const r = await exec.run(argv, { mutates: true, timeoutMs: IP_TIMEOUT_MS, reject: false });
      if (r.exitCode !== 0) failures.push(`\`${argv.join(" ")}\` failed: ${r.stderr.trim()}`);
    }
  }
  return failures;
}
