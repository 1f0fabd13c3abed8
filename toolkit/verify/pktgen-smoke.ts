import { setTimeout as sleep } from "node:timers/promises";
import type { Exec, ExecResult, StartedCommand } from "../core/exec.js";
import { readHostText } from "../host/host-fs.js";
import { type PktGenResult, parsePktGen } from "../parse/pkt-gen.js";
import type { VerifyReport } from "./verify-report.js";

/** The recipe's smoke test, resolved: `verify.pktgen` plus the built pkt-gen. */
export interface PktGenSmokeSpec {
  /** How long each sender runs once its port is ready. */
  seconds: number;
  /** An upper bound on the packets each sender sends (`-n`); never what ends a run. */
  count?: number | undefined;
  size: number;
  vale: boolean;
  interfaces: readonly string[];
}

/** How long pkt-gen may take at each stage; defaults fit a TCG guest, tests shorten them. */
export interface SmokeTiming {
  /** From start until pkt-gen says its port is ready (real pkt-gen maps netmap's memory first). */
  attachMs: number;
  /** How long the receiver keeps reading after the sender stopped, for frames still queued. */
  drainMs: number;
  /** After SIGINT, how long pkt-gen may take to print its summary and exit before SIGKILL. */
  graceMs: number;
  /** pkt-gen's `-w` on a NIC: seconds it waits for the link after the mode switch. */
  linkWaitSec: number;
}

export const DEFAULT_TIMING: SmokeTiming = { attachMs: 20_000, drainMs: 500, graceMs: 5_000, linkWaitSec: 2 };

export interface PktGenSmokeOptions extends PktGenSmokeSpec {
  exec: Exec;
  pktgen: string;
  /** Where /sys is read from (the interface's link state, to explain a NIC that sent little). */
  root?: string;
  timing?: Partial<SmokeTiming>;
}

/**
 * The pkt-gen command lines of the smoke test, for `plan` and for the run (one definition). Each
 * runs under coreutils' `timeout`, which sends pkt-gen SIGINT at the run's own bound (SIGKILL a
 * grace later): if netmap-provision itself is killed mid-verify, no pkt-gen is left holding
 * /dev/netmap. While netmap-provision lives, it stops them itself, long before that bound.
 */
export function smokeArgvs(
  pktgen: string,
  s: PktGenSmokeSpec,
  t: SmokeTiming = DEFAULT_TIMING,
): { valeRx?: string[]; valeTx?: string[]; nicTx: Array<{ ifname: string; argv: string[] }> } {
  // The count only bounds a sender; the receiver runs until it is stopped, so lost frames can
  // never leave it waiting for a count it will not reach.
  const bound = s.count === undefined ? [] : ["-n", String(s.count)];
  const limit = (waitSec: number, argv: string[]) => [
    "timeout",
    "-s",
    "INT",
    "-k",
    `${Math.ceil(t.graceMs / 1000)}s`,
    `${Math.ceil(boundMs(t, s.seconds, waitSec) / 1000)}s`,
    ...argv,
  ];
  const tx = (port: string, wait: number) =>
    limit(wait, [pktgen, "-i", port, "-f", "tx", "-l", String(s.size), "-w", String(wait), ...bound]);
  return {
    ...(s.vale
      ? { valeRx: limit(0, [pktgen, "-i", "vale0:1", "-f", "rx", "-w", "0"]), valeTx: tx("vale0:0", 0) }
      : {}),
    nicTx: s.interfaces.map((ifname) => ({ ifname, argv: tx(`netmap:${ifname}`, t.linkWaitSec) })),
  };
}

/** The longest one pkt-gen may live: every stage's bound (the receiver outlives a sender's attach). */
const boundMs = (t: SmokeTiming, seconds: number, waitSec: number): number =>
  2 * t.attachMs + waitSec * 1000 + seconds * 1000 + t.drainMs + 2 * t.graceMs;

// pkt-gen says its port is open and it is about to move packets: "start_threads [..] Ready...",
// then "sender_body [..] start, ..." or "receiver_body [..] reading from ...".
const READY =
  /\bstart_threads \[\s*\d+\] Ready\.\.\.$|\b(sender_body \[\s*\d+\] start,|receiver_body \[\s*\d+\] reading from)/;

interface Running {
  cmd: StartedCommand;
  /** Resolves true when the port is ready, false when pkt-gen exited first. */
  ready: Promise<boolean>;
}

