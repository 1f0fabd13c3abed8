import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readJsonRecord, writeFileAtomic } from "../state/atomic-file.js";
import { isPidAlive } from "../state/lock.js";

/**
 * The dead-man timer for swapping the management interface's driver: a detached process that
 * runs `down` after a timeout unless `confirm` arrives first. If the swap cut the user's session,
 * nobody can confirm, and the host comes back by itself.
 */
export interface DeadmanInfo {
  pid: number;
  /** The up transaction it guards: a confirmation is only valid for this one. */
  txid: string;
  timeoutSec: number;
  deadline: string;
}

export const deadmanPath = (stateDir: string): string => join(stateDir, "deadman.json");
export const confirmedPath = (stateDir: string): string => join(stateDir, "confirmed");
export const deadmanLog = (stateDir: string): string => join(stateDir, "deadman.log");

export function readDeadman(stateDir: string): DeadmanInfo | undefined {
  return readJsonRecord<DeadmanInfo>(deadmanPath(stateDir));
}

/** The CLI entry, found from this compiled module (dist/toolkit/up -> dist/toolkit/cli/main.js). */
const cliMain = (): string => fileURLToPath(new URL("../cli/main.js", import.meta.url));

/** Start the timer: `node <cli> deadman ...`, detached in its own session so it outlives `up` and an SSH hangup. */
export function armDeadman(o: {
  stateDir: string;
  root: string;
  txid: string;
  timeoutSec: number;
}): DeadmanInfo {
  mkdirSync(o.stateDir, { recursive: true });
  if (existsSync(confirmedPath(o.stateDir))) unlinkSync(confirmedPath(o.stateDir));
  const log = openSync(deadmanLog(o.stateDir), "a");
  const child = spawn(
    process.execPath,
    [
      cliMain(),
      "deadman",
      "--state-dir",
      o.stateDir,
      "--root",
      o.root,
      "--timeout",
      String(o.timeoutSec),
      "--txid",
      o.txid,
    ],
    { detached: true, stdio: ["ignore", log, log] },
  );
  child.unref();
  if (child.pid === undefined) throw new Error("could not start the dead-man timer process");
  const info: DeadmanInfo = {
    pid: child.pid,
    txid: o.txid,
    timeoutSec: o.timeoutSec,
    deadline: new Date(Date.now() + o.timeoutSec * 1000).toISOString(),
  };
  writeFileAtomic(deadmanPath(o.stateDir), `${JSON.stringify(info)}\n`);
  return info;
}

/** Stop the timer (confirm, or `up` rolled back by itself): kill it and forget it. */
export function disarmDeadman(stateDir: string): DeadmanInfo | undefined {
  const info = readDeadman(stateDir);
  if (!info) return undefined;
  if (info.pid !== process.pid && isPidAlive(info.pid)) {
    try {
      process.kill(info.pid, "SIGTERM");
    } catch {
      // exited meanwhile
    }
  }
  if (existsSync(deadmanPath(stateDir))) unlinkSync(deadmanPath(stateDir));
  return info;
}

/** `confirm`: the marker first (the timer checks it even if the kill is lost), then the kill. */
export function confirmDeadman(stateDir: string): DeadmanInfo | undefined {
  const info = readDeadman(stateDir);
  if (!info) return undefined;
  writeFileAtomic(confirmedPath(stateDir), `${info.txid}\n`);
  disarmDeadman(stateDir);
  return info;
}

/** Whether `confirm` arrived for this transaction. */
export function isConfirmed(stateDir: string, txid: string): boolean {
  try {
    return readFileSync(confirmedPath(stateDir), "utf8").trim() === txid;
  } catch {
    return false;
  }
}
