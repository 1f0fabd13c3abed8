import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { execa } from "execa";
import { BusyError, ExitCode, UserError } from "../../toolkit/core/errors.js";
import { acquireLock, isPidAlive, LockHeldError, lockPath, readLock } from "../../toolkit/state/lock.js";
import { copyHostTree } from "../helpers/hosts.js";
import { cliPath } from "../helpers/paths.js";

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
  // Its own kind and exit code (6, busy), not bad input (2): nothing is wrong with the command.
  t.true(err instanceof BusyError);
  t.false(err instanceof UserError);
  t.is(err?.exitCode, ExitCode.busy);
  t.is(ExitCode.busy, 6);
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

test("the CLI refuses a held lock with exit 6 (busy), naming the holder, --json included; the lock is left alone", async (t) => {
  const dir = stateDir();
  const host = copyHostTree("debian12-e1000");
  const holder = { pid: process.pid, startedAt: "2026-01-02T03:04:05.000Z", command: "netmap-provision up" };
  writeFileSync(lockPath(dir), JSON.stringify(holder));
  const down = await execa(process.execPath, [cliPath, "down", "--root", host, "--state-dir", dir], {
    reject: false,
  });
  t.is(down.exitCode, 6, down.stderr);
  t.regex(
    down.stderr,
    new RegExp(
      `another netmap-provision run holds the lock .*: pid ${process.pid} since 2026-01-02T03:04:05.000Z \\(netmap-provision up\\)`,
    ),
  );
  t.regex(down.stderr, new RegExp(`hint: wait for pid ${process.pid} to finish`));
  const json = await execa(
    process.execPath,
    [cliPath, "down", "--json", "--root", host, "--state-dir", dir],
    {
      reject: false,
    },
  );
  t.is(json.exitCode, 6);
  t.like(JSON.parse(json.stdout), { ok: false, command: "down", error: { exitCode: 6 } });
  t.deepEqual(readLock(dir), holder);
});

test("the dead-man timer waits while the lock is held (busy, by exit code) and runs down once it is free", async (t) => {
  const dir = stateDir();
  const host = copyHostTree("debian12-e1000");
  writeFileSync(
    lockPath(dir),
    JSON.stringify({
      pid: process.pid,
      startedAt: "2026-01-02T03:04:05.000Z",
      command: "netmap-provision up",
    }),
  );
  const child = spawn(
    process.execPath,
    [cliPath, "deadman", "--state-dir", dir, "--timeout", "0", "--txid", "T", "--root", host],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout.on("data", (b) => {
    out += String(b);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!out.includes("waiting for the lock") && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  t.regex(out, /waiting for the lock \(netmap-provision up\)/);
  rmSync(lockPath(dir));
  t.is(await exited, 0, out);
  t.regex(out, /down succeeded/);
});
