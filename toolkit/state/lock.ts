import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { fileKind, readBoundedText } from "../core/bounded-read.js";
import { BusyError, UserError } from "../core/errors.js";
import { checkDirOption } from "./dirs.js";

/** Where the toolkit keeps its lock, journal, backups and installed.json on a real host. */
export const defaultStateDir = "/var/lib/netmap-provision";

/** What the lock file holds: who took it, when, and for what command line. */
export interface LockInfo {
  pid: number;
  startedAt: string;
  command: string;
}

export interface LockHandle {
  readonly path: string;
  readonly info: LockInfo;
  /** Remove the lock, but only if it is still ours (a takeover may have replaced it). */
  release(): void;
}

/** Another live process holds the lock: nothing was changed (exit 6, ExitCode.busy). */
export class LockHeldError extends BusyError {
  readonly holder: LockInfo;
  constructor(path: string, holder: LockInfo) {
    super(
      `another netmap-provision run holds the lock ${path}: pid ${holder.pid} since ${holder.startedAt} (${holder.command})`,
      `wait for pid ${holder.pid} to finish; if it is not netmap-provision (pid reused), remove ${path} by hand`,
    );
    this.holder = holder;
  }
}

export const lockPath = (stateDir: string): string => join(stateDir, "lock");

/** True unless the kernel says the pid does not exist (EPERM means alive, owned by someone else). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

export function readLock(stateDir: string): LockInfo | undefined {
  return parseLock(lockPath(stateDir));
}

function parseLock(path: string): LockInfo | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return undefined;
  }
  // Only netmap-provision writes the lock, always as a small regular file: anything else (a FIFO
  // that would block the read, a directory the takeover cannot remove) is refused, not taken over.
  if (!st.isFile())
    throw new UserError(
      `the lock ${path} is ${fileKind(st)}, not a lock file netmap-provision wrote`,
      `remove ${path} by hand (no netmap-provision run creates it) and run the command again`,
    );
  let text: string;
  try {
    text = readBoundedText(path, { what: "lock file", maxBytes: 64 * 1024 });
  } catch (e) {
    if ((e as { cause?: NodeJS.ErrnoException }).cause?.code === "ENOENT") return undefined;
    return { pid: 0, startedAt: "?", command: `unreadable lock file (${(e as Error).message})` };
  }
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === "number" && Number.isInteger(v.pid) && v.pid > 0) {
      return { pid: v.pid, startedAt: String(v.startedAt ?? "?"), command: String(v.command ?? "?") };
    }
  } catch {
    // fall through: garbage is treated as a lock held by nobody
  }
  return { pid: 0, startedAt: "?", command: "unreadable lock file" };
}

/**
 * Take the exclusive lock. The content is written to a private temp file (opened O_EXCL) and then
 * hard-linked to the lock name: link(2) fails with EEXIST like O_EXCL does, but a reader never sees
 * a half-written lock. A lock whose pid is gone is taken over with a warning.
 */
export function acquireLock(
  stateDir: string,
  opts: { command: string; pid?: number; warn?: (message: string) => void },
): LockHandle {
  // Checked here too, not only at the CLI: a recursive mkdir under /proc never returns.
  checkDirOption("--state-dir", stateDir, "state");
  mkdirSync(stateDir, { recursive: true });
  const path = lockPath(stateDir);
  const info: LockInfo = {
    pid: opts.pid ?? process.pid,
    startedAt: new Date().toISOString(),
    command: opts.command,
  };
  const tmp = `${path}.${info.pid}.tmp`;
  if (existsSync(tmp)) unlinkSync(tmp);
  const fd = openSync(tmp, "wx", 0o644);
  try {
    writeSync(fd, `${JSON.stringify(info)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(tmp, path);
        return handle(path, info);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const holder = parseLock(path);
      if (holder === undefined) continue; // released between our link and our read: try again
      if (holder.pid !== 0 && isPidAlive(holder.pid)) throw new LockHeldError(path, holder);
      takeOverStale(path, holder, info.pid);
      opts.warn?.(
        `took over a stale lock ${path} left by pid ${holder.pid} (started ${holder.startedAt}, ${holder.command}): that process no longer exists`,
      );
    }
    throw new BusyError(`could not take the lock ${path}: it keeps changing hands`, "retry in a moment");
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
}

/**
 * Move the stale lock out of the way under a private name first, then check it really is the stale
 * one: if another process took it over in between, put theirs back instead of deleting it.
 */
function takeOverStale(path: string, stale: LockInfo, myPid: number): void {
  const aside = `${path}.stale.${myPid}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const moved = parseLock(aside);
  if (moved && moved.pid !== stale.pid) {
    try {
      linkSync(aside, path);
    } catch {
      // someone else holds it now; the next link attempt reports them
    }
  }
  unlinkSync(aside);
}

function handle(path: string, info: LockInfo): LockHandle {
  return {
    path,
    info,
    release() {
      const now = parseLock(path);
      if (now && now.pid === info.pid && now.startedAt === info.startedAt) unlinkSync(path);
    },
  };
}

/** Run `fn` holding the lock; release it whatever happens. */
export async function withLock<T>(
  stateDir: string,
  opts: { command: string; warn?: (message: string) => void },
  fn: () => Promise<T>,
): Promise<T> {
  const lock = acquireLock(stateDir, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
