import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { StepError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import { backupFile, readBackupMeta, restoreFromBackup } from "../../toolkit/modules/backup.js";
import { resolveFromModulesDep, resolveModule } from "../../toolkit/modules/resolve.js";
import { openTransaction, readJournal } from "../../toolkit/state/journal.js";
import { kver, makeSysroot, sha256 } from "./sysroot.js";

test("backup copies a real module into backups/<kver>/<sha256>.ko.xz with its metadata, once", async (t) => {
  const sr = makeSysroot({ compress: "xz" });
  const stock = join(sr.modDir, sr.stockE1000);
  chmodSync(stock, 0o640);
  utimesSync(stock, new Date(), new Date("2024-05-06T07:08:09Z"));
  const tx = openTransaction(sr.stateDir, "up");
  const ref = await backupFile({ stateDir: sr.stateDir, kver, path: stock, tx });
  t.is(ref.backupPath, join(sr.stateDir, "backups", kver, `${sha256(stock)}.ko.xz`));
  t.is(sha256(ref.backupPath), sha256(stock));
  t.is(ref.mode, 0o640);
  t.is(ref.mtimeMs, Date.parse("2024-05-06T07:08:09Z"));
  t.like(readBackupMeta(ref.backupPath), { path: stock, sha256: ref.sha256, mode: 0o640 });
  t.deepEqual(
    readJournal(tx.file).steps.map((s) => [s.op, s.args.sha256, s.done]),
    [["backup", ref.sha256, true]],
  );

  const again = await backupFile({ stateDir: sr.stateDir, kver, path: stock, tx });
  t.is(again.backupPath, ref.backupPath);
  t.is(readJournal(tx.file).steps.length, 1, "the same bytes are not copied (nor journaled) twice");

  writeFileSync(stock, "clobbered");
  restoreFromBackup(ref);
  t.is(sha256(stock), ref.sha256);
  t.is(statSync(stock).mode & 0o7777, 0o640);
  t.is(statSync(stock).mtimeMs, ref.mtimeMs);
});

test("restoring from a damaged backup refuses instead of writing wrong bytes", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "np-backup-"));
  const file = join(dir, "x.ko");
  writeFileSync(file, "original");
  const ref = await backupFile({ stateDir: join(dir, "state"), kver: "k", path: file });
  writeFileSync(ref.backupPath, "bit rot");
  writeFileSync(file, "patched");
  t.throws(() => restoreFromBackup(ref), { instanceOf: StepError, message: /damaged/ });
  t.is(readFileSync(file, "utf8"), "patched");
  t.true(existsSync(`${ref.backupPath}.json`));
});

test("modinfo -b and the modules.dep fallback agree on what e1000 resolves to", async (t) => {
  for (const compress of [undefined, "zst"] as const) {
    const sr = makeSysroot(compress ? { compress } : {});
    const viaModinfo = await resolveModule({ root: sr.root, kver, module: "e1000", exec: createExec() });
    t.is(viaModinfo.via, "modinfo");
    t.is(viaModinfo.path, join(sr.modDir, sr.stockE1000));
    t.is(resolveFromModulesDep(sr.root, kver, "e1000"), viaModinfo.path);
    t.is(
      (await resolveModule({ root: sr.root, kver, module: "netmap", exec: createExec() })).path,
      undefined,
    );
  }
});
