import { writeFileSync } from "node:fs";
import test, { type ExecutionContext } from "ava";
import {
  color,
  failWith,
  jsonDocument,
  jsonText,
  printJson,
  resetJsonRun,
  setCommandName,
  terminalSafe,
} from "../../toolkit/cli/output.js";
import { ProvisionError, RecipeError, RollbackError, UserError } from "../../toolkit/core/errors.js";
import { reportError } from "../../toolkit/up/up-report.js";
import { type HostileCase, hostileCase, type Scratch, scratch } from "../helpers/hostile.js";

/**
 * Hostile-input corpus, the --json contract (issue 11, point 5): whatever goes wrong (a bad
 * recipe, a missing file, an unknown option, a missing argument, a blocked host), every command
 * that takes --json prints exactly one JSON document on stdout, `{ok: false, command, error:
 * {message, hint, exitCode}}`, whose exitCode is the process's, while the human text goes to
 * stderr. Before, status, plan, up, recipe show, doctor, try and fetch printed nothing there.
 */

interface JsonFailure {
  ok: boolean;
  command: string;
  error: {
    message: string;
    hint?: string;
    exitCode: number;
    issues?: Array<{ file: string; line: number; col: number }>;
  };
}

/** One corpus case plus the document's shape: the command's name, error.exitCode = the exit code. */
async function jsonCase(
  t: ExecutionContext,
  s: Scratch,
  command: string,
  c: HostileCase & { message: RegExp },
): Promise<JsonFailure> {
  const r = await hostileCase(t, s, c);
  const doc = r.json as unknown as JsonFailure;
  t.is(doc?.command, command, r.stdout);
  t.is(doc?.error?.exitCode, r.exitCode ?? -1, r.stdout);
  t.regex(doc?.error?.message ?? "", c.message, r.stdout);
  // Human text still goes to stderr; stdout is the document alone (hostileCase parsed all of it).
  t.true(r.stderr.length > 0, "the error is on stderr too");
  return doc;
}

const dirs = (s: Scratch) => ["--cache-dir", s.cache, "--state-dir", s.state];

function badRecipe(s: Scratch): string {
  const file = s.input("bad.yaml");
  // A misspelt driver: exit 2 with file:line:col.
  writeFileSync(file, "name: t\nnetmap:\n  source: {kind: local, path: /tmp}\ndrivers: [ixgb]\n");
  return file;
}

test("status --json: --root that is not a directory, and an unknown option", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "status", {
    args: ["status", "--json", "--root", s.input("missing")],
    exit: 2,
    message: /--root .*missing: not a directory/,
  });
  const d = await jsonCase(t, s, "status", {
    args: ["status", "--json", "--bogus", "--root", s.host],
    exit: 2,
    message: /unknown option '--bogus'/,
  });
  t.regex(d.error.hint ?? "", /netmap-provision status --help/);
});

test("doctor --json: a blocked host (exit 4, no throw) and a missing --recipe file", async (t) => {
  const s = scratch(t, { host: "secure-boot" });
  const d = await jsonCase(t, s, "doctor", {
    args: ["doctor", "--json", "--root", s.host],
    exit: 4,
    message: /`up` would refuse: .*Unsigned module loading/,
  });
  // The findings are still there beside the error.
  t.true(Array.isArray((d as unknown as { checks: unknown[] }).checks));
  await jsonCase(t, s, "doctor", {
    args: ["doctor", "--json", "--root", s.host, "--recipe", s.input("nope.yaml")],
    exit: 2,
    message: /nope\.yaml:1:1: recipe file not found/,
  });
});

test("recipe show --json: a missing argument and a bad recipe (issues with file:line:col)", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "recipe show", {
    args: ["recipe", "show", "--json"],
    exit: 2,
    message: /missing required argument 'file'/,
  });
  const d = await jsonCase(t, s, "recipe show", {
    args: ["recipe", "show", "--json", badRecipe(s)],
    exit: 2,
    message: /bad\.yaml:4:\d+: .*"ixgb" is not a known netmap driver/,
  });
  t.like(d.error.issues?.[0], { line: 4 });
  t.regex(d.error.issues?.[0]?.file ?? "", /bad\.yaml$/);
});

