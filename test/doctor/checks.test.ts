import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import test from "ava";
import { blocksUp, type DoctorCheck, driversToSwap, runDoctor } from "../../toolkit/doctor/checks.js";
import { gatherHostFacts, type HostFacts } from "../../toolkit/host/facts.js";
import { copyHostTree, FIXTURE_RELEASE, hostTree, removeKernelHeaders } from "../helpers/hosts.js";

const factsOf = (name: string, env: Record<string, string> = {}) =>
  gatherHostFacts({ root: hostTree(name), env });
const byId = (checks: DoctorCheck[], id: string): DoctorCheck => {
  const c = checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${checks.map((x) => x.id).join(", ")}`);
  return c;
};

test("debian12-e1000: ready for `up`; kernel pieces ok, try tools and management warned", async (t) => {
  const checks = runDoctor(await factsOf("debian12-e1000"));
  t.false(blocksUp(checks));
  for (const id of [
    "module-dir",
    "kconfig",
    "build-dir",
    "sources",
    "build-tools",
    "module-signing",
    "nic:eth0",
  ]) {
    t.is(byId(checks, id).status, "ok", id);
  }
  t.regex(byId(checks, "kconfig").found, /\/boot\/config-6\.1\.0-56-amd64/);
  t.is(byId(checks, "try-tools").status, "warn");
  t.regex(byId(checks, "try-tools").fix ?? "", /apt-get install -y qemu-system-x86 busybox-static/);
  t.false(
    checks.some((c) => c.id === "module-compression"),
    "uncompressed modules need no note",
  );
  const mgmt = byId(checks, "management");
  t.is(mgmt.status, "warn");
  t.false(mgmt.blocksUp);
  t.regex(mgmt.fix ?? "", /--allow-management/);
});

test("proc-config-only: the config source is named", async (t) => {
  t.regex(byId(runDoctor(await factsOf("proc-config-only")), "kconfig").found, /^\/proc\/config\.gz/);
});

test("headers-no-sources: warn with the package to install; a recipe listing drivers makes it a blocker", async (t) => {
  const facts = await factsOf("headers-no-sources");
  const auto = byId(runDoctor(facts), "sources");
  t.is(auto.status, "warn");
  t.false(auto.blocksUp);
  t.regex(auto.fix ?? "", /apt-get install linux-source-6\.1/);
  const explicit = byId(runDoctor(facts, { drivers: ["e1000"] }), "sources");
  t.is(explicit.status, "fail");
  t.true(explicit.blocksUp);
});

test("builtin-nic: cannot be swapped; auto skips it, an explicit recipe driver blocks", async (t) => {
  const facts = await factsOf("builtin-nic");
  t.deepEqual(driversToSwap(facts, {}), []);
  const auto = runDoctor(facts);
  t.is(byId(auto, "nic:eth0").status, "warn");
  t.regex(byId(auto, "nic:eth0").found, /built into the kernel/);
  t.is(byId(auto, "management").status, "ok", "a built-in driver is never unloaded");
  t.false(blocksUp(auto));
  const explicit = runDoctor(facts, { drivers: ["e1000"] });
  t.true(byId(explicit, "nic:eth0").blocksUp);
  t.true(blocksUp(explicit));
});

test("mgmt-on-swapped-driver: names both roles and every interface that goes down", async (t) => {
  const facts = await factsOf("mgmt-on-swapped-driver", {
    SSH_CONNECTION: "203.0.113.5 50000 198.51.100.7 22",
  });
  const mgmt = byId(runDoctor(facts), "management");
  t.is(mgmt.status, "warn");
  t.regex(mgmt.found, /eth0 \(default route\) is on e1000/);
  t.regex(mgmt.found, /eth1 \(SSH session\) is on e1000/);
  t.regex(mgmt.found, /takes down eth0, eth1/);
  // A recipe that swaps something else leaves the management link alone.
  t.is(byId(runDoctor(facts, { drivers: ["igb"] }), "management").status, "ok");
});

test("secure-boot: fails with the signing recipe, blocks `up`", async (t) => {
  const checks = runDoctor(await factsOf("secure-boot"));
  const sb = byId(checks, "module-signing");
  t.is(sb.status, "fail");
  t.true(sb.blocksUp);
  t.regex(sb.found, /Secure Boot on, lockdown integrity/);
  t.regex(sb.fix ?? "", /scripts\/sign-file sha256/);
  t.regex(sb.fix ?? "", /mokutil --import/);
  t.is(byId(checks, "sources").status, "info", "the tarball is usable sources");
});

test("compressed-modules: compression noted, and zstd becomes a required tool", async (t) => {
  const checks = runDoctor(await factsOf("compressed-modules"));
  t.regex(byId(checks, "module-compression").found, /\.ko\.zst/);
  const tools = byId(checks, "build-tools");
  t.is(tools.status, "fail");
  t.is(tools.found, "missing: zstd");
  t.is(tools.fix, "apt-get install -y zstd");
});

test("not native on this kernel: warn, or fail when the recipe wants it and emulated is not ok", async (t) => {
  const facts = structuredClone(await factsOf("debian12-e1000")) as HostFacts;
  const nic = facts.nics[0];
  if (!nic) throw new Error("fixture has eth0");
  nic.native = false;
  nic.reason = "netmap's e1000 has no native patch for 6.1.192: emulated (generic) mode only";
  t.is(byId(runDoctor(facts), "nic:eth0").status, "warn");
  t.true(byId(runDoctor(facts, { drivers: ["e1000"] }), "nic:eth0").blocksUp);
  t.false(byId(runDoctor(facts, { drivers: ["e1000"], emulatedOk: ["e1000"] }), "nic:eth0").blocksUp);
  t.false(byId(runDoctor(facts, { drivers: ["e1000"], emulatedOk: true }), "nic:eth0").blocksUp);
});

test("an unconfigured build dir, no modules dir, no config, no module support: each blocks with a fix", async (t) => {
  const base = await factsOf("debian12-e1000");
  const unconfigured = structuredClone(base);
  unconfigured.kernel.build.hasVersionH = false;
  const b = byId(runDoctor(unconfigured), "build-dir");
  t.true(b.blocksUp);
  t.regex(b.found, /not configured: include\/generated\/uapi\/linux\/version\.h missing/);
  t.regex(b.fix ?? "", /modules_prepare/);

  const noModules = structuredClone(base);
  noModules.kernel.moduleDirExists = false;
  noModules.kernel.build.exists = false;
  const checks = runDoctor(noModules);
  t.true(byId(checks, "module-dir").blocksUp);
  t.regex(byId(checks, "build-dir").fix ?? "", /fix the module directory first/);

  const noConfig = structuredClone(base);
  noConfig.kconfig = null;
  noConfig.kconfigProblem = { message: "cannot find the configuration", hint: "install headers" };
  t.is(byId(runDoctor(noConfig), "kconfig").fix, "install headers");

  const noModuleSupport = structuredClone(base);
  if (noModuleSupport.kconfig) delete noModuleSupport.kconfig.values.CONFIG_MODULES;
  t.true(byId(runDoctor(noModuleSupport), "module-support").blocksUp);
});

test("a recipe driver no NIC uses is mentioned, not a blocker", async (t) => {
  const c = byId(runDoctor(await factsOf("debian12-e1000"), { drivers: ["e1000", "ixgbe"] }), "driver:ixgbe");
  t.is(c.status, "info");
  t.false(c.blocksUp);
});

test("a Debian host without headers: kernel 6.1.192 from /proc/version, and the fixes name 6.1, not gcc's 12.2", async (t) => {
  const root = copyHostTree("debian12-e1000");
  t.teardown(() => rmSync(dirname(root), { recursive: true, force: true }));
  removeKernelHeaders(root);
  const checks = runDoctor(await gatherHostFacts({ root, env: {} }));
  t.regex(byId(checks, "kernel").found, /version 6\.1\.192 \(from proc-version\)/);
  t.is(byId(checks, "build-dir").fix, `apt-get install linux-headers-${FIXTURE_RELEASE}`);
  t.regex(byId(checks, "sources").fix ?? "", /^apt-get install linux-source-6\.1 /);
  t.false(JSON.stringify(checks).includes("12.2"), "gcc's version is nowhere taken for the kernel's");
});

test("a garbage /proc/net/route: the management check warns that it cannot tell, naming the NIC", async (t) => {
  const root = copyHostTree("debian12-e1000");
  t.teardown(() => rmSync(dirname(root), { recursive: true, force: true }));
  writeFileSync(join(root, "proc/net/route"), "Iface\tDestination\tGateway \tFlags\nnot a route\n");
  const mgmt = byId(runDoctor(await gatherHostFacts({ root, env: {} })), "management");
  t.is(mgmt.status, "warn");
  t.regex(mgmt.found, /cannot tell which NIC carries the management link: \/proc\/net\/route line 2/);
  t.regex(mgmt.found, /eth0 on a driver it would swap/);
});
