import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import test from "ava";
import { StepError, TimeoutError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import { findGuestKernel } from "../../toolkit/guest/guest-kernel.js";
import { PAYLOAD_START_MARKER } from "../../toolkit/guest/guest-scripts.js";
import { probeAccel } from "../../toolkit/guest/kvm-probe.js";
import { bootGuest, type GuestResult, GuestTimeoutError } from "../../toolkit/guest/qemu.js";
import { debianKernelImage } from "../helpers/debian-kernel.js";
import { assertAccelChoice, kvmDecidedWithoutProbe, kvmDeviceState } from "../helpers/kvm.js";
import { tempDirs } from "../helpers/temp.js";

const tempDir = tempDirs(test);

/*
 * The guest tier: each test boots the real distribution kernel in QEMU (about 15-20 s under TCG
 * on 2 cores), so they run one at a time. The first one probes KVM into a private cache that the
 * others then reuse, as `try` would.
 */
const exec = createExec();
// Debian's kernel as apt installed it (linux-image-amd64), through the toolkit's own lookup.
const { kernel, kernelRelease } = findGuestKernel("/", debianKernelImage().release);
const cacheDir = tempDir("np-guest-cache-");
const base = { kernel, kernelRelease, accel: "auto" as const, cacheDir };

const timing = (r: GuestResult): string =>
  `accel=${r.accel} boot-to-payload=${((r.bootMs ?? Number.NaN) / 1000).toFixed(1)} s total=${(r.durationMs / 1000).toFixed(1)} s`;

/** True while any process still has `needle` (a unique temp path) on its command line. */
function processMentions(needle: string): boolean {
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(needle)) return true;
    } catch {
      // exited meanwhile
    }
  }
  return false;
}