function startPktGen(exec: Exec, argv: string[], backstopMs: number): Running {
  let settle: (v: boolean) => void = () => {};
  const ready = new Promise<boolean>((resolve) => {
    settle = resolve;
  });
  const cmd = exec.start(argv, {
    timeoutMs: backstopMs,
    onLine: (line) => {
      if (READY.test(line.trim())) settle(true);
    },
  });
  void cmd.done.then(() => settle(false));
  return { cmd, ready };
}

type ReadyState = "ready" | "exited" | "timeout";

async function waitReady(r: Running, ms: number): Promise<ReadyState> {
  const ac = new AbortController();
  const v = await Promise.race([
    r.ready,
    sleep(ms, "timeout" as const, { signal: ac.signal }).catch(() => "timeout" as const),
  ]);
  ac.abort();
  return v === "timeout" ? "timeout" : v ? "ready" : "exited";
}

/**
 * SIGINT (pkt-gen then prints its summary); if it is still there after the grace, SIGTERM (which
 * `timeout` passes on, so pkt-gen itself ends, not only its wrapper), then SIGKILL.
 */
async function stopPktGen(r: Running, graceMs: number): Promise<{ result: ExecResult; killed: boolean }> {
  const within = async (ms: number): Promise<ExecResult | null> => {
    const ac = new AbortController();
    const v = await Promise.race([r.cmd.done, sleep(ms, null, { signal: ac.signal }).catch(() => null)]);
    ac.abort();
    return v;
  };
  r.cmd.signal("SIGINT");
  const first = await within(graceMs);
  if (first) return { result: first, killed: false };
  r.cmd.signal("SIGTERM");
  if (!(await within(graceMs))) r.cmd.signal("SIGKILL");
  return { result: await r.cmd.done, killed: true };
}

/** One side's figures, from pkt-gen's own output, and why it moved nothing when it did not. */
interface Side {
  packets: number | null;
  pps: number | null;
  why: string;
  notes: string[];
}

function measure(
  role: "tx" | "rx",
  port: string,
  state: ReadyState,
  end: { result: ExecResult; killed: boolean },
  attachMs: number,
): Side {
  const r = end.result;
  const p: PktGenResult = parsePktGen(r.stdout, r.stderr);
  const notes: string[] = [];
  let packets: number | null = p.summary?.packets ?? (p.nothing ? 0 : null);
  let pps: number | null =
    p.speedPps ?? (p.summary && p.summary.seconds > 0 ? p.summary.packets / p.summary.seconds : null);
  if (packets === null && p.perSecond.length > 0) {
    // Killed before its summary: its per-second lines still say what it moved.
    packets = Math.round(p.perSecond.reduce((a, s) => a + s.pkts, 0));
    const usec = p.perSecond.reduce((a, s) => a + s.usec, 0);
    pps = usec > 0 ? packets / (usec / 1e6) : null;
    notes.push(`pkt-gen ${role} on ${port} printed no summary (killed); counted from its per-second lines`);
  }
  // pkt-gen's own reason, when it printed one besides its timestamped log lines ("... aborting").
  const said = `${r.stderr}\n${r.stdout}`
    .split("\n")
    .map((l) => l.trim())
    .find(
      (l) =>
        l !== "" &&
        !/^\d+\.\d+ /.test(l) &&
        !/^usage:/.test(l) &&
        !/^(Sending on|Receiving from|\d+\.\d+\.\d+\.\d+ ->)/.test(l) &&
        !/^(Sent|Received) nothing\.$/.test(l),
    );
  const why = p.error
    ? `${p.error.text} (${p.error.hint})`
    : state === "timeout"
      ? `its port was not ready within ${Math.round(attachMs / 1000)} s (no "Ready..." line)`
      : end.killed
        ? `it did not exit within the grace after SIGINT and was killed, printing nothing`
        : said
          ? `${said} (exit ${r.exitCode})`
          : p.nothing
            ? `pkt-gen says "${role === "tx" ? "Sent" : "Received"} nothing." (exit ${r.exitCode})`
            : `pkt-gen printed no summary (exit ${r.exitCode}${r.signal ? `, ${r.signal}` : ""})`;
  return { packets, pps, why, notes };
}

