import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { writeBundle } from "../../toolkit/build/bundle.js";
import { runBuild } from "../../toolkit/build/pipeline.js";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { createExec } from "../../toolkit/core/exec.js";
import { findGuestKernel } from "../../toolkit/guest/guest-kernel.js";
import { bootGuest, type GuestNic } from "../../toolkit/guest/qemu.js";
import { loadRecipe } from "../../toolkit/recipe/load.js";
import { applyOverrides } from "../../toolkit/recipe/overrides.js";
import { ensureKernelDriverSources, standinDir } from "../helpers/kernel-sources.js";
import { cliPath, fixture, repoRoot } from "../helpers/paths.js";

/*
 * The guest tier for up/down/confirm: Debian's own kernel in QEMU (TCG here, ~15 s a boot), the
 * netmap stand-in built ONCE on the host through the toolkit (build pipeline into a cache, plus a
 * bundle), then a committed payload (test/fixtures/guest/up-payload.mjs) drives the real CLI as
 * root in the guest and writes what it saw to the shared xfer dir. Three boots in all.
 */

const RELEASE = "6.1.0-56-amd64";
const KDIR = `/lib/modules/${RELEASE}/build`;
const exec = createExec();
const { kernel, kernelRelease } = findGuestKernel("/", RELEASE);
const work = join(repoRoot, ".cache", "up-guest", `run-${process.pid}`);
const cacheDir = join(work, "cache");
const bundle = join(work, "standin.bundle");
const recipeFile = fixture("guest", "standin.yaml");
const payload = fixture("guest", "up-payload.mjs");
let kernelSources = "";
let buildFlags: string[] = [];

test.before(async () => {
  mkdirSync(cacheDir, { recursive: true });
  kernelSources = ensureKernelDriverSources();
  const catalog = loadDriverCatalog();
  const knownDrivers = catalog.list().map((d) => d.token);
  const { recipe } = applyOverrides(
    loadRecipe(recipeFile, { knownDrivers }).recipe,
    { netmapSource: standinDir, kernelDir: KDIR, kernelSources, drivers: "e1000" },
    { knownDrivers },
  );
  const res = await runBuild({ recipe, cacheDir, offline: true, jobs: 2, catalog }, { exec });
  if (!res.ok || !res.manifest || !res.artifactsDir) throw res.error ?? new Error("stand-in build failed");
  await writeBundle({ file: bundle, artifactsDir: res.artifactsDir, manifest: res.manifest, recipe, exec });
  buildFlags = [
    "--recipe",
    recipeFile,
    "--netmap-source",
    standinDir,
    "--kernel-dir",
    KDIR,
    "--kernel-sources",
    kernelSources,
    "--drivers",
    "e1000",
    "--cache-dir",
    cacheDir,
  ];
});

