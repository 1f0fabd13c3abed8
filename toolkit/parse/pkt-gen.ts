/**
 * Parser for netmap's pkt-gen: the per-second lines it logs (stderr), the summary it prints
 * (stdout), and the way it fails. Numbers come normalised ("1.694 Mpps") unless -N is given.
 */

/** One per-second report line (`main_thread [...] 1.589 Mpps (1.591 Mpkts 762.877 Mbps in 1001239 usec) ...`). */
export interface PktGenSample {
  /** pkt-gen's own timestamp (seconds mod 1000), when the line has one. */
  ts?: number;
  pps: number;
  pkts: number;
  bps: number;
  usec: number;
  avgBatch: number;
  minSpace: number;
}

export interface PktGenSummary {
  packets: number;
  bytes: number;
  events?: number;
  /** Bytes per packet. */
  size: number;
  seconds: number;
}

export type PktGenErrorKind =
  | "no-such-device"
  | "no-dev-netmap"
  | "permission-denied"
  | "not-supported"
  | "busy"
  | "other";

export interface PktGenError {
  kind: PktGenErrorKind;
  /** The port as pkt-gen named it in the error (e.g. "eth9"), when it did. */
  ifname?: string;
  text: string;
  hint: string;
}

export interface PktGenResult {
  role: "tx" | "rx" | null;
  /** The port opened (`interface is netmap:eth0`). */
  interface?: string;
  queues?: number;
  threads?: number;
  summary?: PktGenSummary;
  speedPps?: number;
  bandwidthBps?: number;
  rawBandwidthBps?: number;
  avgBatch?: number;
  perSecond: PktGenSample[];
  /** "Sent nothing." / "Received nothing.": the run moved no packet. */
  nothing: boolean;
  error?: PktGenError;
}

const UNIT_EXP: Record<string, number> = { "": 0, K: 3, M: 6, G: 9, T: 12 };

/** "1.694" + "M" -> 1694000, exactly: scale in the decimal string, not by float multiplication. */
export function unitValue(num: string, unit: string): number {
  return Number(`${num}e${UNIT_EXP[unit] ?? 0}`);
}

// pkt-gen glues its optional "[avg/std ...]" to the "(" that follows; -N prints raw numbers.
// A number with pkt-gen's optional unit, glued to what it counts: "1.694 Mpps", "0.000 pps", "1694000 pps".
const N = "([\\d.]+) ([KMGT]?)";

const SAMPLE = new RegExp(
  `^(?:(\\d+\\.\\d+) )?main_thread \\[\\s*\\d+\\] ${N}pps (?:\\[avg/std [^\\]]*\\] ?)?\\(${N}pkts ${N}bps in (\\d+) usec\\) ([\\d.]+) avg_batch (-?\\d+) min_space`,
);
const SPEED = new RegExp(
  `^Speed: ${N}pps Bandwidth: ${N}bps \\(raw ${N}bps\\)\\. Average batch: ([\\d.]+) pkts`,
);
const OPENED = /^(Sending on|Receiving from) (.+): (\d+) queues, (\d+) threads and \d+ cpus\./;
const SUMMARY =
  /^(Sent|Received) (\d+) packets (\d+) bytes (?:(\d+) events )?(\d+) bytes each in ([\d.]+) seconds\./;
// libnetmap's error callback: "<port>: <strerror>", e.g. "eth9: No such device or address".
const PORT_ERROR =
  /^(\S+?): (No such device(?: or address)?|No such file or directory|Permission denied|Operation not permitted|Operation not supported|Device or resource busy|Invalid argument)$/;

