import { endianness } from "node:os";
import { escapeControl } from "../core/terminal-text.js";
import { listHostDir, readHostText } from "./host-fs.js";

/**
 * Which interfaces carry the host's management traffic: the default route and the SSH session
 * this command runs in. Unloading their driver cuts the operator off (field notes #6), so `up`
 * refuses to swap them unless told. Read from /proc only: no `ip`/`ss` process is spawned.
 */
export interface ManagementFacts {
  /** Interface of the lowest-metric IPv4 default route, else the IPv6 one. */
  defaultRouteIf: string | null;
  /** The first interface carrying an SSH session (see sshSource). */
  sshIf: string | null;
  /** Every interface carrying an SSH session to this host. */
  sshIfs: string[];
  /** Local address of the SSH session(s) found. */
  sshAddresses: string[];
  /** Where the SSH session was found: the SSH_CONNECTION variable, or established sockets on the sshd port. */
  sshSource: "SSH_CONNECTION" | "proc-net-tcp" | null;
  /**
   * Union of the above: interfaces whose driver must not be unloaded casually. When the route
   * table cannot be read (see problem), every interface: none can be ruled out.
   */
  managementIfs: string[];
  /** "cannot tell which NIC carries the management link: ..." when /proc/net/route is unusable. */
  problem: string | null;
}

interface Ipv4Route {
  ifname: string;
  dest: number;
  mask: number;
  gateway: number;
  flags: number;
  metric: number;
}

const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;
const littleEndian = endianness() === "LE";

/** A 32-bit word as /proc prints it (%08X of the in-memory value) -> its 4 bytes in network order. */
function procWordBytes(hex: string): number[] {
  const n = Number.parseInt(hex, 16) >>> 0;
  const be = [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  return littleEndian ? be.reverse() : be;
}

/** Dotted IPv4 from /proc/net/route or /proc/net/tcp hex. */
export function procHexToIpv4(hex: string): string {
  return procWordBytes(hex).join(".");
}

/** IPv6 from /proc/net/tcp6 (four host-order words). */
export function procHexToIpv6(hex: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < 32; i += 8) bytes.push(...procWordBytes(hex.slice(i, i + 8)));
  return bytesToIpv6(bytes);
}

/** IPv6 from /proc/net/if_inet6 (plain 32 hex digits in network order). */
function plainHexToIpv6(hex: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < 32; i += 2) bytes.push(Number.parseInt(hex.slice(i, i + 2), 16));
  return bytesToIpv6(bytes);
}

function bytesToIpv6(bytes: number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return normaliseIpv6(groups.join(":"));
}

/** Full 8-group lowercase form without leading zeros, so addresses compare as strings. */
export function normaliseIpv6(addr: string): string {
  const [head = "", tail] = addr.toLowerCase().split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail ? tail.split(":") : [];
  const fill = tail !== undefined ? Array(8 - h.length - t.length).fill("0") : [];
  return [...h, ...fill, ...t].map((g) => Number.parseInt(g || "0", 16).toString(16)).join(":");
}

const ipv4ToInt = (a: string): number => a.split(".").reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);

const HEX8 = /^[0-9A-Fa-f]{8}$/;

/** Why a /proc/net/route line is not a route, or undefined when it is one. */
function routeLineProblem(f: string[]): string | undefined {
  if (f.length < 8) return `${f.length} fields, a route has 11`;
  if (!HEX8.test(f[1] as string) || !HEX8.test(f[2] as string) || !HEX8.test(f[7] as string))
    return "destination, gateway and mask are not 8 hex digits";
  if (!/^[0-9A-Fa-f]{1,4}$/.test(f[3] as string)) return "flags are not hex";
  if (!/^\d+$/.test(f[6] as string)) return "the metric is not a number";
  return undefined;
}

/**
 * Parse /proc/net/route, checking it is one: the kernel's header, then 11 fields per route. A
 * table that is not (a damaged or forged host tree) must not read as "no default route", which
 * would let `up` unload the driver under the management link: `problem` says what is wrong.
 */
export function readRouteTable(text: string | null): { routes: Ipv4Route[]; problem: string | null } {
  if (text === null) return { routes: [], problem: "/proc/net/route cannot be read" };
  const lines = text.split("\n");
  if (!/^Iface\s+Destination\s+Gateway\s/.test(lines[0] ?? ""))
    return {
      routes: [],
      problem: "/proc/net/route does not start with the kernel's header (Iface Destination Gateway ...)",
    };
  for (const [n, line] of lines.entries()) {
    if (n === 0 || !line.trim()) continue;
    const why = routeLineProblem(line.trim().split(/\s+/));
    if (why) {
      const shown = escapeControl(line.length > 80 ? `${line.slice(0, 80)}...` : line);
      return { routes: [], problem: `/proc/net/route line ${n + 1} is not a route (${why}): "${shown}"` };
    }
  }
  return { routes: parseProcNetRoute(text), problem: null };
}

/** Parse /proc/net/route (lines that are not routes are skipped; readRouteTable checks them). */
export function parseProcNetRoute(text: string): Ipv4Route[] {
  const routes: Ipv4Route[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !f[0] || routeLineProblem(f)) continue;
    routes.push({
      // Escaped as nics.ts reports interface names, so the two compare equal.
      ifname: escapeControl(f[0]),
      dest: ipv4ToInt(procHexToIpv4(f[1] as string)),
      gateway: ipv4ToInt(procHexToIpv4(f[2] as string)),
      flags: Number.parseInt(f[3] as string, 16),
      metric: Number(f[6]),
      mask: ipv4ToInt(procHexToIpv4(f[7] as string)),
    });
  }
  return routes;
}

