import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import type { Exec } from "../../toolkit/core/exec.js";
import { bootGuest, type GuestNic } from "../../toolkit/guest/qemu.js";
import type { StepDescription } from "../../toolkit/runner/step.js";
import { cliPath, fixture } from "./paths.js";
import { downDisagreements, type Ran, shown, upDisagreements } from "./up-agreement.js";

/*
 * Runs the committed guest payload (test/fixtures/guest/up-payload.mjs) in a QEMU guest and
 * asserts on what it saw. The toolkit-built-kernel tier (test/kernel) uses it; the assertions are
 * those of the Debian-kernel tier's basic test (test/up/up-guest.test.ts), so both kernels are held
 * to the same bar.
 */

export const upPayload: string = fixture("guest", "up-payload.mjs");

// biome-ignore lint/suspicious/noExplicitAny: the payload's JSON is asserted on field by field
export type Json = any;

export interface PayloadRun {
  exec: Exec;
  kernel: string;
  kernelRelease: string;
  /** The run's work dir: the xfer dirs are made under it. */
  work: string;
  mode: "basic" | "crash" | "crash-up" | "guard" | "persist" | "seed" | "hostile";
  nics: GuestNic[];
  /** The flags every `up` in the payload gets. */
  flags: string[];
  /** "hostile" mode: the directory of crafted bundles, each run with `up --from` (sorted by name). */
  bundleDir?: string;
  totalTimeoutMs: number;
  bootTimeoutMs?: number;
  initrd?: string;
  /** The guest runner's cache (KVM verdict, PVH vmlinux). */
  cacheDir?: string;
  /**
   * A /lib/modules/<release> tree to copy into the guest's writable overlay before the payload
   * starts: a kernel built for the test has no modules in the host root the guest boots from.
   */
  moduleTree?: string;
}

export async function runUpPayload(o: PayloadRun): Promise<{ out: Json; log: string }> {
  const xferDir = mkdtempSync(join(o.work, `xfer-${o.mode}-`));
  const outFile = join(xferDir, "result.json");
  const payload = [
    process.execPath,
    upPayload,
    o.mode,
    cliPath,
    "/xfer/result.json",
    "--",
    ...(o.mode === "hostile" ? [o.bundleDir ?? "/nonexistent"] : []),
    ...o.flags,
  ];
  // The tree comes in as $1, the payload's argv after it: nothing is spliced into the script.
  const command = o.moduleTree
    ? [
        "sh",
        "-c",
        'set -e; mkdir -p /lib/modules; cp -a "$1" /lib/modules/; shift; exec "$@"',
        "sh",
        o.moduleTree,
        ...payload,
      ]
    : payload;
  const r = await bootGuest(o.exec, {
    kernel: o.kernel,
    kernelRelease: o.kernelRelease,
    accel: "auto",
    ...(o.initrd ? { initrd: o.initrd } : {}),
    ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
    ...(o.bootTimeoutMs ? { bootTimeoutMs: o.bootTimeoutMs } : {}),
    nics: o.nics,
    memoryMb: 1024,
    xferDir,
    totalTimeoutMs: o.totalTimeoutMs,
    command,
    ...(process.env.NP_CPU_PROF ? { env: { NP_CPU_PROF: "/xfer/prof" } } : {}),
  });
  const log = `exit ${r.exitCode} in ${(r.durationMs / 1000).toFixed(1)} s (boot ${((r.bootMs ?? 0) / 1000).toFixed(1)} s)\n${r.stderr.slice(-3000)}\n${r.serialTail.join("\n")}`;
  if (!existsSync(outFile)) throw new Error(`the payload wrote no result:\n${log}`);
  return { out: JSON.parse(readFileSync(outFile, "utf8")) as Json, log };
}

/**
 * The "basic" payload's bar: up swaps and verifies (eth0 native, VALE tx counted), status shows
 * it, a second up changes nothing, down restores the stock e1000 byte for byte.
 */
/** The plan printed in the guest before up, against the commands up's steps ran (issue 12). */
export function assertPlanAgrees(t: ExecutionContext, out: Json): void {
  t.is(out.plan1?.status, 0, JSON.stringify(out.plan1).slice(0, 3000));
  const plan = out.plan1.report;
  const ran = out.up1.report.commands as Ran[];
  t.true(
    ran.some((e) => e.step === "swap"),
    JSON.stringify(ran).slice(0, 2000),
  );
  const bad = upDisagreements(plan.steps, ran, plan.buildCache);
  t.deepEqual(
    bad,
    [],
    `the plan:\n${(plan.steps as StepDescription[]).map((s) => `[${s.id}]\n${s.commands.map((c) => `  ${shown(c.argv, c.cwd)}`).join("\n")}`).join("\n")}\nran:\n${ran.map((e) => `[${e.step}] ${shown(e.argv, e.cwd)}`).join("\n")}`,
  );
  t.log(`plan and up agree: ${ran.length} commands run by up's steps`);
}

