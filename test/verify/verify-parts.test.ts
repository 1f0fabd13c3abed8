import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { createExec } from "../../toolkit/core/exec.js";
import { parseDmesg } from "../../toolkit/parse/dmesg.js";
import { loadRecipe } from "../../toolkit/recipe/load.js";
import { DEFAULT_DMESG_EXPECT } from "../../toolkit/recipe/schema.js";
import { linesAfter } from "../../toolkit/verify/dmesg-cursor.js";
import { dmesgExpectFailures, rdevMinor, verifyLoad } from "../../toolkit/verify/verify.js";
import { hostTree, legacyNetmapHost } from "../helpers/hosts.js";
import { fixture, repoRoot } from "../helpers/paths.js";

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

const capture = fixture("captures", "guest-swap-verify-rollback-6.1.192.log");

test("verify.dmesg.expect: a pattern no line since the load matches fails, naming the pattern", (t) => {
  const lines = parseDmesg(readFileSync(capture, "utf8"));
  t.deepEqual(dmesgExpectFailures(lines, ["net eth0: netmap queues/slots: TX \\d+/\\d+"]), []);
  t.deepEqual(dmesgExpectFailures(lines, ["ixgbe .*: netmap queues/slots"]), [
    "dmesg since the load has no line matching /ixgbe .*: netmap queues/slots/ (the recipe's verify.dmesg.expect)",
  ]);
  // Only lines after the cursor count: the first load's lines are no evidence for the second.
  const after = linesAfter(lines, { ts: 5.603659 });
  t.is(dmesgExpectFailures(after, ["net eth0: netmap queues/slots"]).length, 1);
  // The defaults restate verify's own mknod / "loaded module" checks: not reported twice.
  t.deepEqual(dmesgExpectFailures([], DEFAULT_DMESG_EXPECT), []);
});

test("verify.dmesg.expect: a catastrophic pattern is stopped at its time bound and named, not run for ever", (t) => {
  // (x|x)*y backtracks 2^n times on a line of n x's with no y: hours at n = 60 without a bound.
  const lines = [{ ts: 1, text: `netmap: ${"x".repeat(60)}` }];
  const started = Date.now();
  const failures = dmesgExpectFailures(lines, ["(x|x)*y", "netmap: x+$"], 300);
  t.true(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  t.deepEqual(failures, [
    "dmesg pattern /(x|x)*y/ (the recipe's verify.dmesg.expect) took over 300 ms to match and was stopped: write it without nested or overlapping repeats",
  ]);
});

test("verifyLoad uses the recipe's dmesg.expect (the kernel log of the captured guest run)", async (t) => {
  // A stand-in `dmesg` that prints the captured guest log; the host tree is netmap-loaded's.
  const bin = mkdtempSync(join(tmpdir(), "np-dmesg-"));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  writeFileSync(join(bin, "dmesg"), `#!/bin/sh\nexec cat '${capture}'\n`);
  chmodSync(join(bin, "dmesg"), 0o755);
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  t.teardown(() => {
    process.env.PATH = path;
  });
  const base = {
    exec: createExec(),
    root: hostTree("netmap-loaded"),
    cursor: { ts: null },
    netmapModule: "netmap",
    drivers: [{ module: "e1000", mode: "native" as const }],
  };
  const missing = "igb .*: netmap queues/slots";
  const r = await verifyLoad({
    ...base,
    dmesgExpect: [...DEFAULT_DMESG_EXPECT, "netmap queues/slots", missing],
  });
  t.false(r.ok);
  t.true(
    r.failures.includes(
      `dmesg since the load has no line matching /${missing}/ (the recipe's verify.dmesg.expect)`,
    ),
  );
  t.false(
    r.failures.some((f) => f.includes("/netmap queues/slots/")),
    r.failures.join("\n"),
  );
  t.true(r.dmesg.loaded);
  const without = await verifyLoad(base);
  t.false(without.failures.some((f) => f.includes("verify.dmesg.expect")));
});

/** A stand-in `dmesg` printing `text`, first on PATH until the test ends. */
function fakeDmesg(t: { teardown(fn: () => void): void }, text: string): void {
  const bin = mkdtempSync(join(tmpdir(), "np-dmesg-"));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  writeFileSync(join(bin, "dmesg.txt"), text);
  writeFileSync(join(bin, "dmesg"), `#!/bin/sh\nexec cat '${join(bin, "dmesg.txt")}'\n`);
  chmodSync(join(bin, "dmesg"), 0o755);
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  t.teardown(() => {
    process.env.PATH = path;
  });
}

test.serial(
  "the seed's netmap_lin: /proc/misc still says netmap, the 2012 `# error 0` passes the seed's dmesg.expect",
  async (t) => {
    const root = legacyNetmapHost();
    t.teardown(() => rmSync(dirname(root), { recursive: true, force: true }));
    // What netmap_lin.ko of 2012 prints (the stand-in's legacy layout prints the same).
    fakeDmesg(
      t,
      `[  100.000001] 100.000001 [ 309] netmap_init               run mknod /dev/netmap c 10 124 # error 0
[  100.000002] 100.000002 [ 313] netmap_init               netmap: loaded module
[  100.200000] net eth0: netmap queues/slots: TX 1/256, RX 1/256
`,
    );
    const knownDrivers = loadDriverCatalog()
      .list()
      .map((d) => d.token);
    const seed = loadRecipe(join(repoRoot, "recipes", "seed-2.6.37-e1000.yaml"), { knownDrivers }).recipe;
    t.is(seed.netmap.moduleName, "netmap_lin");
    const r = await verifyLoad({
      exec: createExec(),
      root,
      cursor: { ts: null },
      netmapModule: seed.netmap.moduleName,
      drivers: [{ module: "e1000", mode: "native" }],
      dmesgExpect: seed.verify.dmesg.expect,
    });
    t.deepEqual(r.dmesg.mknod, { major: 10, minor: 124, err: 0 });
    t.true(r.dmesg.loaded);
    t.is(r.devNetmap.miscMinor, 124, "the misc device is netmap whatever the module is called");
    t.deepEqual(r.modules, [{ name: "e1000", deps: ["netmap_lin"], dependsOnNetmap: true }]);
    t.deepEqual(r.interfaces, [{ ifname: "eth0", driver: "e1000", mode: "native", expected: "native" }]);
    // The fixture's /dev/netmap is a plain file, not the device node: that, and only that, fails.
    t.deepEqual(r.failures, ["/dev/netmap does not exist (or is not a character device)"]);
  },
);
