import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { findGuestKernel } from "../../toolkit/guest/guest-kernel.js";
import { debianKernel } from "../helpers/debian-kernel.js";
import { assertPlanAgrees, type Json, runUpPayload } from "../helpers/guest-payload.js";
import { legacyStandinDir } from "../helpers/kernel-sources.js";
import { repoRoot } from "../helpers/paths.js";
import { deriveSeedRecipe } from "../helpers/seed-recipe.js";
import { buildStandinBundle } from "../helpers/standin-bundle.js";

/*
 * The seed procedure's mechanics end to end (issue 12): recipes/seed-2.6.37-e1000.yaml, the 2012
 * walkthrough, run in a guest of Debian's installed kernel. Only its kernel is out of reach here
 * (Linux 2.6.37 needs gcc 3.2 to 4.9), so the recipe is derived from the seed with `kernel` set to
 * the running kernel and the apps to the stand-in's one, pkt-gen (test/helpers/seed-recipe.ts,
 * checked in test/recipe/load.test.ts); everything else is the seed's:
 * netmap layout legacy-make (`make KSRC=`, then `make KSRC= apps`), module netmap_lin, drivers
 * [e1000], strategy replace (the stock e1000.ko renamed to e1000.ko-bak), verify with its dmesg
 * patterns (`# error 0`, the 2012 wording) and its pkt-gen. netmap is the stand-in in its old
 * layout (test/fixtures/netmap-standin-legacy), built once on the host through the toolkit; in
 * the guest the real CLI runs up, status, up again and down as root
 * (test/fixtures/guest/up-payload.mjs, mode "seed"). One boot.
 */

const debian = debianKernel();
const exec = createExec();
const { kernel, kernelRelease } = findGuestKernel("/", debian.release);
const work = join(repoRoot, ".cache", "seed-guest", `run-${process.pid}`);
const recipeFile = join(work, "seed-running-kernel.yaml");
let buildFlags: string[] = [];

test.before(async () => {
  mkdirSync(work, { recursive: true });
  deriveSeedRecipe(recipeFile);
  ({ flags: buildFlags } = await buildStandinBundle(work, recipeFile, debian, legacyStandinDir));
});

test.after.always(() => {
  if (process.env.NP_KEEP_GUEST_RUNS !== "1") rmSync(work, { recursive: true, force: true });
});

