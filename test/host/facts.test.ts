import test from "ava";
import type { Exec } from "../../toolkit/core/exec.js";
import { gatherHostFacts } from "../../toolkit/host/facts.js";
import { hostTree } from "../helpers/hosts.js";

/** An exec that fails the test if anything is spawned: facts must come from files. */
const noSpawn = (t: { fail(m: string): void }): Exec => ({
  dryRun: false,
  run: async (argv) => {
    t.fail(`spawned ${argv.join(" ")}`);
    throw new Error("no process expected");
  },
  start: (argv) => {
    t.fail(`spawned ${argv.join(" ")}`);
    throw new Error("no process expected");
  },
});

test("debian12-e1000: all parts, JSON round-trip is lossless", async (t) => {
  const f = await gatherHostFacts({
    root: hostTree("debian12-e1000"),
    env: { PATH: "/usr/bin" },
    exec: noSpawn(t),
  });
  t.is(f.os.family, "debian");
  t.is(f.kernel.version, "6.1.192");
  t.is(f.kconfig?.source, "/boot/config-6.1.0-56-amd64");
  t.is(f.kconfig?.values.CONFIG_E1000, "m");
  t.is(f.kconfigProblem, null);
  t.deepEqual(
    f.nics.map((n) => [n.ifname, n.netmapDriver, n.native]),
    [["eth0", "e1000", true]],
  );
  t.is(f.management.defaultRouteIf, "eth0");
  t.false(f.secureBoot.refusesUnsignedModules);
  t.is(f.tools.find((x) => x.name === "make")?.path, "/usr/bin/make");
  t.false(f.kvm.present);
  t.deepEqual(JSON.parse(JSON.stringify(f)), f);
});

test("secure-boot tree: EFI with a readable efivar needs no mokutil", async (t) => {
  const f = await gatherHostFacts({ root: hostTree("secure-boot"), env: {}, exec: noSpawn(t) });
  t.true(f.secureBoot.secureBoot);
});

test("the real host: fast, no process, and a missing module dir is a fact, not a crash", async (t) => {
  const started = performance.now();
  const f = await gatherHostFacts({ root: "/", exec: noSpawn(t) });
  const ms = performance.now() - started;
  t.true(ms < 1000, `took ${ms} ms`);
  t.regex(f.kernel.release, /^\d+\.\d+/);
  t.true(f.kconfig !== null || f.kconfigProblem !== null);
  t.notThrows(() => JSON.stringify(f));
});
