/** The verify report: what `up --json` prints under `verify` (contract shared with `try`). */
export interface VerifyReport {
  ok: boolean;
  failures: string[];
  devNetmap: { present: boolean; minor: number | null; miscMinor: number | null };
  dmesg: {
    mknod: { major: number; minor: number; err: number } | null;
    loaded: boolean;
    /** Kernel lines since the cursor. */
    excerpt: string[];
    errors: Array<{ kind: string; module?: string; text: string; hint: string }>;
  };
  modules: Array<{ name: string; deps: string[]; dependsOnNetmap: boolean }>;
  interfaces: Array<{
    ifname: string;
    driver: string | null;
    mode: "native" | "emulated" | "none";
    expected: "native" | "emulated" | "any";
  }>;
  pktgen: null | {
    /** How long each sender ran once its port was ready. */
    seconds: number;
    vale?: {
      txPps: number | null;
      rxPps: number | null;
      txPackets: number | null;
      rxPackets: number | null;
      /** Frames sent but not received (a lagging VALE receiver drops what it cannot take). */
      lost: number | null;
      lossPct: number | null;
    };
    interfaces: Array<{ ifname: string; txPps: number | null; txPackets: number | null }>;
    /** How a figure was obtained when pkt-gen did not give it directly (e.g. killed, no summary). */
    notes: string[];
  };
}

/** "1.69 Mpps", "60.5 Kpps", "-": pkt-gen's rate as a person reads it. */
export const formatPps = (n: number | null | undefined): string =>
  n === null || n === undefined
    ? "-"
    : n >= 1e6
      ? `${(n / 1e6).toFixed(2)} Mpps`
      : n >= 1e3
        ? `${(n / 1e3).toFixed(1)} Kpps`
        : `${n.toFixed(0)} pps`;

const count = (n: number | null): string => (n === null ? "-" : n.toLocaleString("en-US"));

/** The smoke test's figures, one line per sender (what `up` and `try` print). */
export function pktgenLines(p: NonNullable<VerifyReport["pktgen"]>): string[] {
  const out: string[] = [];
  const v = p.vale;
  if (v)
    out.push(
      `pkt-gen VALE (${p.seconds} s): tx ${formatPps(v.txPps)} (${count(v.txPackets)} sent), rx ${formatPps(v.rxPps)} (${count(v.rxPackets)} received), lost ${count(v.lost)}${v.lossPct === null ? "" : ` (${v.lossPct}%)`}`,
    );
  for (const i of p.interfaces)
    out.push(`pkt-gen ${i.ifname} (${p.seconds} s): tx ${formatPps(i.txPps)} (${count(i.txPackets)} sent)`);
  return out;
}
