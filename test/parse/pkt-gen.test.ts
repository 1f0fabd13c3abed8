import test from "ava";
import { parsePktGen, unitValue } from "../../toolkit/parse/pkt-gen.js";
import { section, subLogs } from "./capture.js";

const vale = () => subLogs(section("pkt-gen vale rx/tx"));

test("real VALE tx: 3000000 packets at 1.694 Mpps", (t) => {
  const r = parsePktGen(vale().get("tx.log") ?? "", "");
  t.is(r.role, "tx");
  t.is(r.interface, "vale0:0");
  t.is(r.queues, 1);
  t.is(r.threads, 1);
  t.deepEqual(r.summary, { packets: 3000000, bytes: 180000000, events: 5860, size: 60, seconds: 1.77 });
  t.is(r.speedPps, 1694000);
  t.is(r.bandwidthBps, 813045000);
  t.is(r.rawBandwidthBps, 813045000);
  t.is(r.avgBatch, 511.95);
  t.false(r.nothing);
  t.is(r.error, undefined);
  t.deepEqual(r.perSecond, [
    {
      ts: 132.701183,
      pps: 1589000,
      pkts: 1591000,
      bps: 762877000,
      usec: 1001239,
      avgBatch: 512,
      minSpace: 0,
    },
    {
      ts: 133.705464,
      pps: 1403000,
      pkts: 1409000,
      bps: 673212000,
      usec: 1004405,
      avgBatch: 511.88,
      minSpace: 99999,
    },
  ]);
});

test("real VALE rx: 2918356 packets at 612.227 Kpps, seven per-second lines including the idle ones", (t) => {
  const r = parsePktGen("", vale().get("rx.log") ?? "");
  t.is(r.role, "rx");
  t.is(r.interface, "vale0:1");
  t.deepEqual(r.summary, { packets: 2918356, bytes: 175101360, events: 5701, size: 60, seconds: 4.77 });
  t.is(r.speedPps, 612227);
  t.is(r.bandwidthBps, 293869000);
  t.is(r.perSecond.length, 7);
  t.is(r.perSecond[0]?.pps, 0);
  t.is(r.perSecond[1]?.pps, 1540000);
  t.is(r.perSecond[5]?.usec, 110842);
});

test("real netmap:eth0 tx on the emulated e1000: 200000 packets at 63.098 Kpps over 2 queues", (t) => {
  const r = parsePktGen(section("pkt-gen nic tx"), "");
  t.is(r.role, "tx");
  t.is(r.interface, "netmap:eth0");
  t.is(r.queues, 2);
  t.deepEqual(r.summary, { packets: 200000, bytes: 12000000, events: 785, size: 60, seconds: 3.17 });
  t.is(r.speedPps, 63098);
  t.is(r.bandwidthBps, 30287000);
  t.is(r.avgBatch, 254.78);
  t.deepEqual(
    r.perSecond.map((s) => s.pps),
    [60476, 60431, 66744, 10248],
  );
  t.is(r.perSecond[0]?.pkts, 61200);
  t.is(r.perSecond[3]?.avgBatch, 250.73);
});

test("real missing interface: eth9 no such device, aborting", (t) => {
  const r = parsePktGen("", section("pkt-gen bad iface"));
  t.is(r.role, null);
  t.is(r.interface, "netmap:eth9");
  t.is(r.summary, undefined);
  t.is(r.speedPps, undefined);
  t.deepEqual(r.perSecond, []);
  t.is(r.error?.kind, "no-such-device");
  t.is(r.error?.ifname, "eth9");
  t.is(r.error?.text, "eth9: No such device or address");
  t.regex(r.error?.hint ?? "", /ip link/);
});

test("'Sent nothing.' and 'Received nothing.'", (t) => {
  const tx = parsePktGen("Sending on netmap:eth0: 1 queues, 1 threads and 1 cpus.\nSent nothing.\n", "");
  t.is(tx.role, "tx");
  t.true(tx.nothing);
  t.is(tx.summary, undefined);
  const rx = parsePktGen("Received nothing.\n", "");
  t.is(rx.role, "rx");
  t.true(rx.nothing);
});

test("raw units (-N), the [avg/std] sample form, G and T units", (t) => {
  const r = parsePktGen(
    [
      "Sent 14880000 packets 892800000 bytes 29063 events 60 bytes each in 1.00 seconds.",
      "Speed: 14880000 pps Bandwidth: 7142400000 bps (raw 9998400000 bps). Average batch: 512.00 pkts",
    ].join("\n"),
    // pkt-gen prints the [avg/std ...] block glued to the "(" that follows it.
    "001.000000 main_thread [2781] 14.880 Mpps [avg/std 14.870 M/12.000 K pps](14.881 Mpkts 7.142 Gbps in 1000001 usec) 512.00 avg_batch 0 min_space",
  );
  t.is(r.speedPps, 14880000);
  t.is(r.bandwidthBps, 7142400000);
  t.is(r.rawBandwidthBps, 9998400000);
  t.deepEqual(r.perSecond, [
    { ts: 1, pps: 14880000, pkts: 14881000, bps: 7142000000, usec: 1000001, avgBatch: 512, minSpace: 0 },
  ]);
  const raw = parsePktGen(
    "",
    "main_thread [2781] 1488000 pps (1488000 pkts 714240000 bps in 1000000 usec) 512.00 avg_batch 0 min_space",
  );
  t.is(raw.perSecond[0]?.pps, 1488000);
  t.is(raw.perSecond[0]?.ts, undefined);
  t.is(unitValue("1.5", "T"), 1.5e12);
  t.is(unitValue("612.227", "K"), 612227);
});

test("/dev/netmap missing: netmap not loaded", (t) => {
  const r = parsePktGen("", "/dev/netmap: No such file or directory\n001.000000 main [3335] aborting\n");
  t.is(r.error?.kind, "no-dev-netmap");
  t.is(r.error?.ifname, undefined);
  t.regex(r.error?.hint ?? "", /netmap\.ko/);
});

test("aborting without a recognised reason is still an error", (t) => {
  const r = parsePktGen("", "001.000000 main [3335] aborting\n");
  t.is(r.error?.kind, "other");
});
