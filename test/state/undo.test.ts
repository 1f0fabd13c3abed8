import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { execa } from "execa";
import { RollbackError, UserError } from "../../toolkit/core/errors.js";
import { createExec, type Exec } from "../../toolkit/core/exec.js";
import { recoverPending } from "../../toolkit/modules/restore.js";
import { pendingTransaction, readJournal } from "../../toolkit/state/journal.js";
import { undoSteps } from "../../toolkit/state/undo.js";
import { downOps, undoTable } from "../../toolkit/state/undo-table.js";
import { FIXTURE_RELEASE } from "../helpers/hosts.js";
import { cliPath, repoRoot } from "../helpers/paths.js";
import { tempDirs } from "../helpers/temp.js";

const temp = tempDirs(test);
const kver = FIXTURE_RELEASE;
const sha256 = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
const exec = createExec();

/** Every op the toolkit journals: the first argument of each tx.step(...) / tx.begin(...) call. */
function journaledOps(): Set<string> {
  const ops = new Set<string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".ts"))
        for (const m of readFileSync(p, "utf8").matchAll(/\.(?:step|begin)\(\s*"([a-z][a-z0-9-]*)"/g))
          ops.add(m[1] ?? "");
    }
  };
  walk(join(repoRoot, "toolkit"));
  return ops;
}

test("the undo table and the down ops are exactly the ops the toolkit journals", (t) => {
  const tabled = new Set([...Object.keys(undoTable), ...downOps]);
  const journaled = journaledOps();
  t.true(journaled.has("unload") && journaled.has("install"), [...journaled].join(", "));
  t.deepEqual([...journaled].sort(), [...tabled].sort());
  // What `up` journals is what the undo table undoes: load and unload included.
  for (const op of ["mkdir", "backup", "install", "move-aside", "write-file", "regenerate-initramfs"])
    t.true(op in undoTable, op);
  for (const op of ["depmod", "load", "unload"]) t.true(op in undoTable, op);
});

/** A state dir holding one interrupted transaction of `kind`, written line by line. */
function journalWith(kind: "up" | "down", root: string, steps: Array<{ op: string; args: object }>) {
  const state = temp("np-undo-state-");
  const txid = `20260101T000000000Z-${kind}-1`;
  const dir = join(state, "journal");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${txid}.jsonl`);
  const lines = [
    { seq: 0, status: "open", txid, kind, pid: 1, at: "2026-01-01T00:00:00.000Z", meta: { root, kver } },
    ...steps.map((s, i) => ({ seq: i + 1, status: "begin", op: s.op, args: s.args, at: "x" })),
  ];
  writeFileSync(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
  return { state, file, txid };
}

test("an op the undo table does not know is refused (exit 2) naming the op and the journal, before anything is undone", async (t) => {
  const root = temp("np-undo-root-");
  const conf = join(root, "etc", "modprobe.d", "x.conf");
  mkdirSync(join(root, "etc", "modprobe.d"), { recursive: true });
  writeFileSync(conf, "ours\n");
  const j = journalWith("up", root, [
    { op: "write-file", args: { path: conf, sha256: sha256("ours\n") } },
    { op: "frobnicate", args: { path: "/etc/passwd" } },
  ]);
  const before = readFileSync(j.file, "utf8");
  const message = new RegExp(
    `the journal ${j.file.replaceAll(/[.*+?^${}()|[\]\\/]/g, "\\$&")} holds op "frobnicate" \\(step #2\\), which netmap-provision never journals in an "up" transaction`,
  );
  for (const run of [
    () => undoSteps(readJournal(j.file), { exec, stateDir: j.state }),
    () => recoverPending(j.state, { exec, root }),
  ]) {
    const err = await t.throwsAsync(run, { instanceOf: UserError, message });
    t.is(err?.exitCode, 2);
  }
  t.is(readFileSync(j.file, "utf8"), before, "nothing marked undone");
  t.is(readFileSync(conf, "utf8"), "ours\n", "the step before it was not undone either");
});

