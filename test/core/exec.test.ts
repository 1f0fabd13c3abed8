import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { createExec, ExecFailure, quoteArgv } from "../../toolkit/core/exec.js";
import { fixture } from "../helpers/paths.js";

const script = fixture("bin", "say-lines");

test("runs an argv, streams lines of both streams, logs them", async (t) => {
  const log = join(mkdtempSync(join(tmpdir(), "np-exec-")), "step.log");
  const seen: string[] = [];
  const r = await createExec().run([script, "0"], { logFile: log, onLine: (l, s) => seen.push(`${s}:${l}`) });
  t.is(r.exitCode, 0);
  t.deepEqual(seen.sort(), ["stderr:err one", "stdout:out one", "stdout:out two"]);
  const text = readFileSync(log, "utf8");
  t.regex(text, /^\$ .*say-lines 0/m);
  t.regex(text, /# exit 0 after \d+ ms/);
});

test("a non-zero exit throws ExecFailure carrying the exit code and output tail", async (t) => {
  const err = await t.throwsAsync(createExec().run([script, "3"]), { instanceOf: ExecFailure });
  t.is(err?.result.exitCode, 3);
  t.regex(err?.message ?? "", /exited with code 3/);
  t.regex(err?.message ?? "", /err one/);
});

test("reject:false returns the failure instead", async (t) => {
  const r = await createExec().run([script, "5"], { reject: false });
  t.is(r.exitCode, 5);
});

test("dry-run skips mutating commands but still runs read-only probes", async (t) => {
  const ex = createExec({ dryRun: true });
  const skipped = await ex.run([script, "7"], { mutates: true });
  t.true(skipped.skipped);
  const probed = await ex.run([script, "0"]);
  t.false(probed.skipped);
  t.is(probed.stdout, "out one\nout two");
});

test("a missing program is exit 127 with a clear message", async (t) => {
  const r = await createExec().run(["/nonexistent/prog"], { reject: false });
  t.is(r.exitCode, 127);
});

test("metacharacters are arguments, not shell syntax", async (t) => {
  const r = await createExec().run(["printf", "%s", "a; rm -rf / $(x) `y`"]);
  t.is(r.stdout, "a; rm -rf / $(x) `y`");
  t.is(quoteArgv(["echo", "a b", "c'd"]), "echo 'a b' 'c'\\''d'");
});
