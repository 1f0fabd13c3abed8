import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { pktgenSmoke, smokeArgvs } from "../../toolkit/verify/pktgen-smoke.js";
import { fixture } from "../helpers/paths.js";
import { tempDirs } from "../helpers/temp.js";

// The edge cases run a scripted pkt-gen (test/fixtures/bin/pkt-gen-scripted.mjs): the real
// stand-in needs its kernel module, so it runs in the guest tier, which checks the VALE pair.
const tempDir = tempDirs(test);
const exec = createExec();
const timing = { attachMs: 3_000, drainMs: 200, graceMs: 1_000, linkWaitSec: 0 };

function scripted(mode: string): { path: string; log: string } {
  const dir = tempDir("np-pktgen-");
  const script = fixture("bin", "pkt-gen-scripted.mjs");
  chmodSync(script, 0o755);
  const path = join(dir, `pkt-gen-${mode}`);
  symlinkSync(script, path);
  return { path, log: join(dir, "runs.log") };
}

async function smoke(
  mode: string,
  extra: { interfaces?: string[]; count?: number; vale?: boolean; root?: string } = {},
) {
  const p = scripted(mode);
  const started = Date.now();
  const r = await pktgenSmoke({
    exec,
    pktgen: p.path,
    seconds: 1,
    size: 60,
    vale: extra.vale ?? true,
    interfaces: extra.interfaces ?? [],
    timing,
    ...(extra.count === undefined ? {} : { count: extra.count }),
    ...(extra.root === undefined ? {} : { root: extra.root }),
  });
  return { ...r, ms: Date.now() - started, runs: readFileSync(p.log, "utf8").trim().split("\n") };
}

test("a receiver that cannot keep up passes, with tx, rx and the loss from the summaries", async (t) => {
  const r = await smoke("lagging");
  t.deepEqual(r.failures, []);
  const v = r.pktgen.vale;
  t.truthy(v);
  t.true((v?.txPackets ?? 0) > 0);
  t.true((v?.rxPackets ?? 0) > 0);
  t.true((v?.lost ?? 0) > 0, "the scripted receiver takes fewer frames than were sent");
  t.is(v?.lost, (v?.txPackets ?? 0) - (v?.rxPackets ?? 0));
  t.true((v?.lossPct ?? 0) > 0 && (v?.lossPct ?? 100) < 100);
  t.true((v?.txPps ?? 0) > 1e6);
  // Receiver first, sender only after the receiver said it was ready; no count on the receiver.
  t.regex(r.runs[0] ?? "", /^rx vale0:1 /);
  t.regex(r.runs[1] ?? "", /^tx vale0:0 /);
  t.notRegex(r.runs[0] ?? "", / -n /);
});

test("a count bounds the sender only: the receiver never waits for a count lost frames cannot reach", async (t) => {
  const r = await smoke("lagging", { count: 200_000 });
  t.deepEqual(r.failures, []);
  t.is(r.pktgen.vale?.txPackets, 200_000);
  t.regex(r.runs[1] ?? "", / -n 200000$/);
  t.notRegex(r.runs[0] ?? "", / -n /);
  const argv = smokeArgvs("/x/pkt-gen", { seconds: 3, count: 5, size: 60, vale: true, interfaces: ["eth0"] });
  // Under coreutils' timeout (SIGINT at the run's own bound, SIGKILL 5 s later): a killed CLI
  // leaves no pkt-gen behind. Bound: 2 x 20 s attach + 3 s + 0.5 s drain + 2 x 5 s grace (+ -w).
  t.deepEqual(argv.valeRx, [
    ...["timeout", "-s", "INT", "-k", "5s", "54s"],
    ...["/x/pkt-gen", "-i", "vale0:1", "-f", "rx", "-w", "0"],
  ]);
  t.deepEqual(argv.nicTx[0]?.argv, [
    ...["timeout", "-s", "INT", "-k", "5s", "56s"],
    ...["/x/pkt-gen", "-i", "netmap:eth0", "-f", "tx", "-l", "60", "-w", "2", "-n", "5"],
  ]);
});