test("an interrupted down naming an op down never journals is refused too, not finished around it", async (t) => {
  const root = temp("np-undo-root-");
  const j = journalWith("down", root, [{ op: "unload", args: { module: "e1000", root } }]);
  const err = await t.throwsAsync(recoverPending(j.state, { exec, root }), {
    instanceOf: UserError,
    message: /holds op "unload" \(step #1\), which netmap-provision never journals in a "down" transaction/,
  });
  t.is(err?.exitCode, 2);
  t.truthy(pendingTransaction(j.state), "still pending");
});

/**
 * An interrupted up whose install undo meets a file something else changed: the RollbackError's
 * recovery is the journal's own advice (not the install step's forward commands), and running
 * the command it ends with, for real, puts the original back.
 */
test("a failed undo carries the journal's advice: steps left, their files, what down --force does; that command recovers", async (t) => {
  const root = temp("np-undo-root-");
  const dir = join(root, "lib", "modules", kver, "kernel", "drivers", "net");
  mkdirSync(dir, { recursive: true });
  const dest = join(dir, "e1000.ko");
  const original = "stock e1000 bytes\n";
  writeFileSync(dest, "changed by someone else since\n");
  const j = journalWith("up", root, []);
  const backups = join(j.state, "backups", kver);
  mkdirSync(backups, { recursive: true });
  const r = {
    path: dest,
    backupPath: join(backups, `${sha256(original)}.ko`),
    sha256: sha256(original),
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtimeMs: 1_700_000_000_000,
    size: original.length,
  };
  writeFileSync(r.backupPath, original);
  // The backup, the install over it, depmod, a load (netmap is not loaded under this root).
  const lines = [
    { seq: 1, status: "begin", op: "backup", args: r, at: "x" },
    { seq: 1, status: "done", at: "x" },
    {
      seq: 2,
      status: "begin",
      op: "install",
      args: { src: "/x", dest, sha256: sha256("patched"), replaced: r },
    },
    { seq: 2, status: "done", at: "x" },
    { seq: 3, status: "begin", op: "depmod", args: { root, kver }, at: "x" },
    { seq: 4, status: "begin", op: "load", args: { module: "netmap", root }, at: "x" },
  ].map((l) => ({ at: "x", ...l }));
  writeFileSync(j.file, lines.map((l) => `${JSON.stringify(l)}\n`).join(""), { flag: "a" });

  // depmod is made to fail too: a deferred undo that fails leaves its step to do, and says so.
  const noDepmod: Exec = {
    dryRun: false,
    start: exec.start,
    run: (argv, o) =>
      argv[0] === "depmod" ? Promise.reject(new Error("depmod: sabotaged")) : exec.run(argv, o),
  };
  const err = await t.throwsAsync(undoSteps(readJournal(j.file), { exec: noDepmod, stateDir: j.state }), {
    instanceOf: RollbackError,
  });
  t.is(err?.exitCode, 3);
  const rec = err?.recovery ?? [];
  t.log(rec.join("\n"));
  t.is(rec[0], `# transaction ${j.txid} is not completely undone; its journal is ${j.file}`);
  t.true(
    rec.includes(
      `# not undone: #2 install ${dest}: ${dest} holds neither the installed file nor the one it replaced: something else changed it since`,
    ),
    rec.join("\n"),
  );
  t.true(rec.includes(`#   files: ${dest}, ${r.backupPath}`), rec.join("\n"));
  t.true(
    rec.some((l) =>
      l.startsWith(
        `# not undone: depmod ${root} ${kver} (for #3 depmod ${kver}): depmod failed for kernel ${kver} under ${root}`,
      ),
    ),
  );
  t.true(rec.some((l) => l.includes("resumes that journal: it undoes the 2 step(s) left")));
  t.true(
    rec.includes(`#   #3 depmod ${kver}: run \`depmod -b ${root} ${kver}\` again once the files are back`),
  );
  t.true(
    rec.includes(
      `#   #2 install ${dest}: put the backup ${r.backupPath} (sha256 ${r.sha256.slice(0, 12)}…) back at ${dest}`,
    ),
  );
  t.true(rec.some((l) => l.startsWith(`# --force puts the originals back over ${dest},`)));
  const command = rec.at(-1) ?? "";
  t.is(command, `netmap-provision down --force --state-dir ${j.state} --root ${root}`);
  t.false(
    rec.some((l) => /^(depmod|modinfo)\b/.test(l)),
    "no forward command passed off as recovery",
  );
  // The steps that could be undone are marked so; the two that failed are left to `down`.
  t.deepEqual(
    readJournal(j.file).steps.map((s) => [s.op, s.undone]),
    [
      ["backup", true],
      ["install", false],
      ["depmod", false],
      ["load", true],
    ],
  );

  // The advice, run as printed (the real CLI): the original is back, the journal closed.
  const [, ...args] = command.split(" ");
  const run = await execa(process.execPath, [cliPath, ...args, "--json"], { reject: false });
  t.is(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  t.like(JSON.parse(run.stdout), { ok: true, resumed: "rolled-back" });
  t.is(readFileSync(dest, "utf8"), original);
  t.is(readJournal(j.file).closed, "rolled-back");
});
