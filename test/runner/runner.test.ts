import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { RollbackError, StepError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import { runSteps } from "../../toolkit/runner/runner.js";
import type { Step, StepContext } from "../../toolkit/runner/step.js";
import { FIXTURE_RELEASE } from "../helpers/hosts.js";

type Log = string[];
const ctx = (): StepContext => ({ exec: createExec(), dryRun: false, data: {} });

function step(
  id: string,
  log: Log,
  opts: { fail?: boolean; failUndo?: boolean; deps?: string[] } = {},
): Step {
  return {
    describe: () => ({
      id,
      title: `step ${id}`,
      mutates: true,
      dependsOn: opts.deps ?? [],
      commands: [],
      files: [],
      checks: [],
    }),
    async run(_c, report) {
      report.progress(`running ${id}`);
      log.push(`run ${id}`);
      if (opts.fail) throw new Error(`${id} broke`);
    },
    async undo() {
      log.push(`undo ${id}`);
      if (opts.failUndo) throw new Error(`undo ${id} broke`);
    },
  };
}

test("runs steps in order and records each outcome", async (t) => {
  const log: Log = [];
  const r = await runSteps([step("a", log), step("b", log)], ctx(), { renderer: "silent" });
  t.true(r.ok);
  t.deepEqual(log, ["run a", "run b"]);
  t.deepEqual(
    r.outcomes.map((o) => o.status),
    ["passed", "passed"],
  );
});

test("a failure undoes the passed steps in reverse and skips dependents, saying why", async (t) => {
  const log: Log = [];
  const logDir = join(await mkdtemp(join(tmpdir(), "np-run-")), "logs");
  const r = await runSteps(
    [step("a", log), step("b", log), step("c", log, { fail: true }), step("d", log, { deps: ["c"] })],
    ctx(),
    { renderer: "silent", logDir },
  );
  t.false(r.ok);
  t.true(r.error instanceof StepError);
  t.deepEqual(log, ["run a", "run b", "run c", "undo b", "undo a"]);
  t.deepEqual(
    r.outcomes.map((o) => o.status),
    ["undone", "undone", "failed", "skipped"],
  );
  t.regex(r.outcomes[3]?.message ?? "", /c did not pass/);
  t.regex(readFileSync(join(logDir, "a.log"), "utf8"), /running a/);
});

test("an undo that fails becomes a RollbackError with recovery text", async (t) => {
  const log: Log = [];
  const r = await runSteps([step("a", log, { failUndo: true }), step("b", log, { fail: true })], ctx(), {
    renderer: "silent",
  });
  t.true(r.error instanceof RollbackError);
  t.is(r.outcomes[0]?.status, "undo-failed");
});

/** A step whose undo fails the way undoJournal does, with its forward commands in describe(). */
function journaledStep(log: Log, undoError: Error): Step {
  return {
    describe: () => ({
      id: "install",
      title: "Back up and install",
      mutates: true,
      dependsOn: [],
      commands: [
        { argv: ["depmod", FIXTURE_RELEASE], mutates: true },
        { argv: ["modinfo", "-n", "e1000"], mutates: false },
      ],
      files: [{ action: "replace", path: `/lib/modules/${FIXTURE_RELEASE}/kernel/e1000.ko` }],
      checks: [],
    }),
    async run() {
      log.push("run install");
    },
    async undo() {
      throw undoError;
    },
  };
}

test("a failed undo's RollbackError carries the undo's own recovery advice, not the step's forward commands", async (t) => {
  const advice = [
    "# transaction T is not completely undone; its journal is /var/lib/netmap-provision/journal/T.jsonl",
    `#   files: /lib/modules/${FIXTURE_RELEASE}/kernel/e1000.ko`,
    "netmap-provision down --force",
  ];
  const log: Log = [];
  const r = await runSteps(
    [
      journaledStep(
        log,
        new RollbackError("could not undo transaction T completely:\n  #2 install x: y", advice),
      ),
      step("verify", log, { fail: true }),
    ],
    ctx(),
    { renderer: "silent" },
  );
  t.true(r.error instanceof RollbackError);
  const e = r.error as RollbackError;
  t.is(e.exitCode, 3);
  t.deepEqual(e.recovery, [
    '# undo of "Back up and install" failed: could not undo transaction T completely:',
    ...advice,
  ]);
  t.false(
    e.recovery.some((l) => /^(depmod|modinfo)\b/.test(l)),
    e.recovery.join("\n"),
  );
  t.regex(e.hint ?? "", /netmap-provision down --force/);
  t.regex(e.message, /verify broke; and undoing the steps before it failed/);
});

test("an undo failing with a plain error names the step's files, and no forward command as recovery", async (t) => {
  const log: Log = [];
  const r = await runSteps(
    [journaledStep(log, new Error("disk on fire")), step("verify", log, { fail: true })],
    ctx(),
    {
      renderer: "silent",
    },
  );
  const e = r.error as RollbackError;
  t.true(e instanceof RollbackError);
  t.deepEqual(e.recovery, [
    '# undo of "Back up and install" failed: disk on fire',
    `# the step changes /lib/modules/${FIXTURE_RELEASE}/kernel/e1000.ko: check them by hand`,
  ]);
});

test("listr2's lines escape control characters and hide URL passwords in titles and progress", async (t) => {
  // listr2 writes to the terminal itself: run it in a child with the plain renderer and read that.
  const runner = new URL("../../toolkit/runner/runner.js", import.meta.url).href;
  const script = `
    const { runSteps } = await import(${JSON.stringify(runner)});
    const title = "Fetch https://user:s3cret@example.org/x.git on eth0\\u001b]0;owned\\u0007";
    const step = {
      describe: () => ({ id: "a", title, mutates: false, dependsOn: [], commands: [], files: [], checks: [] }),
      async run(_c, report) { report.progress("at \\u001b[2J https://u:s3cret@h/p"); },
    };
    await runSteps([step], { exec: null, dryRun: false, data: {} }, { renderer: "plain" });
  `;
  const { execa } = await import("execa");
  const r = await execa(process.execPath, ["--input-type=module", "-e", script], { all: true });
  t.regex(r.all, /Fetch https:\/\/user:\*\*\*@example\.org\/x\.git on eth0/);
  t.false(r.all.includes("s3cret"), r.all);
  t.false(
    r.all.includes("\u001b]0;") || r.all.includes("\u001b[2J") || r.all.includes("\u0007"),
    JSON.stringify(r.all),
  );
});