/** The interface of the best IPv4 default route (Destination 00000000, Mask 00000000). */
export function defaultRouteInterface(routes: Ipv4Route[]): string | null {
  const defaults = routes
    .filter((r) => r.dest === 0 && r.mask === 0 && r.flags & RTF_UP)
    .sort((a, b) => a.metric - b.metric);
  return defaults[0]?.ifname ?? null;
}

/** The interface of an IPv6 default route in /proc/net/ipv6_route (::/0, not via lo). */
function ipv6DefaultRouteInterface(text: string | null): string | null {
  if (!text) return null;
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const ifname = escapeControl(f[9] as string);
    if (/^0{32}$/.test(f[0] as string) && f[1] === "00" && ifname !== "lo") return ifname;
  }
  return null;
}

/**
 * The interface owning a local IPv4 address: the most specific directly connected route
 * (no gateway) that contains it. /proc has no address->interface table for IPv4 (fib_trie
 * names addresses but not devices), and the connected route is what the kernel itself uses.
 */
export function ipv4Interface(routes: Ipv4Route[], address: string): string | null {
  const a = ipv4ToInt(address);
  const connected = routes
    .filter(
      (r) => !(r.flags & RTF_GATEWAY) && r.flags & RTF_UP && r.mask !== 0 && (a & r.mask) >>> 0 === r.dest,
    )
    .sort((x, y) => y.mask - x.mask || x.metric - y.metric);
  return connected[0]?.ifname ?? null;
}

/** The interface owning a local IPv6 address, from /proc/net/if_inet6. */
export function ipv6Interface(ifInet6: string | null, address: string): string | null {
  if (!ifInet6) return null;
  const want = normaliseIpv6(address.split("%")[0] as string);
  for (const line of ifInet6.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 6 && plainHexToIpv6(f[0] as string) === want) return escapeControl(f[5] as string);
  }
  return null;
}

/** sshd's listening ports from sshd_config ("Port N" lines), default 22. */
function sshdPorts(root: string): number[] {
  const cfg = readHostText(root, "/etc/ssh/sshd_config") ?? "";
  const ports = [...cfg.matchAll(/^\s*Port\s+(\d+)/gim)].map((m) => Number(m[1]));
  return ports.length ? ports : [22];
}

/** Local addresses of ESTABLISHED sockets whose local port is an sshd port, from /proc/net/tcp{,6}. */
export function sshSocketAddresses(tcp: string | null, tcp6: string | null, ports: number[]): string[] {
  const out: string[] = [];
  const scan = (text: string | null, v6: boolean) => {
    for (const line of (text ?? "").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      const [addrHex, portHex] = (f[1] ?? "").split(":");
      if (!addrHex || !portHex || f[3] !== "01") continue;
      if (!ports.includes(Number.parseInt(portHex, 16))) continue;
      let addr = v6 ? procHexToIpv6(addrHex) : procHexToIpv4(addrHex);
      if (v6 && addr.startsWith("0:0:0:0:0:ffff:")) addr = ipv4FromMapped(addr);
      if (!out.includes(addr)) out.push(addr);
    }
  };
  scan(tcp, false);
  scan(tcp6, true);
  return out;
}

function ipv4FromMapped(v6: string): string {
  const g = v6.split(":");
  const hi = Number.parseInt(g[6] ?? "0", 16);
  const lo = Number.parseInt(g[7] ?? "0", 16);
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join(".");
}

/** The server address in SSH_CONNECTION ("client_ip client_port server_ip server_port"). */
export function sshConnectionServerAddress(value: string | undefined): string | null {
  const f = value?.trim().split(/\s+/);
  if (!f || f.length < 4) return null;
  const addr = f[2] as string;
  return addr.toLowerCase().startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

export function readManagementFacts(root: string, env: Record<string, string | undefined>): ManagementFacts {
  const table = readRouteTable(readHostText(root, "/proc/net/route"));
  const routes = table.routes;
  const ifInet6 = readHostText(root, "/proc/net/if_inet6");
  const defaultRouteIf =
    defaultRouteInterface(routes) ?? ipv6DefaultRouteInterface(readHostText(root, "/proc/net/ipv6_route"));

  let sshSource: ManagementFacts["sshSource"] = null;
  let sshAddresses: string[] = [];
  const fromEnv = sshConnectionServerAddress(env.SSH_CONNECTION);
  if (fromEnv) {
    sshSource = "SSH_CONNECTION";
    sshAddresses = [fromEnv];
  } else {
    // sudo drops SSH_CONNECTION; the session's socket is still visible in /proc/net/tcp.
    sshAddresses = sshSocketAddresses(
      readHostText(root, "/proc/net/tcp"),
      readHostText(root, "/proc/net/tcp6"),
      sshdPorts(root),
    );
    if (sshAddresses.length) sshSource = "proc-net-tcp";
  }
  const sshIfs: string[] = [];
  for (const addr of sshAddresses) {
    const ifname = addr.includes(":") ? ipv6Interface(ifInet6, addr) : ipv4Interface(routes, addr);
    if (ifname && ifname !== "lo" && !sshIfs.includes(ifname)) sshIfs.push(ifname);
  }
  const found = [defaultRouteIf, ...sshIfs].filter((x): x is string => x !== null);
  // Unknown routes: any interface may carry the link, so the guard judges them all.
  const all = table.problem
    ? listHostDir(root, "/sys/class/net")
        .filter((i) => i !== "lo")
        .map(escapeControl)
    : [];
  const managementIfs = [...new Set([...found, ...all])];
  const problem = table.problem && `cannot tell which NIC carries the management link: ${table.problem}`;
  return {
    defaultRouteIf,
    sshIf: sshIfs[0] ?? null,
    sshIfs,
    sshAddresses,
    sshSource,
    managementIfs,
    problem,
  };
}
