import { appendFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { UserError } from "../../toolkit/core/errors.js";
import {
  commit,
  listJournals,
  openTransaction,
  pendingTransaction,
  readJournal,
  resumeTransaction,
} from "../../toolkit/state/journal.js";
import { FIXTURE_RELEASE } from "../helpers/hosts.js";

const stateDir = () => mkdtempSync(join(tmpdir(), "np-journal-"));

test("entries are begin/done JSON lines after an open entry; commit closes the transaction", async (t) => {
  const dir = stateDir();
  const tx = openTransaction(dir, "up", { root: "/" });
  t.is(tx.file, join(dir, "journal", `${tx.txid}.jsonl`));
  t.regex(tx.txid, /^\d{8}T\d{9}Z-up-\d+$/);
  await tx.step("depmod", { root: "/", kver: FIXTURE_RELEASE }, () => {});
  const seq = tx.begin("load", { module: "netmap" });
  const lines = readFileSync(tx.file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  t.like(lines[0], {
    seq: 0,
    status: "open",
    kind: "up",
    txid: tx.txid,
    pid: process.pid,
    meta: { root: "/" },
  });
  t.like(lines[1], { seq: 1, status: "begin", op: "depmod", args: { kver: FIXTURE_RELEASE } });
  t.like(lines[2], { seq: 1, status: "done" });
  t.like(lines[3], { seq: 2, status: "begin", op: "load", args: { module: "netmap" } });
  t.is(seq, 2);

  const pending = pendingTransaction(dir);
  t.is(pending?.txid, tx.txid);
  t.deepEqual(
    pending?.steps.map((s) => [s.seq, s.op, s.done]),
    [
      [1, "depmod", true],
      [2, "load", false],
    ],
  );
  commit(tx);
  t.is(pendingTransaction(dir), undefined);
  t.is(readJournal(tx.file).closed, "commit");
});

test("a torn last line (crash mid-write) is ignored, and cut off before appending again", (t) => {
  const dir = stateDir();
  const tx = openTransaction(dir, "up");
  tx.begin("install", { src: "a", dest: "b", sha256: "c" });
  appendFileSync(tx.file, '{"seq":2,"status":"begin","op":"mov');
  const j = readJournal(tx.file);
  t.true(j.torn);
  t.deepEqual(
    j.steps.map((s) => s.op),
    ["install"],
  );
  const again = resumeTransaction(j, dir);
  again.undone(1);
  const after = readJournal(tx.file);
  t.false(after.torn);
  t.true(after.steps[0]?.undone);
});

test("a corrupt line in the middle is an error, not silently skipped", (t) => {
  const dir = stateDir();
  const tx = openTransaction(dir, "down");
  appendFileSync(tx.file, "not json\n");
  tx.begin("depmod", { root: "/", kver: "k" });
  t.throws(() => readJournal(tx.file), { instanceOf: UserError, message: /line 2 is corrupt/ });
});

test("a new transaction is refused while another one is pending", (t) => {
  const dir = stateDir();
  const first = openTransaction(dir, "up");
  const err = t.throws(() => openTransaction(dir, "down"), { instanceOf: UserError });
  t.true(err?.message.includes(first.txid));
  commit(first);
  const second = openTransaction(dir, "down");
  t.is(listJournals(dir).length, 2);
  t.is(pendingTransaction(dir)?.txid, second.txid);
});