/** Why a NIC cannot really transmit ("administratively down", "up but without carrier"), or null. */
function linkDown(root: string, ifname: string): string | null {
  const flags = readHostText(root, `/sys/class/net/${ifname}/flags`);
  if (flags === null) return null; // no such interface: pkt-gen says so itself
  if ((Number.parseInt(flags.trim(), 16) & 0x1) === 0) return "administratively down";
  return readHostText(root, `/sys/class/net/${ifname}/carrier`)?.trim() === "0"
    ? "up but without carrier"
    : null;
}

/**
 * pkt-gen on a VALE pair, then tx on each chosen interface, bounded in time, never by a count:
 * the receiver (vale0:1) starts first and the sender only once the receiver says its port is
 * attached; the sender runs `seconds`, both are stopped with SIGINT so they print their summaries
 * (SIGKILL after a grace, with the per-second lines as the fallback count). The figures and the
 * loss come from pkt-gen's own output; a side fails only when it moved nothing, with pkt-gen's
 * reason. A receiver that loses frames (real VALE drops what a lagging receiver cannot take) passes.
 */
export async function pktgenSmoke(
  o: PktGenSmokeOptions,
): Promise<{ pktgen: NonNullable<VerifyReport["pktgen"]>; failures: string[] }> {
  const t: SmokeTiming = { ...DEFAULT_TIMING, ...o.timing };
  const failures: string[] = [];
  const notes: string[] = [];
  const out: NonNullable<VerifyReport["pktgen"]> = { interfaces: [], notes, seconds: o.seconds };
  const argvs = smokeArgvs(o.pktgen, o, t);
  const runMs = o.seconds * 1000;
  // execa's own kill, a margin after `timeout`'s: the last resort.
  const backstop = (waitSec: number) => boundMs(t, o.seconds, waitSec) + t.graceMs + 10_000;

  /** Start a sender, let it run `seconds` once ready (or until its count ends it), stop it. */
  const send = async (argv: string[], waitSec: number) => {
    const run = startPktGen(o.exec, argv, backstop(waitSec));
    const state = await waitReady(run, t.attachMs + waitSec * 1000);
    if (state === "ready") {
      const ac = new AbortController();
      await Promise.race([run.cmd.done, sleep(runMs, undefined, { signal: ac.signal }).catch(() => {})]);
      ac.abort();
    }
    return { state, end: await stopPktGen(run, t.graceMs) };
  };

  if (argvs.valeRx && argvs.valeTx) {
    const rx = startPktGen(o.exec, argvs.valeRx, backstop(0));
    const rxState = await waitReady(rx, t.attachMs);
    const txRun = await send(argvs.valeTx, 0);
    if (rxState === "ready") await sleep(t.drainMs);
    const rxEnd = await stopPktGen(rx, t.graceMs);
    const tx = measure("tx", "vale0:0", txRun.state, txRun.end, t.attachMs);
    const rxs = measure("rx", "vale0:1", rxState, rxEnd, t.attachMs);
    notes.push(...tx.notes, ...rxs.notes);
    const lost = tx.packets !== null && rxs.packets !== null ? Math.max(0, tx.packets - rxs.packets) : null;
    out.vale = {
      txPps: tx.pps,
      rxPps: rxs.pps,
      txPackets: tx.packets,
      rxPackets: rxs.packets,
      lost,
      lossPct: lost !== null && tx.packets ? Math.round((lost / tx.packets) * 10_000) / 100 : null,
    };
    if (!tx.packets) failures.push(`pkt-gen tx on vale0:0 moved no packets: ${tx.why}`);
    if (!rxs.packets)
      failures.push(
        `pkt-gen rx on vale0:1 received nothing: ${tx.packets ? rxs.why : `the sender moved nothing either; ${rxs.why}`}`,
      );
  }
  for (const { ifname, argv } of argvs.nicTx) {
    const down = linkDown(o.root ?? "/", ifname);
    // Seen with upstream netmap: an e1000 that is down fills its tx ring once (255 frames) and stalls.
    if (down)
      notes.push(
        `${ifname} is ${down}: pkt-gen can send at most one ring on it; bring it up (ip link set dev ${ifname} up) for a real figure`,
      );
    const run = await send(argv, t.linkWaitSec);
    const s = measure("tx", `netmap:${ifname}`, run.state, run.end, t.attachMs);
    notes.push(...s.notes);
    out.interfaces.push({ ifname, txPps: s.pps, txPackets: s.packets });
    if (!s.packets) failures.push(`pkt-gen tx on ${ifname} moved no packets: ${s.why}`);
  }
  return { pktgen: out, failures };
}
