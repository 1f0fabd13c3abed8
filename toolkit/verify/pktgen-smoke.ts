import { setTimeout as sleep } from "node:timers/promises";
import type { Exec } from "../core/exec.js";
import { type PktGenResult, parsePktGen } from "../parse/pkt-gen.js";
import type { VerifyReport } from "./report.js";

export interface PktGenSmokeOptions {
  exec: Exec;
  pktgen: string;
  count: number;
  size: number;
  vale: boolean;
  interfaces: readonly string[];
}

const RUN_TIMEOUT_MS = 30_000;

const pps = (r: PktGenResult): number | null =>
  r.speedPps ?? (r.summary && r.summary.seconds > 0 ? r.summary.packets / r.summary.seconds : null);

async function runPktGen(
  exec: Exec,
  argv: string[],
): Promise<PktGenResult & { exitCode: number; why: string | undefined }> {
  const r = await exec.run(argv, { timeoutMs: RUN_TIMEOUT_MS, reject: false });
  // pkt-gen's own reason, when it printed one besides its timestamped log lines ("... aborting").
  const why = r.stderr
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "" && !/^\d+\.\d+ /.test(l) && !/^usage:/.test(l));
  return { ...parsePktGen(r.stdout, r.stderr), exitCode: r.exitCode, why };
}

/**
 * pkt-gen on a VALE pair (receiver started first on vale0:1, then the sender on vale0:0), then
 * tx on each chosen interface. Numbers come from pkt-gen's own output, never assumed: a side
 * that could not run is null, with the reason in `notes`, and a failure in `failures`.
 */
export async function pktgenSmoke(
  o: PktGenSmokeOptions,
): Promise<{ pktgen: NonNullable<VerifyReport["pktgen"]>; failures: string[] }> {
  const failures: string[] = [];
  const notes: string[] = [];
  const out: NonNullable<VerifyReport["pktgen"]> = { interfaces: [], notes };
  const n = String(o.count);
  if (o.vale) {
    const rxRun = runPktGen(o.exec, [o.pktgen, "-i", "vale0:1", "-f", "rx", "-n", n, "-w", "0"]);
    // Give the receiver a moment to attach its port, so the sender's first batch has a peer.
    await Promise.race([rxRun, sleep(300)]);
    const tx = await runPktGen(o.exec, [
      o.pktgen,
      "-i",
      "vale0:0",
      "-f",
      "tx",
      "-n",
      n,
      "-l",
      String(o.size),
      "-w",
      "0",
    ]);
    const rx = await rxRun;
    out.vale = {
      txPps: tx.error ? null : pps(tx),
      rxPps: rx.error ? null : pps(rx),
      txPackets: tx.summary?.packets ?? null,
      rxPackets: rx.error ? null : (rx.summary?.packets ?? null),
    };
    if (tx.error || tx.exitCode !== 0 || !tx.summary || tx.summary.packets === 0)
      failures.push(
        `pkt-gen tx on vale0:0 moved no packets${tx.error ? `: ${tx.error.text} (${tx.error.hint})` : ` (exit ${tx.exitCode})`}`,
      );
    if (rx.error) notes.push(`VALE rx not measured: ${rx.why ?? rx.error.text}`);
    else if (!rx.summary || rx.summary.packets === 0)
      failures.push(`pkt-gen rx on vale0:1 received nothing (exit ${rx.exitCode})`);
  }
  for (const ifname of o.interfaces) {
    const r = await runPktGen(o.exec, [o.pktgen, "-i", `netmap:${ifname}`, "-f", "tx", "-n", n, "-w", "2"]);
    out.interfaces.push({ ifname, txPps: r.error ? null : pps(r) });
    if (r.error || !r.summary || r.summary.packets === 0)
      failures.push(`pkt-gen tx on ${ifname} moved no packets${r.error ? `: ${r.error.hint}` : ""}`);
  }
  return { pktgen: out, failures };
}
