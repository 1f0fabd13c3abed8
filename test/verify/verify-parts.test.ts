import { readFileSync } from "node:fs";
import test from "ava";
import { parseDmesg } from "../../toolkit/parse/dmesg.js";
import { linesAfter } from "../../toolkit/verify/dmesg-cursor.js";
import { rdevMinor } from "../../toolkit/verify/verify.js";
import { fixture } from "../helpers/paths.js";

test("the dmesg cursor keeps only lines printed after it, so an earlier load is no evidence", (t) => {
  const lines = parseDmesg(`[    4.100000] netmap: loaded module
[    4.636868] e1000 0000:00:03.0 eth0: (PCI:33MHz:32-bit) 52:54:00:12:34:56
[    9.000001] netmap: run mknod /dev/netmap c 10 124 # returned 0
[    9.000002] netmap: loaded module
[    9.100000] net eth0: netmap queues/slots: TX 1/256, RX 1/256`);
  const after = linesAfter(lines, { ts: 4.636868 });
  t.deepEqual(
    after.map((l) => l.ts),
    [9.000001, 9.000002, 9.1],
  );
  t.is(linesAfter(lines, { ts: null }).length, 5);
});

test("the cursor works on the captured guest log: the reload's lines come after the first load", (t) => {
  const text = readFileSync(fixture("captures", "guest-swap-verify-rollback-6.1.192.log"), "utf8");
  const lines = parseDmesg(text).filter((l) => l.ts !== null);
  t.true(lines.length > 0);
  const mid = lines[Math.floor(lines.length / 2)]?.ts ?? 0;
  t.true(linesAfter(lines, { ts: mid }).every((l) => (l.ts ?? 0) > mid));
});

test("st_rdev minors decode as the kernel encodes them (small and large minors)", (t) => {
  t.is(rdevMinor((10 << 8) | 124), 124); // c 10 124, old-style encoding
  t.is(rdevMinor((10 << 8) | 0x34 | (0x1200 << 12)), 0x1234); // minor above 255
});
