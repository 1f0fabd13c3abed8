import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { readBoundedText } from "../core/bounded-read.js";
import { writeFileAtomic } from "../state/atomic-file.js";
import { isPidAlive } from "../state/lock.js";
import { readStateJson } from "../state/state-file.js";

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

const deadmanSchema = z.object({
  pid: z.number().int().min(2),
  txid: z.string().regex(/^[0-9A-Za-z-]{1,80}$/, "expected a transaction id"),
  timeoutSec: z.number().int().min(1).max(86_400),
  deadline: z.string().max(64),
});

/** The armed timer, or undefined; a damaged deadman.json is a UserError (exit 2) naming it. */
export function readDeadman(stateDir: string): DeadmanInfo | undefined {
  return readStateJson(deadmanPath(stateDir), deadmanSchema, { record: "a dead-man timer record" });
}

/**
 * Whether `pid` is the timer this record describes: a `deadman` run of this CLI for this txid.
 * deadman.json is outside input like any state file: its pid alone must never get a process
 * killed (a forged pid 1, or any pid reused since).
 */
function isOurTimer(info: DeadmanInfo): boolean {
  let argv: string[];
  try {
    argv = readBoundedText(`/proc/${info.pid}/cmdline`, { what: "cmdline", maxBytes: 64 * 1024 }).split("\0");
  } catch {
    return false;
  }
  const txid = argv.indexOf("--txid");
  return argv.includes("deadman") && txid > 0 && argv[txid + 1] === info.txid;
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
  if (info.pid !== process.pid && isPidAlive(info.pid) && isOurTimer(info)) {
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
    return (
      readBoundedText(confirmedPath(stateDir), { what: "confirm marker", maxBytes: 4096 }).trim() === txid
    );
  } catch {
    return false;
  }
}