test("a sender that moves nothing fails, naming pkt-gen's own words", async (t) => {
  const r = await smoke("silent", { interfaces: ["eth0"] });
  t.is(r.pktgen.vale?.txPackets, 0);
  t.is(r.pktgen.vale?.rxPackets, 0);
  t.true(
    r.failures.some((f) => /^pkt-gen tx on vale0:0 moved no packets: .*Sent nothing/.test(f)),
    r.failures.join("\n"),
  );
  t.true(
    r.failures.some((f) =>
      /^pkt-gen rx on vale0:1 received nothing: the sender moved nothing either/.test(f),
    ),
  );
  t.true(r.failures.some((f) => /^pkt-gen tx on eth0 moved no packets: .*Sent nothing/.test(f)));
});

test("a missing port fails with pkt-gen's error and hint", async (t) => {
  const r = await smoke("nodev", { vale: false, interfaces: ["eth9"] });
  t.deepEqual(r.pktgen.interfaces, [{ ifname: "eth9", txPps: null, txPackets: null }]);
  t.regex(
    r.failures[0] ?? "",
    /^pkt-gen tx on eth9 moved no packets: eth9: No such device or address \(no interface eth9/,
  );
});

test("a pkt-gen that ignores SIGINT cannot hang verify: killed after the grace, counted from its per-second lines", async (t) => {
  const r = await smoke("deaf");
  // attach (0.3 s) + 1 s of sending + drain + one grace per process, run in sequence: well under the bounds.
  t.true(r.ms < 3 * timing.attachMs + 2 * timing.graceMs + 2_000, `took ${r.ms} ms`);
  t.deepEqual(r.failures, []);
  t.true((r.pktgen.vale?.txPackets ?? 0) > 0);
  t.true(r.pktgen.notes.some((n) => /tx on vale0:0 printed no summary \(killed\)/.test(n)));
});

test("a port that never gets ready cannot hang verify: it fails after the attach bound", async (t) => {
  const r = await smoke("stuck");
  t.true(r.ms < 2 * timing.attachMs + 2 * timing.graceMs + 2_000, `took ${r.ms} ms`);
  t.true(r.failures.some((f) => /tx on vale0:0 moved no packets: its port was not ready within 3 s/.test(f)));
  t.true(r.failures.some((f) => /rx on vale0:1 received nothing/.test(f)));
});

test("a NIC that is down is named: upstream's e1000 sends one ring on it and stalls", async (t) => {
  const root = tempDir("np-sysroot-");
  mkdirSync(join(root, "sys/class/net/eth0"), { recursive: true });
  writeFileSync(join(root, "sys/class/net/eth0/flags"), "0x1002\n"); // IFF_UP clear
  const r = await smoke("lagging", { vale: false, interfaces: ["eth0"], root });
  t.true(
    r.pktgen.notes.some((n) => /^eth0 is administratively down: .*ip link set dev eth0 up/.test(n)),
    r.pktgen.notes.join("\n"),
  );
  writeFileSync(join(root, "sys/class/net/eth0/flags"), "0x1003\n");
  const up = await smoke("lagging", { vale: false, interfaces: ["eth0"], root });
  t.deepEqual(up.pktgen.notes, []);
  t.true((up.pktgen.interfaces[0]?.txPackets ?? 0) > 0);
});

test("a pkt-gen whose caller dies is still stopped: timeout sends it SIGINT at the run's bound", async (t) => {
  const p = scripted("lagging");
  const argv = smokeArgvs(
    p.path,
    { seconds: 1, size: 60, vale: true, interfaces: [] },
    { attachMs: 500, drainMs: 0, graceMs: 1_000, linkWaitSec: 0 },
  ).valeRx;
  // Nobody signals it here, as when netmap-provision was killed: only timeout's bound ends it.
  const started = Date.now();
  const r = await exec.run(argv ?? [], { reject: false, timeoutMs: 20_000 });
  t.true(Date.now() - started < 8_000, `ran ${Date.now() - started} ms`);
  t.is(r.exitCode, 124); // timeout's own "timed out"
  t.regex(r.stdout, /^Received \d+ packets/m); // SIGINT, so pkt-gen printed its summary
});
