import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { probeAccel, qemuVersion } from "../../toolkit/guest/kvm-probe.js";
import { tempDirs } from "../helpers/temp.js";

const tempDir = tempDirs(test);

const exec = createExec();
const KERNEL = "/boot/vmlinuz-0.0.0-never-booted";

test("no KVM device means TCG, without booting anything", async (t) => {
  const choice = await probeAccel(exec, { kvmDevice: "/nonexistent/kvm", kernel: KERNEL, cacheDir: false });
  t.deepEqual(choice, { accel: "tcg", reason: "/nonexistent/kvm does not exist", cached: false });
});

test("an absent device is never cached: once it appears in the same boot, the probe really runs", async (t) => {
  const dir = tempDir("np-probe-absent-");
  const cacheDir = join(dir, "cache");
  const device = join(dir, "kvm");
  const absent = await probeAccel(exec, { kvmDevice: device, kernel: KERNEL, cacheDir });
  t.deepEqual(absent, { accel: "tcg", reason: `${device} does not exist`, cached: false });
  t.false(existsSync(cacheDir), "the device check writes no cache");
  writeFileSync(device, ""); // a read-write file passes the device check, as after `modprobe kvm`
  const probed = await probeAccel(exec, { kvmDevice: device, kernel: KERNEL, cacheDir, timeoutMs: 5000 });
  t.is(probed.accel, "tcg");
  t.false(probed.cached);
  t.regex(probed.reason, /^KVM probe (failed|timed out)/, "the kernel image does not exist: the boot fails");
  t.is(readdirSync(cacheDir).length, 1, "a probe's verdict is cached");
});

test("a verdict cached during this host boot is reused without probing", async (t) => {
  const dir = tempDir("np-probe-cache-");
  const fakeKvm = join(dir, "kvm"); // a read-write file passes the device check
  writeFileSync(fakeKvm, "");
  const cacheDir = join(dir, "cache");
  mkdirSync(cacheDir);
  const version = await qemuVersion(exec);
  t.regex(version, /^\d+\.\d+/);
  const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  const file = join(cacheDir, `accel-0.0.0-never-booted-qemu-${version}.json`);
  writeFileSync(file, JSON.stringify({ accel: "kvm", reason: "seen earlier", bootId }));
  // The kernel image does not exist: only the cache can answer.
  t.deepEqual(await probeAccel(exec, { kvmDevice: fakeKvm, kernel: KERNEL, cacheDir }), {
    accel: "kvm",
    reason: "seen earlier",
    cached: true,
  });
  // From another boot, the cache is stale: the probe really runs, and its missing kernel fails it.
  writeFileSync(file, JSON.stringify({ accel: "kvm", reason: "seen earlier", bootId: "another-boot" }));
  const fresh = await probeAccel(exec, { kvmDevice: fakeKvm, kernel: KERNEL, cacheDir, timeoutMs: 5000 });
  t.is(fresh.accel, "tcg");
  t.false(fresh.cached);
  t.regex(fresh.reason, /KVM probe (failed|timed out)/);
  t.is(JSON.parse(readFileSync(file, "utf8")).bootId, bootId);
});
