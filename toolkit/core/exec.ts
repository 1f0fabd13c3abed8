import { appendFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { redactSecrets } from "./redact.js";

/**
 * The one way the toolkit runs a command: an argv array (never a shell string), logged with its
 * duration and exit code, output streamed line by line to whoever watches (a listr2 task, a log
 * file), and skipped in dry-run when it would change the host.
 */
export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Kill the process after this many milliseconds. */
  timeoutMs?: number;
  input?: string;
  /** True when the command changes the host: dry-run prints it instead of running it. */
  mutates?: boolean;
  /** Called for every line of stdout and stderr, as it arrives. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Append the command and all its output to this file. */
  logFile?: string;
  /** Throw on a non-zero exit (default true). */
  reject?: boolean;
}

export interface ExecResult {
  argv: readonly string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  /** True when dry-run skipped the command. */
  skipped: boolean;
  /** The signal that ended the process, when one did. */
  signal?: string;
}

/** What a command that failed carries: its argv, exit code, and output for the error message. */
export class ExecFailure extends Error {
  readonly result: ExecResult;
  readonly shortMessage: string;
  constructor(result: ExecResult) {
    const tail = (result.stderr || result.stdout).trim().split("\n").slice(-15).join("\n");
    const what = result.timedOut ? "timed out" : `exited with code ${result.exitCode}`;
    // Shown to the user: a URL's password in the argv or the output stays hidden.
    const short = redactSecrets(`\`${quoteArgv(result.argv)}\` ${what}`);
    super(tail ? `${short}:\n${redactSecrets(tail)}` : short);
    this.shortMessage = short;
    this.result = result;
  }
}

/** A command started in the background: signal it while it runs, await its end. */
export interface StartedCommand {
  /** Resolves when the process has exited (never rejects; `reject` does not apply). */
  readonly done: Promise<ExecResult>;
  /** True once the process has exited. */
  readonly exited: boolean;
  /** Send a signal (SIGINT to let a program print its summary, SIGKILL as the last resort). */
  signal(sig: NodeJS.Signals): void;
}

export interface Exec {
  readonly dryRun: boolean;
  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a read-only command and return at once (for programs stopped by a signal, such as pkt-gen). */
  start(argv: readonly string[], opts?: Omit<ExecOptions, "mutates" | "reject">): StartedCommand;
}

export interface ExecLogEntry {
  argv: readonly string[];
  cwd: string | undefined;
  exitCode: number;
  durationMs: number;
  skipped: boolean;
}

/** Quote an argv for display only (never executed through a shell). */
export function quoteArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(" ");
}

/** A command as the log file records it; logs outlive the run, so no URL password goes in. */
function logLine(argv: readonly string[], cwd: string | undefined): string {
  return redactSecrets(`$ ${quoteArgv(argv)}${cwd ? `   (in ${cwd})` : ""}\n`);
}

export function createExec(opts: { dryRun?: boolean; onCommand?: (e: ExecLogEntry) => void } = {}): Exec {
  const dryRun = opts.dryRun ?? false;
  const start = (argv: readonly string[], o: ExecOptions = {}): StartedCommand => {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error("exec: empty argv");
    if (o.logFile) appendFileSync(o.logFile, logLine(argv, o.cwd));
    const lineSink = (stream: "stdout" | "stderr") =>
      function* (line: unknown) {
        const text = String(line);
        o.onLine?.(text, stream);
        if (o.logFile) appendFileSync(o.logFile, `${redactSecrets(text)}\n`);
        yield text;
      };
    let exited = false;
    const pending: NodeJS.Signals[] = [];
    let sub: { kill(sig: NodeJS.Signals): boolean } | undefined;
    const started = performance.now();
    // execa is loaded on first use: read-only commands such as `status` never pay for it at start-up.
    const done = import("execa").then(async ({ execa }) => {
      const child = execa(file, args, {
        cwd: o.cwd,
        env: o.env,
        extendEnv: true,
        timeout: o.timeoutMs,
        input: o.input,
        reject: false,
        stripFinalNewline: true,
        stdin: o.input === undefined ? "ignore" : "pipe",
        stdout: o.onLine || o.logFile ? [lineSink("stdout")] : "pipe",
        stderr: o.onLine || o.logFile ? [lineSink("stderr")] : "pipe",
      });
      sub = child;
      for (const sig of pending.splice(0)) child.kill(sig);
      const r = await child;
      exited = true;
      const result: ExecResult = {
        argv,
        exitCode: r.exitCode ?? (r.timedOut ? 124 : r.signal ? 128 + signalNumber(r.signal) : 1),
        stdout: String(r.stdout ?? ""),
        stderr: String(r.stderr ?? ""),
        durationMs: Math.round(performance.now() - started),
        timedOut: r.timedOut,
        skipped: false,
      };
      if (r.signal) result.signal = r.signal;
      if (r.failed && r.exitCode === undefined && !r.timedOut && r.code === "ENOENT") {
        result.stderr = `${file}: command not found`;
        result.exitCode = 127;
      }
      if (o.logFile) appendFileSync(o.logFile, `# exit ${result.exitCode} after ${result.durationMs} ms\n`);
      opts.onCommand?.({
        argv,
        cwd: o.cwd,
        exitCode: result.exitCode,
        durationMs: result.durationMs,
        skipped: false,
      });
      return result;
    });
    return {
      done,
      get exited() {
        return exited;
      },
      signal(sig) {
        if (exited) return;
        if (sub) sub.kill(sig);
        else pending.push(sig);
      },
    };
  };
  return {
    dryRun,
    start,
    async run(argv, o = {}) {
      if (dryRun && o.mutates) {
        if (o.logFile) appendFileSync(o.logFile, logLine(argv, o.cwd));
        const r: ExecResult = {
          argv,
          exitCode: 0,
          stdout: "",
          stderr: "",
          durationMs: 0,
          timedOut: false,
          skipped: true,
        };
        opts.onCommand?.({ argv, cwd: o.cwd, exitCode: 0, durationMs: 0, skipped: true });
        return r;
      }
      const result = await start(argv, o).done;
      if ((o.reject ?? true) && result.exitCode !== 0) throw new ExecFailure(result);
      return result;
    },
  };
}

/** The number of a signal name, for the shell-style exit status 128 + n of a killed process. */
function signalNumber(sig: string): number {
  return (osConstants.signals as Record<string, number>)[sig] ?? 0;
}

/** A command as a report lists it: what ran, where, and in which step. */
export interface RanCommand {
  step: string;
  argv: string[];
  cwd?: string;
}

/**
 * The same exec, telling `on` about every command before it starts (run and start alike): how
 * up and down list what they ran, for the user and for the test that holds it to the plan.
 */
export function observeExec(
  base: Exec,
  on: (argv: readonly string[], cwd: string | undefined) => void,
): Exec {
  return {
    dryRun: base.dryRun,
    run(argv, o) {
      on(argv, o?.cwd);
      return base.run(argv, o);
    },
    start(argv, o) {
      on(argv, o?.cwd);
      return base.start(argv, o);
    },
  };
}
