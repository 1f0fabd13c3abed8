import test from "ava";
import { parseInterfaceState, restoreArgvs } from "../../toolkit/swap/iface-state.js";

// `ip -j` output as iproute2 6.1 prints it (an e1000 NIC with IPv4, a global and a link-local IPv6).
const addr = JSON.stringify([
  {
    ifindex: 2,
    ifname: "eth0",
    flags: ["BROADCAST", "MULTICAST", "PROMISC", "UP", "LOWER_UP"],
    mtu: 9000,
    operstate: "UP",
    addr_info: [
      { family: "inet", local: "10.0.2.15", prefixlen: 24, broadcast: "10.0.2.255", scope: "global" },
      { family: "inet6", local: "fd00::15", prefixlen: 64, scope: "global" },
      { family: "inet6", local: "fe80::5054:ff:fe12:3456", prefixlen: 64, scope: "link" },
    ],
  },
]);
const r4 =
  '[{"dst":"default","gateway":"10.0.2.2","dev":"eth0","flags":[]},{"dst":"default","gateway":"192.0.2.1","dev":"eth1","metric":100,"flags":[]}]';
const r6 = '[{"dst":"default","gateway":"fd00::1","dev":"eth0","metric":1024,"flags":[],"pref":"medium"}]';

test("an interface's state is read from ip -j: flags, MTU, global addresses, its own default routes", (t) => {
  const s = parseInterfaceState("eth0", addr, r4, r6);
  t.deepEqual(s, {
    ifname: "eth0",
    up: true,
    mtu: 9000,
    promisc: true,
    addresses: [
      { family: "inet", local: "10.0.2.15", prefixlen: 24 },
      { family: "inet6", local: "fd00::15", prefixlen: 64 },
    ],
    defaultRoutes: [
      { family: "inet", gateway: "10.0.2.2", metric: null },
      { family: "inet6", gateway: "fd00::1", metric: 1024 },
    ],
  });
});

test("restoring runs MTU, promisc, addresses, link up, then the routes (which need the link up)", (t) => {
  const argvs = restoreArgvs(parseInterfaceState("eth0", addr, r4, r6)).map((a) => a.join(" "));
  t.deepEqual(argvs, [
    "ip link set dev eth0 mtu 9000",
    "ip link set dev eth0 promisc on",
    "ip addr replace 10.0.2.15/24 dev eth0",
    "ip addr replace fd00::15/64 dev eth0",
    "ip link set dev eth0 up",
    "ip -4 route replace default via 10.0.2.2 dev eth0",
    "ip -6 route replace default via fd00::1 dev eth0 metric 1024",
  ]);
});

test("a down interface gets its addresses back but stays down, without routes", (t) => {
  const down = addr.replace('"UP",', "");
  const argvs = restoreArgvs(parseInterfaceState("eth0", down, r4, r6)).map((a) => a.join(" "));
  t.false(argvs.some((a) => a.includes(" up") || a.includes("route")));
  t.true(argvs.includes("ip addr replace 10.0.2.15/24 dev eth0"));
});

test("an interface missing from ip's answer records as down with nothing to restore but the link", (t) => {
  const s = parseInterfaceState("eth7", addr, r4, r6);
  t.false(s.up);
  t.deepEqual(s.addresses, []);
  t.deepEqual(s.defaultRoutes, []);
  t.deepEqual(restoreArgvs(s), []);
});