test.serial(
  "guest: the seed recipe on Debian's kernel: e1000.ko renamed to e1000.ko-bak, netmap_lin loaded through the patched e1000, the `# error 0` dmesg check, down restores the exact bytes",
  async (t) => {
    const { out, log } = await runUpPayload({
      exec,
      kernel,
      kernelRelease,
      work,
      mode: "seed",
      nics: [{ model: "e1000", id: "n0" }],
      flags: buildFlags,
      totalTimeoutMs: 1_800_000,
      cacheDir: join(work, "guest-cache"),
    });
    t.log(log.split("\n")[0]);
    t.true(out.trimmed.sameBytes, JSON.stringify(out.trimmed));
    t.is(out.before.eth0Driver, "e1000", log);
    const stock: string = out.stockPath;
    const before = out.filesBefore;
    t.false(before.bak);
    t.is(before.stockSha256, out.before.stockSha256);

    // up: built (a cache hit of the host's build), installed by replace, swapped, verified.
    const up1 = out.up1.report;
    t.is(out.up1.status, 0, JSON.stringify(out.up1).slice(0, 4000));
    assertPlanAgrees(t, out);
    t.true(up1.ok);
    t.true(up1.changed);
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
    // The 2012 rename: the stock file moved aside byte for byte, the patched e1000 in its place.
    const afterUp = out.filesAfterUp;
    t.true(afterUp.bak, `${stock}-bak`);
    t.is(afterUp.bakSha256, before.stockSha256);
    t.not(afterUp.stockSha256, before.stockSha256);
    t.is(afterUp.stockDepends, "netmap_lin");
    t.is(out.afterUp.resolves, stock, "modprobe e1000 loads the patched file at the stock path");
    t.regex(afterUp.netmapLinResolves, /\/updates\/netmap\/netmap_lin\.ko$/);
    t.true(
      afterUp.lsmod.some((l: string) => /^netmap_lin\s+\d+\s+1\s+e1000$/.test(l)),
      afterUp.lsmod.join("\n"),
    );
    t.true(out.afterUp.e1000UsesNetmap);
    t.true(out.afterUp.devNetmap);

    // verify: the seed's dmesg patterns on the 2012 wording, /dev/netmap, native eth0, pkt-gen.
    const v = up1.verify;
    t.true(v.ok, v.failures.join("; "));
    t.is(v.dmesg.mknod.err, 0);
    t.true(v.dmesg.loaded);
    t.true(
      v.dmesg.excerpt.some((l: string) =>
        /netmap_init\s+run mknod \/dev\/netmap c 10 \d+ # error 0$/.test(l),
      ),
      v.dmesg.excerpt.join("\n"),
    );
    t.false(v.dmesg.excerpt.some((l: string) => / # returned /.test(l)));
    t.true(v.devNetmap.present);
    t.is(v.devNetmap.minor, v.devNetmap.miscMinor);
    t.deepEqual(v.modules, [{ name: "e1000", deps: ["netmap_lin"], dependsOnNetmap: true }]);
    t.deepEqual(v.interfaces, [{ ifname: "eth0", driver: "e1000", mode: "native", expected: "native" }]);
    const vale = v.pktgen.vale;
    t.true(vale.txPackets > 0 && vale.rxPackets > 0, JSON.stringify(v.pktgen));
    // The seed's `-n 500111222` only caps the sender: the run is bounded in time and ends.
    const nic = v.pktgen.interfaces[0];
    t.is(nic.ifname, "eth0");
    t.true(nic.txPackets > 0 && nic.txPackets < 500111222, JSON.stringify(nic));
    t.log(
      `up: ${out.up1.ms} ms; VALE tx ${vale.txPackets} rx ${vale.rxPackets}; eth0 tx ${nic.txPackets} (${Math.round(nic.txPps)} pps)`,
    );

    const status = out.status.report;
    t.is(out.status.status, 0, JSON.stringify(out.status).slice(0, 2000));
    t.true(status.netmap.loaded);
    t.is(status.netmap.module, "netmap_lin");
    t.deepEqual(
      status.interfaces.map((i: Json) => [i.ifname, i.mode]),
      [["eth0", "native"]],
    );
    t.is(status.installed.netmapModule, "netmap_lin");

    // A second up finds netmap_lin's load in place.
    t.is(out.up2.status, 0, JSON.stringify(out.up2).slice(0, 3000));
    t.false(out.up2.report.changed);
    t.true(out.up2.report.verify.ok);

    // down: netmap_lin unloaded after e1000 and never reloaded; the stock file back, byte for byte.
    const down = out.down.report;
    t.is(out.down.status, 0, JSON.stringify(out.down).slice(0, 3000));
    t.true(down.ok);
    t.true(down.devNetmapGone);
    t.deepEqual(down.stockBound, [{ ifname: "eth0", driver: "e1000" }]);
    t.true(down.restored.length > 0 && down.restored.every((r: Json) => r.matches));
    const after = out.filesAfterDown;
    t.is(after.stockSha256, before.stockSha256);
    t.false(after.bak, "e1000.ko-bak is gone: the original is back at its own path");
    t.is(after.netmapLinResolves, "");
    t.false(after.lsmod.some((l: string) => l.startsWith("netmap_lin")));
    t.is(out.afterDown.resolves, stock);
    t.is(out.afterDown.eth0Driver, "e1000");
    t.false(out.afterDown.netmapLoaded);
    t.false(out.afterDown.devNetmap);
    t.false(out.afterDown.installed);
    t.true(out.afterDown.addrs.includes('"local":"10.0.2.15","prefixlen":24'), out.afterDown.addrs);
    t.log(`down: ${out.down.ms} ms`);
  },
);
