import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { ExecutionContext, TestFn } from "ava";
import { execa } from "execa";
import { copyHostTreeTo } from "./hosts.js";
import { cliPath } from "./paths.js";

/**
 * The hostile-input corpus's harness (issue 11). Each case runs the real CLI in a scratch tree:
 *
 *   <scratch>/cache   --cache-dir (writes allowed)
 *   <scratch>/state   --state-dir (writes allowed)
 *   <scratch>/tmp     TMPDIR (must be empty again when the command ends: unpack dirs cleaned)
 *   <scratch>/host    a copy of a fixture host tree for --root (must not change)
 *   <scratch>/in      the hostile inputs the case wrote (must not change)
 *   <scratch>/outside files an attack would like to reach (must not change)
 *
 * and asserts: the exit code, the message, no exit 70, no hang (a hard timeout), every --json run
 * prints one JSON document, and a before/after listing of the whole scratch tree equal outside
 * cache/ and state/.
 */
export interface Scratch {
  root: string;
  cache: string;
  state: string;
  tmp: string;
  host: string;
  in: string;
  outside: string;
  /** A path under in/ (for writing a hostile input). */
  input(name: string): string;
}

/** Make a scratch tree; `host` copies a fixture host tree (test/fixtures/hosts/<name>) into host/. */
export function scratch(t: ExecutionContext, o: { host?: string } = {}): Scratch {
  const root = mkdtempSync(join(tmpdir(), "np-hostile-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const s: Scratch = {
    root,
    cache: join(root, "cache"),
    state: join(root, "state"),
    tmp: join(root, "tmp"),
    host: join(root, "host"),
    in: join(root, "in"),
    outside: join(root, "outside"),
    input: (name) => join(root, "in", name),
  };
  for (const d of [s.cache, s.state, s.tmp, s.in, s.outside]) mkdirSync(d, { recursive: true });
  mkdirSync(join(s.outside, "etc"), { recursive: true });
  copyHostTreeTo(o.host ?? "debian12-e1000", s.host);
  return s;
}

/** type, mode, size and content hash (or link target) of every entry under `dir`, by relative path. */
export function listTree(dir: string, skip: (rel: string) => boolean = () => false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const p = join(d, name);
      const rel = relative(dir, p);
      if (skip(rel)) continue;
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(rel, `link ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${mode}`);
        walk(p);
      } else if (st.isFile()) {
        const h = createHash("sha256").update(readFileSync(p)).digest("hex").slice(0, 16);
        out.set(rel, `file ${mode} ${st.size} ${h}`);
      } else out.set(rel, `special ${mode} ${st.mode >> 12}`);
    }
  };
  walk(dir);
  return out;
}

export interface CliRun {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The parsed stdout when the run had --json. */
  json?: Record<string, unknown>;
}

/** Run the CLI as a user would, with TMPDIR in the scratch tree and a hard timeout. */
export async function runCli(
  s: Scratch,
  args: string[],
  o: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<CliRun> {
  const r = await execa(process.execPath, [cliPath, ...args], {
    reject: false,
    ...(o.cwd ? { cwd: o.cwd } : {}),
    timeout: o.timeoutMs ?? 60_000,
    forceKillAfterDelay: 2_000,
    stdin: "ignore",
    env: { NO_COLOR: "1", SSH_CONNECTION: "", TMPDIR: s.tmp, ...o.env },
  });
  const run: CliRun = {
    exitCode: r.exitCode,
    stdout: String(r.stdout ?? ""),
    stderr: String(r.stderr ?? ""),
    timedOut: Boolean(r.timedOut),
  };
  if (args.includes("--json")) {
    try {
      run.json = JSON.parse(run.stdout) as Record<string, unknown>;
    } catch {
      /* asserted by hostileCase */
    }
  }
  return run;
}

export interface HostileCase {
  args: string[];
  /** The exit code the case must end with (2 for bad input, 4 for a host that is not ready...). */
  exit: number;
  /** What the message (stderr, or the JSON's error) must say: the file and what to do. */
  message?: RegExp;
  timeoutMs?: number;
  env?: Record<string, string>;
  /** Working directory of the run (for relative paths as a user types them). */
  cwd?: string;
  /** Paths (relative to the scratch root) that may change besides cache/ and state/. */
  mayChange?: string[];
}

/**
 * Run one corpus case and assert the contract: the exit code, the message, never 70, no hang,
 * --json parses (with ok:false on failure), nothing changed outside cache/ and state/, TMPDIR empty.
 */
export async function hostileCase(t: ExecutionContext, s: Scratch, c: HostileCase): Promise<CliRun> {
  const allowed = ["cache", "state", ...(c.mayChange ?? [])];
  const skip = (rel: string) => allowed.some((a) => rel === a || rel.startsWith(`${a}/`));
  const before = listTree(s.root, skip);
  const r = await runCli(s, c.args, { timeoutMs: c.timeoutMs, env: c.env, ...(c.cwd ? { cwd: c.cwd } : {}) });
  const shown = `exit ${r.exitCode}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`;
  t.false(r.timedOut, `hung: ${c.args.join(" ")}\n${shown}`);
  t.not(r.exitCode, 70, `internal error on bad input\n${shown}`);
  t.is(r.exitCode, c.exit, shown);
  if (c.args.includes("--json")) {
    t.truthy(r.json, `--json printed no JSON document on stdout\n${shown}`);
    if (r.json && c.exit !== 0) t.is(r.json.ok, false, shown);
  }
  if (c.message) {
    const err = r.json?.error as { message?: string; hint?: string } | undefined;
    const text = `${r.stderr}\n${err?.message ?? ""}\n${err?.hint ?? ""}`;
    t.regex(text, c.message, shown);
  }
  const after = listTree(s.root, skip);
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter(
    (k) => before.get(k) !== after.get(k),
  );
  t.deepEqual(changed, [], `changed outside cache/ and state/:\n${shown}`);
  t.deepEqual(readdirSync(s.tmp), [], `left behind in TMPDIR\n${shown}`);
  return r;
}

/**
 * Declare corpus cases that run two at a time, not all at once: each case starts several CLI
 * processes, and on a 2-CPU machine a case's hard timeout must not be spent waiting for a CPU.
 */
export function corpusCases(
  test: TestFn,
): (title: string, body: (t: ExecutionContext) => Promise<void>) => void {
  const slots = { free: 2, waiting: [] as Array<() => void> };
  const limited = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (slots.free === 0) await new Promise<void>((r) => slots.waiting.push(r));
    else slots.free--;
    try {
      return await fn();
    } finally {
      const next = slots.waiting.shift();
      if (next) next();
      else slots.free++;
    }
  };
  return (title, body) => test(title, (t) => limited(() => body(t)));
}
