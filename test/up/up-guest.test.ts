import { rmSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { findGuestKernel } from "../../toolkit/guest/guest-kernel.js";
import type { GuestNic } from "../../toolkit/guest/qemu.js";
import { debianKernel } from "../helpers/debian-kernel.js";
import { assertBasicUpDown, type Json, runUpPayload } from "../helpers/guest-payload.js";
import { fixture, repoRoot } from "../helpers/paths.js";
import { buildStandinBundle } from "../helpers/standin-bundle.js";

/*
 * The guest tier for up/down/confirm: Debian's own kernel in QEMU (TCG here, ~15 s a boot), the
 * netmap stand-in built ONCE on the host through the toolkit (build pipeline into a cache, plus a
 * bundle), then a committed payload (test/fixtures/guest/up-payload.mjs) drives the real CLI as
 * root in the guest and writes what it saw to the shared xfer dir. Four boots in all.
 */

// The installed Debian kernel (whatever ABI release apt installed): its headers build the stand-in,
// its image boots the guest. Throws naming the missing package.
const debian = debianKernel();
const exec = createExec();
const { kernel, kernelRelease } = findGuestKernel("/", debian.release);
const work = join(repoRoot, ".cache", "up-guest", `run-${process.pid}`);
const bundle = join(work, "standin.bundle");
const recipeFile = fixture("guest", "standin.yaml");
const persistRecipe = fixture("guest", "standin-persist.yaml");
let buildFlags: string[] = [];

test.before(async () => {
  ({ flags: buildFlags } = await buildStandinBundle(work, recipeFile, debian));
});

test.after.always(() => {
  if (process.env.NP_KEEP_GUEST_RUNS !== "1") rmSync(work, { recursive: true, force: true });
});

const runPayload = (
  mode: "basic" | "crash" | "crash-up" | "guard" | "persist",
  nics: GuestNic[],
  flags: string[],
  totalTimeoutMs: number,
) =>
  runUpPayload({
    exec,
    kernel,
    kernelRelease,
    work,
    mode,
    nics,
    flags,
    totalTimeoutMs,
    cacheDir: join(work, "guest-cache"),
  });

const e1000: GuestNic = { model: "e1000", id: "n0" };

test.serial(
  "guest: up swaps and verifies (eth0 native), status shows it, a second up changes nothing, down restores byte for byte",
  async (t) => {
    const { out, log } = await runPayload("basic", [e1000], buildFlags, 1_800_000);
    t.log(log.split("\n")[0]);
    assertBasicUpDown(t, out, log);
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
  "guest: up killed at every journaled step, then up again: it says it rolled the interrupted up back and swaps; down after it: the stock e1000 bound and byte-identical",
  async (t) => {
    const { out, log } = await runPayload("crash-up", [e1000], ["--from", bundle, ...buildFlags], 3_600_000);
    t.log(log.split("\n")[0]);
    t.true(out.trimmed.sameBytes, JSON.stringify(out.trimmed));
    t.is(out.full.status, 0, JSON.stringify(out.full).slice(0, 3000));
    t.true(out.steps >= 8, `only ${out.steps} journaled steps`);
    t.is(out.runs.length, out.steps);
    for (const r of out.runs as Json[]) {
      const what = `killed at step ${r.n} (${out.ops[r.n - 1]}): ${JSON.stringify(r.again).slice(0, 2500)}`;
      t.is(r.upSignal, "SIGKILL", what);
      // up again: the interrupted transaction undone, and said so; its own transaction committed.
      t.is(r.again.status, 0, what);
      t.true(r.again.report.ok, what);
      t.is(r.again.report.resumed, "rolled-back", what);
      t.true(r.again.report.changed, what);
      t.true(
        r.again.report.warnings.some((w: string) =>
          /found the interrupted "up" transaction .*; recovering it/.test(w),
        ),
        what,
      );
      t.true(r.afterAgain.e1000UsesNetmap, what);
      t.true(r.afterAgain.devNetmap, what);
      t.regex(r.afterAgain.resolves, /\/updates\/netmap\/e1000\.ko$/, what);
      t.true(r.afterAgain.installed, what);
      // down after it: the stock driver back, byte for byte.
      const after = `${what}; down: ${JSON.stringify(r.down).slice(0, 1500)}`;
      t.is(r.down.status, 0, after);
      t.true(r.down.report.ok, after);
      t.is(r.down.report.resumed, undefined, after);
      t.is(r.after.eth0Driver, "e1000", after);
      t.false(r.after.netmapLoaded, after);
      t.false(r.after.devNetmap, after);
      t.is(r.after.resolves, out.stockPath, after);
      t.is(r.after.stockSha256, out.before.stockSha256, after);
      t.false(r.after.installed, after);
    }
    const upMs = (out.runs as Json[]).map((r) => r.again.ms);
    t.log(
      `covered ${out.runs.length} of ${out.steps} journaled steps (${out.ops.join(", ")}); up rolled back each interrupted up and swapped (${Math.min(...upMs)}-${Math.max(...upMs)} ms)`,
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

test.serial(
  "guest: modules.persist writes modules-load.d and regenerates the initramfs with the patched e1000; down puts both back",
  async (t) => {
    const flags = ["--from", bundle, ...buildFlags.map((f) => (f === recipeFile ? persistRecipe : f))];
    const { out, log } = await runPayload("persist", [e1000], flags, 1_800_000);
    t.log(log.split("\n")[0]);
    const up = out.up.report;
    t.is(out.up.status, 0, JSON.stringify(out.up).slice(0, 4000));
    t.true(up.ok);
    t.deepEqual(
      up.steps.map((s: Json) => [s.id, s.status]),
      [
        ["build", "passed"],
        ["install", "passed"],
        ["swap", "passed"],
        ["verify", "passed"],
        ["persist", "passed"],
        ["record", "passed"],
      ],
    );
    const kver = out.stockPath.split("/")[3];
    // The toolkit's own inspection of the new image, and ours (lsinitramfs) beside it.
    t.deepEqual(
      [...up.persist.initramfs.modules].sort((a: Json, b: Json) => a.module.localeCompare(b.module)),
      [
        { module: "e1000", path: `usr/lib/modules/${kver}/updates/netmap/e1000.ko`, patched: true },
        { module: "netmap", path: `usr/lib/modules/${kver}/updates/netmap/netmap.ko`, patched: true },
      ],
    );
    t.true(
      out.lsinitramfs.some((l: string) => l.endsWith("updates/netmap/e1000.ko")),
      out.lsinitramfs.join("\n"),
    );
    t.false(
      out.lsinitramfs.some((l: string) => /kernel\/.*\/e1000\.ko/.test(l)),
      "no stock e1000 left in the image",
    );
    t.not(out.filesAfterUp.initrdSha256, out.filesBefore.initrdSha256);
    t.deepEqual(
      out.filesAfterUp.conf.split("\n").filter((l: string) => l && !l.startsWith("#")),
      ["netmap", "e1000"],
    );
    t.is(out.filesBefore.conf, null);
    t.log(`up with persistence: ${out.up.ms} ms`);
    // A second up sees the persistence in place and changes nothing.
    t.is(out.up2.status, 0);
    t.false(out.up2.report.changed);
    // down: the old image byte for byte, the entry gone, the stock driver back.
    t.is(out.down.status, 0, JSON.stringify(out.down).slice(0, 3000));
    t.is(out.filesAfterDown.initrdSha256, out.filesBefore.initrdSha256);
    t.is(out.filesAfterDown.conf, null);
    t.is(out.afterDown.eth0Driver, "e1000");
    t.is(out.afterDown.stockSha256, out.before.stockSha256);
    t.false(out.afterDown.installed);
  },
);