/** `down --plan` printed in the guest before `down`, against the commands down's steps ran. */
export function assertDownPlanAgrees(t: ExecutionContext, out: Json): void {
  t.is(out.downPlan?.status, 0, JSON.stringify(out.downPlan).slice(0, 3000));
  const steps = out.downPlan.report.steps as StepDescription[];
  const ran = out.down.report.commands as Ran[];
  t.true(
    ran.some((e) => e.step === "unload"),
    JSON.stringify(ran).slice(0, 2000),
  );
  t.deepEqual(
    downDisagreements(steps, ran),
    [],
    `down --plan:\n${steps.map((s) => `[${s.id}]\n${s.commands.map((c) => `  ${shown(c.argv, c.cwd)}`).join("\n")}`).join("\n")}\nran:\n${ran.map((e) => `[${e.step}] ${shown(e.argv, e.cwd)}`).join("\n")}`,
  );
  t.log(`down --plan and down agree: ${ran.length} commands run by down's steps`);
}

export function assertBasicUpDown(t: ExecutionContext, out: Json, log: string): void {
  t.is(out.before.eth0Driver, "e1000", log);
  const up1 = out.up1.report;
  t.is(out.up1.status, 0, JSON.stringify(out.up1).slice(0, 4000));
  assertPlanAgrees(t, out);
  t.true(up1.ok);
  t.true(up1.changed);
  t.truthy(up1.transaction);
  t.deepEqual(
    up1.steps.map((s: Json) => [s.id, s.status]),
    [
      ["build", "passed"],
      ["install", "passed"],
      ["swap", "passed"],
      ["verify", "passed"],
      ["record", "passed"],
    ],
  );
  const v = up1.verify;
  t.true(v.ok, v.failures.join("; "));
  t.true(v.devNetmap.present);
  t.is(v.devNetmap.minor, v.devNetmap.miscMinor);
  t.is(v.dmesg.mknod.err, 0);
  t.true(v.dmesg.loaded);
  t.true(v.dmesg.excerpt.some((l: string) => /eth0: netmap queues\/slots: TX 1\/256, RX 1\/256/.test(l)));
  t.deepEqual(v.modules, [{ name: "e1000", deps: ["netmap"], dependsOnNetmap: true }]);
  t.deepEqual(v.interfaces, [{ ifname: "eth0", driver: "e1000", mode: "native", expected: "native" }]);
  // The stand-in's VALE pair: time-bounded tx and rx, both counted from pkt-gen's summaries; its
  // receiver lags, so frames are lost, and verify still passes with the loss reported.
  const vale = v.pktgen.vale;
  t.true(vale.txPackets > 0 && vale.txPps > 0, JSON.stringify(v.pktgen));
  t.true(vale.rxPackets > 0 && vale.rxPps > 0, JSON.stringify(v.pktgen));
  t.is(vale.lost, vale.txPackets - vale.rxPackets);
  t.is(typeof vale.lossPct, "number");
  // NIC tx on eth0 at about an emulated e1000's rate: a count-bound run of 1,000,000 would not end.
  const nic = v.pktgen.interfaces[0];
  t.is(nic.ifname, "eth0");
  t.true(nic.txPackets > 0 && nic.txPps < 70_000, JSON.stringify(nic));
  t.log(
    `up: ${out.up1.ms} ms; VALE tx ${vale.txPackets} rx ${vale.rxPackets} lost ${vale.lossPct}%; eth0 tx ${Math.round(nic.txPps)} pps`,
  );
  // After up: the patched e1000 drives eth0 and the address set before the swap is back.
  t.true(out.afterUp.e1000UsesNetmap);
  t.true(out.afterUp.devNetmap);
  t.regex(out.afterUp.resolves, /\/updates\/netmap\/e1000\.ko$/);
  t.true(out.afterUp.addrs.includes('"local":"10.0.2.15","prefixlen":24'), out.afterUp.addrs);
  t.regex(out.afterUp.addrs, /"flags":\[[^\]]*"UP"/);

  const status = out.status.report;
  t.is(out.status.status, 0);
  t.true(status.netmap.loaded);
  t.deepEqual(
    status.interfaces.map((i: Json) => [i.ifname, i.mode]),
    [["eth0", "native"]],
  );
  t.is(status.installed.state, "present");

  t.is(out.up2.status, 0, JSON.stringify(out.up2).slice(0, 3000));
  t.true(out.up2.report.ok);
  t.false(out.up2.report.changed);
  t.is(out.up2.report.transaction, null);
  t.true(out.up2.report.verify.ok);
  t.log(
    `second up (nothing to do): ${out.up2.ms} ms; in the same guest a bare \`node -e 0\` took ${out.nodeBareMs} ms and \`main.js --version\` ${out.cliVersionMs} ms`,
  );

  const down = out.down.report;
  t.is(out.down.status, 0, JSON.stringify(out.down).slice(0, 3000));
  assertDownPlanAgrees(t, out);
  t.true(down.ok);
  t.true(down.devNetmapGone);
  t.deepEqual(down.stockBound, [{ ifname: "eth0", driver: "e1000" }]);
  t.true(down.restored.every((r: Json) => r.matches));
  const after = out.afterDown;
  t.is(after.stockSha256, out.before.stockSha256);
  t.is(after.resolves, out.stockPath);
  t.is(after.eth0Driver, "e1000");
  t.false(after.netmapLoaded);
  t.false(after.devNetmap);
  t.false(after.installed);
  t.true(after.addrs.includes('"local":"10.0.2.15","prefixlen":24'), after.addrs);
}