test.after.always(() => {
  if (process.env.NP_KEEP_GUEST_RUNS !== "1") rmSync(work, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: the payload's JSON is asserted on field by field
type Json = any;

async function runPayload(
  mode: "basic" | "crash" | "guard",
  nics: GuestNic[],
  flags: string[],
  totalTimeoutMs: number,
): Promise<{ out: Json; log: string }> {
  const xferDir = mkdtempSync(join(work, `xfer-${mode}-`));
  const outFile = join(xferDir, "result.json");
  const r = await bootGuest(exec, {
    kernel,
    kernelRelease,
    accel: "auto",
    cacheDir: join(work, "guest-cache"),
    nics,
    memoryMb: 1024,
    xferDir,
    totalTimeoutMs,
    command: [process.execPath, payload, mode, cliPath, "/xfer/result.json", "--", ...flags],
    ...(process.env.NP_CPU_PROF ? { env: { NP_CPU_PROF: "/xfer/prof" } } : {}),
  });
  const log = `exit ${r.exitCode} in ${(r.durationMs / 1000).toFixed(1)} s (boot ${((r.bootMs ?? 0) / 1000).toFixed(1)} s)\n${r.stderr.slice(-3000)}\n${r.serialTail.join("\n")}`;
  if (!existsSync(outFile)) throw new Error(`the payload wrote no result:\n${log}`);
  return { out: JSON.parse(readFileSync(outFile, "utf8")) as Json, log };
}

const e1000: GuestNic = { model: "e1000", id: "n0" };

test.serial(
  "guest: up swaps and verifies (eth0 native), status shows it, a second up changes nothing, down restores byte for byte",
  async (t) => {
    const { out, log } = await runPayload("basic", [e1000], buildFlags, 1_800_000);
    t.log(log.split("\n")[0]);
    t.is(out.before.eth0Driver, "e1000", log);
    const up1 = out.up1.report;
    t.is(out.up1.status, 0, JSON.stringify(out.up1).slice(0, 4000));
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
    // The stand-in pkt-gen sends on VALE but cannot receive: tx counted, rx null with the reason.
    t.true(v.pktgen.vale.txPackets === 100000, JSON.stringify(v.pktgen));
    t.true(v.pktgen.vale.txPps > 0);
    t.is(v.pktgen.vale.rxPps, null);
    t.regex(v.pktgen.notes.join("\n"), /VALE rx not measured: .*rx is not supported/);
    t.log(`up: ${out.up1.ms} ms, VALE tx ${(v.pktgen.vale.txPps / 1e6).toFixed(3)} Mpps`);
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
    t.log(`second up (nothing to do): ${out.up2.ms} ms`);

    const down = out.down.report;
    t.is(out.down.status, 0, JSON.stringify(out.down).slice(0, 3000));
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
  },
);

test.serial(
  "guest: up killed at every journaled step, then down: the stock e1000 is bound and byte-identical each time",
  async (t) => {
    const { out, log } = await runPayload("crash", [e1000], ["--from", bundle, ...buildFlags], 3_600_000);
    t.log(log.split("\n")[0]);
    t.true(out.trimmed.sameBytes, JSON.stringify(out.trimmed));
    t.is(out.full.status, 0, JSON.stringify(out.full).slice(0, 3000));
    t.true(out.firstDown.report.ok);
    t.true(out.steps >= 8, `only ${out.steps} journaled steps`);
    t.is(out.runs.length, out.steps);
    for (const r of out.runs as Json[]) {
      const what = `killed at step ${r.n} (${out.ops[r.n - 1]}): ${JSON.stringify(r.down).slice(0, 1500)}`;
      t.is(r.upSignal, "SIGKILL", what);
      t.is(r.down.status, 0, what);
      t.true(r.down.report.ok, what);
      t.is(r.after.eth0Driver, "e1000", what);
      t.false(r.after.netmapLoaded, what);
      t.false(r.after.devNetmap, what);
      t.is(r.after.resolves, out.stockPath, what);
      t.is(r.after.stockSha256, out.before.stockSha256, what);
      t.false(r.after.installed, what);
    }
    const recovered = (out.runs as Json[]).filter((r) => r.down.report.resumed === "rolled-back").length;
    t.log(
      `covered ${out.runs.length} of ${out.steps} journaled steps (${out.ops.join(", ")}); down rolled back ${recovered} interrupted ups`,
    );
  },
);

test.serial(
  "guest: with the default route on eth0, up refuses; with --allow-management and no confirm the timer rolls back",
  async (t) => {
    const nics: GuestNic[] = [e1000, { model: "e1000", id: "n1" }];
    const { out, log } = await runPayload("guard", nics, ["--from", bundle, ...buildFlags], 1_500_000);
    t.log(log.split("\n")[0]);
    t.true(out.trimmed.sameBytes, JSON.stringify(out.trimmed));
    t.is(out.refused.status, 4, JSON.stringify(out.refused).slice(0, 2000));
    t.false(out.refused.report.ok);
    t.regex(out.refused.report.error.message, /\[management\].*eth0/);
    t.false(out.afterRefused.netmapLoaded);
    t.is(out.armed.status, 0, JSON.stringify(out.armed).slice(0, 3000));
    t.true(out.armed.report.ok);
    t.is(out.armed.report.deadman.timeoutSec, 20);
    t.true(out.afterArmed.e1000UsesNetmap);
    t.not(out.rolledBackAfterMs, null, out.deadmanLog);
    t.log(`the timer rolled back ${out.rolledBackAfterMs} ms after up returned`);
    const a = out.afterTimer;
    t.is(a.eth0Driver, "e1000");
    t.false(a.netmapLoaded);
    t.false(a.devNetmap);
    t.is(a.stockSha256, out.before.stockSha256);
    t.is(a.resolves, out.stockPath);
    t.true(a.addrs.includes('"local":"10.0.2.15","prefixlen":24'), a.addrs);
    t.true(a.routes.includes('"gateway":"10.0.2.2","dev":"eth0"'), a.routes);
    t.regex(out.deadmanLog, /no confirmation: running down/);
    t.regex(out.deadmanLog, /down succeeded/);
  },
);
