import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { confirmDeadman, deadmanPath, isConfirmed } from "../../toolkit/up/deadman.js";
import { cliPath } from "../helpers/paths.js";

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [cliPath, ...args], { encoding: "utf8", stdio: "pipe" });
    return { status: 0, stdout, stderr: "" };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { status: err.status, stdout: err.stdout, stderr: err.stderr };
  }
}

test("up refuses a host tree (--root): loading modules only makes sense on the host itself", (t) => {
  const root = mkdtempSync(join(tmpdir(), "np-up-root-"));
  t.teardown(() => rmSync(root, { recursive: true }));
  const r = cli(["up", "--root", root, "--state-dir", join(root, "state"), "--json"]);
  t.is(r.status, 2);
  t.regex(r.stderr, /only runs on the host itself/);
});

test("confirm without an armed timer says there is nothing to confirm (exit 2)", (t) => {
  const state = mkdtempSync(join(tmpdir(), "np-confirm-"));
  t.teardown(() => rmSync(state, { recursive: true }));
  const r = cli(["confirm", "--state-dir", state]);
  t.is(r.status, 2);
  t.regex(r.stderr, /no dead-man timer is armed/);
});

test("confirm writes the marker for the guarded transaction and stops the timer process", async (t) => {
  const state = mkdtempSync(join(tmpdir(), "np-confirm-"));
  t.teardown(() => rmSync(state, { recursive: true }));
  // A stand-in for the timer: a real process that confirm must kill. Its argv names the timer
  // (`deadman --txid tx-1`): confirm kills only the process the record describes.
  const { spawn } = await import("node:child_process");
  const sleeper = spawn(
    process.execPath,
    ["-e", "setTimeout(() => {}, 60_000)", "deadman", "--txid", "tx-1"],
    {
      stdio: "ignore",
    },
  );
  const exited = new Promise<string | null>((resolve) => sleeper.on("exit", (_c, sig) => resolve(sig)));
  writeFileSync(
    deadmanPath(state),
    JSON.stringify({ pid: sleeper.pid, txid: "tx-1", timeoutSec: 20, deadline: new Date().toISOString() }),
  );
  const info = confirmDeadman(state);
  t.is(info?.txid, "tx-1");
  t.is(await exited, "SIGTERM");
  t.true(isConfirmed(state, "tx-1"));
  t.false(isConfirmed(state, "tx-2"));
  t.false(existsSync(deadmanPath(state)));
});

test("up, down, confirm have --help; deadman is hidden from the command list", (t) => {
  for (const c of ["up", "down", "confirm"]) t.is(cli([c, "--help"]).status, 0, c);
  const top = cli(["--help"]).stdout;
  t.regex(top, /\bup\b/);
  t.regex(top, /\bconfirm\b/);
  t.notRegex(top, /deadman/);
});