test("recipe validate --json: one document with every file's result and the issues in error", async (t) => {
  const s = scratch(t);
  const r = await hostileCase(t, s, {
    args: ["recipe", "validate", "--json", "recipes/default.yaml", badRecipe(s)],
    exit: 2,
  });
  const doc = r.json as unknown as JsonFailure & { results: Array<{ ok: boolean }> };
  t.deepEqual(
    doc.results.map((x) => x.ok),
    [true, false],
  );
  t.is(doc.command, "recipe validate");
  t.is(doc.error.exitCode, 2);
  t.like(doc.error.issues?.[0], { line: 4 });
});

test("plan --json: a bad recipe (exit 2) and a blocked host (exit 4)", async (t) => {
  const s = scratch(t, { host: "mgmt-on-swapped-driver" });
  await jsonCase(t, s, "plan", {
    args: ["plan", "--json", "--recipe", badRecipe(s), "--root", s.host, ...dirs(s)],
    exit: 2,
    message: /"ixgb" is not a known netmap driver/,
  });
  const d = await jsonCase(t, s, "plan", {
    args: ["plan", "--json", "--root", s.host, ...dirs(s)],
    exit: 4,
    message: /blocker\(s\): .*interface\(s\) eth0 carry the management connection/,
  });
  // One blocker: its own fix is the hint; several: the hint points at each one's fix.
  const blockers = (d as unknown as { blockers: Array<{ fix: string }> }).blockers;
  t.true(Array.isArray(blockers) && blockers.length > 0);
  t.is(d.error.hint, blockers.length === 1 ? blockers[0]?.fix : d.error.hint);
  if (blockers.length > 1) t.regex(d.error.hint ?? "", /each blocker says its fix/);
});

test("up --json: a host tree, a missing recipe", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "up", {
    args: ["up", "--json", "--root", s.host, ...dirs(s)],
    exit: 2,
    message: /only runs on the host itself/,
  });
  await jsonCase(t, s, "up", {
    args: ["up", "--json", "--recipe", s.input("nope.yaml"), ...dirs(s)],
    exit: 2,
    message: /nope\.yaml:1:1: recipe file not found/,
  });
});

test("down --json: --root that is not a directory, an unknown option", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "down", {
    args: ["down", "--json", "--root", s.input("missing"), "--state-dir", s.state],
    exit: 2,
    message: /not a directory/,
  });
  await jsonCase(t, s, "down", {
    args: ["down", "--json", "--state-dir", s.state, "--recipe", "x"],
    exit: 2,
    message: /unknown option '--recipe'/,
  });
});

test("build --json: a bad --jobs, a bad recipe", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "build", {
    args: ["build", "--json", "--jobs", "0", "--cache-dir", s.cache],
    exit: 2,
    message: /--jobs 0: expected a whole number/,
  });
  await jsonCase(t, s, "build", {
    args: ["build", "--json", "--recipe", badRecipe(s), "--cache-dir", s.cache],
    exit: 2,
    message: /"ixgb" is not a known netmap driver/,
  });
});

test("fetch --json: neither --out nor --import, a bad recipe", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "fetch", {
    args: ["fetch", "--json", "--cache-dir", s.cache],
    exit: 2,
    message: /fetch needs --out FILE/,
  });
  await jsonCase(t, s, "fetch", {
    args: ["fetch", "--json", "--recipe", badRecipe(s), "--out", s.input("x.tar"), "--cache-dir", s.cache],
    exit: 2,
    message: /"ixgb" is not a known netmap driver/,
  });
});

test("kernel build --json: a missing recipe, an unknown option", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "kernel build", {
    args: ["kernel", "build", "--json", "--recipe", s.input("nope.yaml"), ...dirs(s)],
    exit: 2,
    message: /recipe file not found/,
  });
  const d = await jsonCase(t, s, "kernel build", {
    args: ["kernel", "build", "--json", "--nope"],
    exit: 2,
    message: /unknown option '--nope'/,
  });
  t.regex(d.error.hint ?? "", /netmap-provision kernel build --help/);
});

test("confirm --json: no armed timer", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "confirm", {
    args: ["confirm", "--json", "--state-dir", s.state],
    exit: 2,
    message: /no dead-man timer is armed/,
  });
});

test("try --json: a bad --memory, a bad recipe (before any guest boots)", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "try", {
    args: ["try", "--json", "--memory", "1", ...dirs(s)],
    exit: 2,
    message: /--memory 1: expected a whole number from 256/,
  });
  await jsonCase(t, s, "try", {
    args: ["try", "--json", "--recipe", badRecipe(s), ...dirs(s)],
    exit: 2,
    message: /"ixgb" is not a known netmap driver/,
  });
});

