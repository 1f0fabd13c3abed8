import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import test from "ava";
import {
  normaliseIpv6,
  parseProcNetRoute,
  procHexToIpv4,
  procHexToIpv6,
  readManagementFacts,
  readRouteTable,
  sshConnectionServerAddress,
  sshSocketAddresses,
} from "../../toolkit/host/management.js";
import { copyHostTree, hostTree } from "../helpers/hosts.js";

test("debian12-e1000: the default route is on eth0, no SSH session", (t) => {
  t.deepEqual(readManagementFacts(hostTree("debian12-e1000"), {}), {
    defaultRouteIf: "eth0",
    sshIf: null,
    sshIfs: [],
    sshAddresses: [],
    sshSource: null,
    managementIfs: ["eth0"],
    problem: null,
  });
});

test("mgmt-on-swapped-driver: without SSH_CONNECTION (sudo) the session is found in /proc/net/tcp", (t) => {
  const m = readManagementFacts(hostTree("mgmt-on-swapped-driver"), {});
  t.is(m.sshSource, "proc-net-tcp");
  t.deepEqual(m.sshAddresses, ["192.0.2.10"]);
  t.is(m.sshIf, "eth0");
  t.deepEqual(m.managementIfs, ["eth0"]);
});

test("SSH_CONNECTION wins and maps its server address to the connected route's interface", (t) => {
  const m = readManagementFacts(hostTree("mgmt-on-swapped-driver"), {
    SSH_CONNECTION: "203.0.113.5 50000 198.51.100.7 22",
  });
  t.is(m.sshSource, "SSH_CONNECTION");
  t.is(m.sshIf, "eth1");
  t.deepEqual(m.managementIfs, ["eth0", "eth1"]);
});

test("an IPv6 SSH session maps through /proc/net/if_inet6", (t) => {
  const m = readManagementFacts(hostTree("mgmt-on-swapped-driver"), {
    SSH_CONNECTION: "2001:db8::99 50000 2001:db8::10 22",
  });
  t.is(m.sshIf, "eth1");
});

test("an address on no interface leaves sshIf null but keeps the address", (t) => {
  const m = readManagementFacts(hostTree("debian12-e1000"), { SSH_CONNECTION: "10.9.9.9 1 10.8.8.8 22" });
  t.is(m.sshIf, null);
  t.deepEqual(m.sshAddresses, ["10.8.8.8"]);
});

test("hex conversions follow /proc's host byte order", (t) => {
  t.is(procHexToIpv4("010200C0"), "192.0.2.1");
  t.is(procHexToIpv6("B80D0120000000000000000010000000"), "2001:db8:0:0:0:0:0:10");
  t.is(normaliseIpv6("2001:DB8::10"), "2001:db8:0:0:0:0:0:10");
  t.is(normaliseIpv6("::1"), "0:0:0:0:0:0:0:1");
});

test("SSH_CONNECTION parsing, including IPv4-mapped addresses", (t) => {
  t.is(sshConnectionServerAddress("1.2.3.4 5 6.7.8.9 22"), "6.7.8.9");
  t.is(sshConnectionServerAddress("::ffff:1.2.3.4 5 ::ffff:6.7.8.9 22"), "6.7.8.9");
  t.is(sshConnectionServerAddress(""), null);
  t.is(sshConnectionServerAddress(undefined), null);
});

test("only ESTABLISHED sockets on an sshd port count", (t) => {
  const tcp = [
    "  sl  local_address rem_address   st",
    "   0: 0A0200C0:0016 6F0200C0:D431 0A 0",
    "   1: 0A0200C0:0050 6F0200C0:D431 01 0",
    "   2: 0B0200C0:08AE 6F0200C0:D431 01 0",
  ].join("\n");
  t.deepEqual(sshSocketAddresses(tcp, null, [22]), []);
  t.deepEqual(sshSocketAddresses(tcp, null, [2222]), ["192.0.2.11"]);
  const tcp6 = "hdr\n   0: 0000000000000000FFFF00000A0200C0:0016 0000000000000000FFFF00006F0200C0:D431 01 0";
  t.deepEqual(sshSocketAddresses(null, tcp6, [22]), ["192.0.2.10"]);
});

test("the default route with the lowest metric wins", (t) => {
  const routes = parseProcNetRoute(
    "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nwlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\neth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\n",
  );
  t.is(routes.length, 2);
  t.is(routes.sort((a, b) => a.metric - b.metric)[0]?.ifname, "eth0");
});

const HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";

test('a route table that is not one is a problem, never "no default route"', (t) => {
  const good = `${HEADER}\neth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n`;
  t.is(readRouteTable(good).problem, null);
  t.is(readRouteTable(`${HEADER}\n`).problem, null, "no IPv4 route at all is a real answer");
  t.regex(readRouteTable(null).problem ?? "", /cannot be read/);
  t.regex(readRouteTable("").problem ?? "", /does not start with the kernel's header/);
  t.regex(readRouteTable("garbage\nmore garbage\n").problem ?? "", /header/);
  t.regex(readRouteTable(`${HEADER}\neth0 zz\n`).problem ?? "", /line 2 is not a route \(2 fields/);
  const bad = readRouteTable(`${HEADER}\neth0\tXXXXXXXX\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n`);
  t.regex(bad.problem ?? "", /8 hex digits/);
  t.deepEqual(bad.routes, []);
  // What the problem quotes from the file is shown escaped.
  t.false((readRouteTable(`${HEADER}\n\u001b]0;x\u0007 1\n`).problem ?? "").includes("\u001b"));
});

test("a garbage /proc/net/route: every NIC counts as the management link, and the problem says so", (t) => {
  const root = copyHostTree("debian12-e1000");
  t.teardown(() => rmSync(dirname(root), { recursive: true, force: true }));
  writeFileSync(join(root, "proc/net/route"), "\u0000\u0001 not a route table\n");
  const m = readManagementFacts(root, {});
  t.regex(m.problem ?? "", /^cannot tell which NIC carries the management link: \/proc\/net\/route/);
  t.is(m.defaultRouteIf, null);
  t.deepEqual(m.managementIfs, ["eth0"]);
  rmSync(join(root, "proc/net/route"));
  t.regex(readManagementFacts(root, {}).problem ?? "", /cannot be read/);
});

test("interface names from /proc are escaped as nics.ts escapes them, so the two still match", (t) => {
  const esc = "eth\u001b]0;pwned\u0007";
  const routes = parseProcNetRoute(
    `${HEADER}\n${esc}\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n`,
  );
  t.is(routes[0]?.ifname, "eth\\x1b]0;pwned\\x07");
});