function errorFor(name: string, reason: string, text: string): PktGenError {
  if (name === "/dev/netmap") {
    return /No such file/.test(reason)
      ? { kind: "no-dev-netmap", text, hint: "/dev/netmap does not exist: netmap.ko is not loaded" }
      : {
          kind: "permission-denied",
          text,
          hint: "cannot open /dev/netmap: run as root or grant access to it",
        };
  }
  if (/No such device/.test(reason))
    return {
      kind: "no-such-device",
      ifname: name,
      text,
      hint: `no interface ${name}: check the name (ip link), or a VALE port name (vale<N>:<port>)`,
    };
  if (/Operation not supported/.test(reason))
    return {
      kind: "not-supported",
      ifname: name,
      text,
      hint: `${name} has no native netmap support and emulated mode is off (admode=1?): load the patched driver or set admode=0`,
    };
  if (/busy/.test(reason))
    return {
      kind: "busy",
      ifname: name,
      text,
      hint: `${name} is held by another netmap user: stop it first`,
    };
  if (/Permission denied|not permitted/.test(reason))
    return { kind: "permission-denied", ifname: name, text, hint: "not allowed: run as root" };
  return { kind: "other", ifname: name, text, hint: `pkt-gen could not open ${name}: ${reason}` };
}

/** Parse one pkt-gen run. stdout and stderr may also be passed already merged (2>&1) in either one. */
export function parsePktGen(stdout: string, stderr: string): PktGenResult {
  const r: PktGenResult = { role: null, perSecond: [], nothing: false };
  let aborting: string | undefined;
  let portError: PktGenError | undefined;
  const lines = `${stdout}\n${stderr}`.split(/\r?\n/);
  for (const raw of lines) {
    const line = raw.trim();
    const sample = SAMPLE.exec(line);
    const iface = /\bmain \[\s*\d+\] interface is (\S+)/.exec(line);
    const opened = OPENED.exec(line);
    const summary = SUMMARY.exec(line);
    const nothing = /^(Sent|Received) nothing\.$/.exec(line);
    const speed = SPEED.exec(line);
    const portErr = PORT_ERROR.exec(line);
    if (sample) {
      const s: PktGenSample = {
        pps: unitValue(sample[2] ?? "", sample[3] ?? ""),
        pkts: unitValue(sample[4] ?? "", sample[5] ?? ""),
        bps: unitValue(sample[6] ?? "", sample[7] ?? ""),
        usec: Number(sample[8]),
        avgBatch: Number(sample[9]),
        minSpace: Number(sample[10]),
      };
      if (sample[1]) s.ts = Number(sample[1]);
      r.perSecond.push(s);
    } else if (iface) {
      r.interface = iface[1];
    } else if (opened) {
      r.role = opened[1] === "Sending on" ? "tx" : "rx";
      r.interface ??= opened[2];
      r.queues = Number(opened[3]);
      r.threads = Number(opened[4]);
    } else if (summary) {
      r.role = summary[1] === "Sent" ? "tx" : "rx";
      r.summary = {
        packets: Number(summary[2]),
        bytes: Number(summary[3]),
        size: Number(summary[5]),
        seconds: Number(summary[6]),
      };
      if (summary[4] !== undefined) r.summary.events = Number(summary[4]);
    } else if (nothing) {
      r.role = nothing[1] === "Sent" ? "tx" : "rx";
      r.nothing = true;
    } else if (speed) {
      r.speedPps = unitValue(speed[1] ?? "", speed[2] ?? "");
      r.bandwidthBps = unitValue(speed[3] ?? "", speed[4] ?? "");
      r.rawBandwidthBps = unitValue(speed[5] ?? "", speed[6] ?? "");
      r.avgBatch = Number(speed[7]);
    } else if (portErr) {
      portError ??= errorFor(portErr[1] ?? "", portErr[2] ?? "", line);
    } else if (/\bmain \[\s*\d+\] aborting$/.test(line)) {
      aborting = line;
    } else if (r.role === null && /\b(sender_body|receiver_body) \[/.test(line)) {
      r.role = line.includes("sender_body") ? "tx" : "rx";
    }
  }
  if (portError) r.error = portError;
  else if (aborting)
    r.error = {
      kind: "other",
      text: aborting,
      hint: "pkt-gen aborted before opening the port: read its output above",
    };
  return r;
}