test.serial(
  "guest: the accelerator probe picks KVM only if a test kernel boots under it, says why, and caches only a probe",
  async (t) => {
    const started = performance.now();
    const choice = await probeAccel(exec, { kernel, kernelRelease, cacheDir });
    t.log(
      `probe: ${choice.accel} (${choice.reason}) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    // /dev/kvm absent, there but not ours, there but broken (`-cpu host` aborting on an MSR write),
    // or working: see test/helpers/kvm.ts.
    const state = kvmDeviceState();
    assertAccelChoice(t, choice, state);
    t.false(choice.cached);
    const again = await probeAccel(exec, { kernel, kernelRelease, cacheDir });
    const cacheFiles = () => readdirSync(cacheDir).filter((n) => /^accel-.*\.json$/.test(n));
    if (kvmDecidedWithoutProbe(state)) {
      // The device check costs nothing and may change within a boot (modprobe kvm): never cached.
      t.deepEqual(again, choice);
      t.deepEqual(cacheFiles(), [], "nothing probed, nothing cached");
    } else {
      // A boot probe costs seconds: its verdict is kept for this host boot, kernel and QEMU.
      t.deepEqual(again, { ...choice, cached: true });
      t.is(cacheFiles().length, 1);
      t.true(cacheFiles()[0]?.startsWith(`accel-${kernelRelease}-qemu-`), cacheFiles()[0]);
    }
  },
);

test.serial("guest: node runs as root in the guest kernel and its output and files come back", async (t) => {
  const xferDir = tempDir("np-guest-xfer-");
  const wallStart = performance.now();
  const r = await bootGuest(exec, {
    ...base,
    xferDir,
    bootTimeoutMs: 120_000,
    totalTimeoutMs: 240_000,
    command: [
      "node",
      "-e",
      `const fs = require("node:fs");
       const os = require("node:os");
       fs.writeFileSync("/xfer/made-in-guest.txt", "hello from " + os.hostname() + "\\n");
       console.log(JSON.stringify({ release: os.release(), uid: process.getuid(),
         modules: fs.readFileSync("/proc/modules", "utf8").split("\\n").map((l) => l.split(" ")[0]) }));`,
    ],
  });
  // wall also counts building the initramfs and (first run) extracting the PVH vmlinux.
  t.log(`${timing(r)} wall=${((performance.now() - wallStart) / 1000).toFixed(1)} s`);
  t.is(r.exitCode, 0, r.stderr);
  t.false(r.timedOut);
  const out = JSON.parse(r.stdout) as { release: string; uid: number; modules: string[] };
  t.is(out.release, kernelRelease);
  t.is(out.uid, 0);
  for (const m of ["9pnet_virtio", "9p", "overlay", "virtio_pci"]) t.true(out.modules.includes(m), m);
  t.is(readFileSync(join(xferDir, "made-in-guest.txt"), "utf8"), "hello from netmap-guest\n");
  t.is(readFileSync(join(xferDir, "exit-code"), "utf8"), "0\n");
  t.true(r.bootMs !== undefined && r.bootMs < r.durationMs);
  t.is(r.serialLog, undefined, "a passing run leaves no serial log behind");
  t.true(r.serialTail.some((l) => l.includes(PAYLOAD_START_MARKER)));
});

test.serial("guest: the payload's exit status and argv come back exactly", async (t) => {
  const r = await bootGuest(exec, {
    ...base,
    command: ["sh", "-c", 'printf "%s|" "$@"; echo oops >&2; exit 3', "sh", "a b", "$(reboot)", "'q'", "*"],
  });
  t.log(timing(r));
  t.is(r.exitCode, 3);
  t.is(r.stdout, "a b|$(reboot)|'q'|*|");
  t.is(r.stderr, "oops\n");
  t.is(r.xferDir, undefined);
});

test.serial(
  "guest: a payload that never ends is stopped at the total timeout, with the serial tail",
  async (t) => {
    const serialLog = join(tempDir("np-guest-hang-"), "serial.log");
    const started = performance.now();
    const err = await t.throwsAsync(
      bootGuest(exec, {
        ...base,
        serialLog,
        bootTimeoutMs: 35_000,
        totalTimeoutMs: 40_000,
        command: ["sleep", "1000"],
      }),
      { instanceOf: GuestTimeoutError },
    );
    const took = performance.now() - started;
    t.log(`stopped after ${(took / 1000).toFixed(1)} s`);
    t.true(err instanceof TimeoutError);
    t.is(err?.exitCode, 5);
    t.is(err?.result.timedOut, "total");
    t.regex(err?.message ?? "", /did not finish within 40 s/);
    t.true(err?.message.includes(PAYLOAD_START_MARKER), "the serial tail shows the payload had started");
    t.true(took < 60_000);
    t.true(existsSync(serialLog), "the serial log is kept");
    t.false(processMentions(serialLog), "no QEMU left running");
  },
);

test.serial(
  "guest: a guest that cannot reach the payload in time is stopped at the boot timeout",
  async (t) => {
    const serialLog = join(tempDir("np-guest-slow-"), "serial.log");
    const err = await t.throwsAsync(
      bootGuest(exec, { ...base, serialLog, bootTimeoutMs: 1_500, command: ["true"] }),
      { instanceOf: GuestTimeoutError },
    );
    t.is(err?.result.timedOut, "boot");
    t.is(err?.result.bootMs, undefined);
    t.regex(err?.message ?? "", /did not reach the payload within 2 s/);
    t.false(processMentions(serialLog), "no QEMU left running");
  },
);

test.serial(
  "guest: a guest that dies before the payload is a step error that keeps the serial log",
  async (t) => {
    // No such rdinit: the kernel panics looking for a root fs, and panic=-1 with -no-reboot ends QEMU.
    const err = await t.throwsAsync(
      bootGuest(exec, { ...base, extraAppend: "rdinit=/nonexistent", command: ["true"] }),
      {
        instanceOf: StepError,
      },
    );
    t.regex(err?.message ?? "", /stopped without reporting the payload's exit status/);
    const kept = /serial console \((\S+)\)/.exec(err?.message ?? "")?.[1] ?? "";
    t.true(existsSync(kept), `serial log kept at ${kept}`);
    t.regex(readFileSync(kept, "utf8"), /Kernel panic/);
    rmSync(dirname(kept), { recursive: true, force: true });
  },
);

test.serial("guest: two e1000 NICs appear as eth0 and eth1 once the payload loads e1000", async (t) => {
  const r = await bootGuest(exec, {
    ...base,
    nics: [
      { model: "e1000", id: "n0" },
      { model: "e1000", id: "n1" },
    ],
    command: [
      "sh",
      "-c",
      'modprobe e1000 || exit 10; for n in /sys/class/net/*; do echo "$(basename "$n") $(basename "$(readlink "$n/device/driver")")"; done',
    ],
  });
  t.log(timing(r));
  t.is(r.exitCode, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  t.true(lines.includes("eth0 e1000"), r.stdout);
  t.true(lines.includes("eth1 e1000"), r.stdout);
});