test("an unknown command with --json still prints one document", async (t) => {
  const s = scratch(t);
  await jsonCase(t, s, "netmap-provision", {
    args: ["bogus", "--json"],
    exit: 2,
    message: /unknown command 'bogus'/,
  });
});

test("a success document gains ok: true and the command's name", async (t) => {
  const s = scratch(t);
  const r = await hostileCase(t, s, { args: ["status", "--json", "--root", s.host], exit: 0 });
  t.like(r.json, { ok: true, command: "status" });
});

// The document itself, for the paths the CLI cannot be driven into from outside (a bug: exit 70).

test("jsonDocument: an unexpected error is exit 70 with a message; failWith and printJson merge", (t) => {
  resetJsonRun();
  setCommandName("status");
  t.deepEqual(jsonDocument(70, new TypeError("boom")), {
    ok: false,
    command: "status",
    error: {
      message: "internal error (a bug in netmap-provision, please report it): boom",
      hint: "the stack trace is on stderr",
      exitCode: 70,
    },
  });
  resetJsonRun();
  setCommandName("doctor");
  printJson({ ok: true, blocked: true, checks: [] });
  failWith(new ProvisionError("`up` would refuse: x", { exitCode: 4 }));
  process.exitCode = 0;
  t.deepEqual(jsonDocument(4), {
    ok: false,
    command: "doctor",
    blocked: true,
    checks: [],
    error: { message: "`up` would refuse: x", exitCode: 4 },
  });
  resetJsonRun();
  setCommandName("recipe show");
  const e = new RecipeError([{ file: "r.yaml", line: 2, col: 3, message: "bad" }]);
  t.like(jsonDocument(2, e), { ok: false, error: { exitCode: 2, issues: [{ line: 2, col: 3 }] } });
  // A non-zero exit with nothing said still gets an error naming the exit code.
  resetJsonRun();
  setCommandName("up");
  t.deepEqual(jsonDocument(1), {
    ok: false,
    command: "up",
    error: { message: "up exited with code 1", exitCode: 1 },
  });
  t.like(jsonDocument(0), { ok: true, command: "up" });
  t.is(new UserError("x").exitCode, 2);
  resetJsonRun();
});

test("jsonDocument: an up or down report's RollbackError keeps its recovery lines (exit 3)", (t) => {
  resetJsonRun();
  setCommandName("up");
  const recovery = [
    "# transaction T is not completely undone; its journal is /j/T.jsonl",
    "netmap-provision down --force",
  ];
  const report = { ok: false, error: reportError(new RollbackError("could not undo", recovery)) };
  t.deepEqual(report.error.recovery, recovery);
  printJson(report);
  failWith(report.error);
  process.exitCode = 0;
  t.like(jsonDocument(3), {
    ok: false,
    command: "up",
    error: { message: "could not undo", exitCode: 3, recovery },
  });
  resetJsonRun();
});

test("human writers on a terminal: the toolkit's colours pass, every other escape is shown", (t) => {
  const tty = process.stdout.isTTY;
  const noColor = process.env.NO_COLOR;
  const term = process.env.TERM;
  t.teardown(() => {
    process.stdout.isTTY = tty;
    if (noColor === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = noColor;
    process.env.TERM = term;
  });
  process.stdout.isTTY = true;
  delete process.env.NO_COLOR;
  process.env.TERM = "xterm";
  const line = `${color.red("FAIL")} eth\u001b]0;pwned\u0007 \u001b[8mhidden\u001b[0m https://u:pw@h/x`;
  t.is(
    terminalSafe(line),
    "\u001b[31mFAIL\u001b[0m eth\\x1b]0;pwned\\x07 \\x1b[8mhidden\u001b[0m https://u:***@h/x",
  );
  process.env.NO_COLOR = "1";
  t.is(terminalSafe(`${color.red("FAIL")} \u001b[31m`), "FAIL \\x1b[31m");
});

test("the JSON text hides URL passwords in every string", (t) => {
  const text = jsonText({ url: "https://user:s3cret@example.org/netmap", nested: ["git://a:b@c/d"] });
  t.false(text.includes("s3cret"));
  t.deepEqual(JSON.parse(text), { url: "https://user:***@example.org/netmap", nested: ["git://a:***@c/d"] });
});
