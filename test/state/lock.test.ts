import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { UserError } from "../../toolkit/core/errors.js";
import { acquireLock, isPidAlive, LockHeldError, lockPath, readLock } from "../../toolkit/state/lock.js";

const stateDir = () => mkdtempSync(join(tmpdir(), "np-lock-"));

/** A pid that certainly existed and is now gone: a child that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(r.stdout);
}

test("acquire writes {pid, startedAt, command}; release removes it", (t) => {
  const dir = stateDir();
  const lock = acquireLock(dir, { command: "netmap-provision up" });
  const onDisk = JSON.parse(readFileSync(lockPath(dir), "utf8"));
  t.is(onDisk.pid, process.pid);
  t.is(onDisk.command, "netmap-provision up");
  t.regex(onDisk.startedAt, /^\d{4}-\d\d-\d\dT/);
  lock.release();
  t.false(existsSync(lockPath(dir)));
});

test("a second acquirer is refused with the holder's pid and start time", (t) => {
  const dir = stateDir();
  const lock = acquireLock(dir, { command: "netmap-provision up" });
  const err = t.throws(() => acquireLock(dir, { command: "netmap-provision down" }), {
    instanceOf: LockHeldError,
  });
  t.true(err instanceof UserError);
  t.true(err?.message.includes(`pid ${process.pid}`));
  t.true(err?.message.includes(lock.info.startedAt));
  lock.release();
});

test("a lock held by another live process (our parent) is refused, naming that pid", (t) => {
  const dir = stateDir();
  mkdirSync(dir, { recursive: true });
  const holder = {
    pid: process.ppid,
    startedAt: "2026-01-02T03:04:05.000Z",
    command: "netmap-provision up --recipe x",
  };
  writeFileSync(lockPath(dir), JSON.stringify(holder));
  t.true(isPidAlive(process.ppid));
  const err = t.throws(() => acquireLock(dir, { command: "netmap-provision down" }), {
    instanceOf: LockHeldError,
  });
  t.regex(err?.message ?? "", new RegExp(`pid ${process.ppid} since 2026-01-02T03:04:05.000Z`));
  t.deepEqual(readLock(dir), holder, "the holder's lock is left alone");
});

test("a stale lock (pid gone) is taken over with a warning", (t) => {
  const dir = stateDir();
  const pid = deadPid();
  t.false(isPidAlive(pid));
  writeFileSync(
    lockPath(dir),
    JSON.stringify({ pid, startedAt: "2026-01-01T00:00:00.000Z", command: "netmap-provision up" }),
  );
  const warnings: string[] = [];
  const lock = acquireLock(dir, { command: "netmap-provision down", warn: (m) => warnings.push(m) });
  t.is(readLock(dir)?.pid, process.pid);
  t.is(warnings.length, 1);
  t.regex(warnings[0] ?? "", new RegExp(`stale lock .* pid ${pid} `));
  lock.release();
});

test("release leaves a lock that is no longer ours", (t) => {
  const dir = stateDir();
  const lock = acquireLock(dir, { command: "a" });
  const other = { pid: process.ppid, startedAt: "x", command: "b" };
  writeFileSync(lockPath(dir), JSON.stringify(other));
  lock.release();
  t.deepEqual(readLock(dir), other);
});
