import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { StepError } from "../../toolkit/core/errors.js";
import { createExec, type Exec } from "../../toolkit/core/exec.js";
import { type InstallStrategy, installModules } from "../../toolkit/modules/install.js";
import { readModulesDep, resolveModule } from "../../toolkit/modules/resolve.js";
import { restore } from "../../toolkit/modules/restore.js";
import { installedPath, readInstalled } from "../../toolkit/state/installed.js";
import { commit, openTransaction, pendingTransaction, readJournal } from "../../toolkit/state/journal.js";
import {
  e1000Rel,
  kver,
  makeSysroot,
  type Sysroot,
  sha256,
  snapshotTree,
  standinArtifacts,
} from "./sysroot.js";

const exec = createExec();

async function up(sr: Sysroot, strategy: InstallStrategy, ex: Exec = exec) {
  const tx = openTransaction(sr.stateDir, "up", { root: sr.root, command: "test up" });
  const r = await installModules({
    root: sr.root,
    kver,
    artifacts: standinArtifacts(),
    strategy,
    stateDir: sr.stateDir,
    exec: ex,
    journal: tx,
    netmapModule: "netmap",
    recipe: "test-recipe",
  });
  commit(tx);
  return { ...r, tx };
}

const resolves = async (sr: Sysroot, module: string) =>
  (await resolveModule({ root: sr.root, kver, module, exec })).path;

test.before(() => {
  // build the stand-ins once before the tests race for them
  standinArtifacts();
  standinArtifacts("netmap_lin");
});

test("updates: patched e1000 and netmap under updates/netmap win; restore is byte-identical", async (t) => {
  const sr = makeSysroot();
  const before = snapshotTree(sr.root);
  const stock = join(sr.modDir, sr.stockE1000);
  t.is(await resolves(sr, "e1000"), stock);

  const r = await up(sr, "updates");
  const patched = join(sr.modDir, "updates/netmap/e1000.ko");
  t.is(await resolves(sr, "e1000"), patched);
  t.is(await resolves(sr, "netmap"), join(sr.modDir, "updates/netmap/netmap.ko"));
  t.regex(
    readFileSync(join(sr.modDir, "modules.dep"), "utf8"),
    /^updates\/netmap\/e1000\.ko: updates\/netmap\/netmap\.ko$/m,
  );
  const stockKey = `lib/modules/${kver}/${sr.stockE1000}`;
  t.is(snapshotTree(sr.root)[stockKey], before[stockKey], "the stock module is untouched");
  const rec = readInstalled(sr.stateDir);
  t.is(rec?.strategy, "updates");
  t.is(rec?.recipe, "test-recipe");
  t.deepEqual(
    rec?.modules.map((m) => [m.module, m.path, m.shadowed]),
    [
      ["netmap", `/lib/modules/${kver}/updates/netmap/netmap.ko`, undefined],
      ["e1000", `/lib/modules/${kver}/updates/netmap/e1000.ko`, `/lib/modules/${kver}/${sr.stockE1000}`],
    ],
  );
  t.deepEqual(r.resolved, { netmap: join(sr.modDir, "updates/netmap/netmap.ko"), e1000: patched });

  const rep = await restore({ root: sr.root, stateDir: sr.stateDir, exec });
  t.deepEqual(snapshotTree(sr.root), before);
  t.is(rep.resolved.e1000, stock);
  t.is(rep.resolved.netmap, undefined);
  t.false(existsSync(installedPath(sr.stateDir)));
  t.is(pendingTransaction(sr.stateDir), undefined);
});

test("a second install with the same files changes nothing and does not rerun depmod", async (t) => {
  const sr = makeSysroot();
  await up(sr, "updates");
  const depmodRuns: string[][] = [];
  const spy: Exec = {
    dryRun: false,
    start: exec.start,
    run: (argv, o) => {
      if (argv[0] === "depmod") depmodRuns.push([...argv]);
      return exec.run(argv, o);
    },
  };
  const again = await up(sr, "updates", spy);
  t.deepEqual(again.unchanged.sort(), ["e1000", "netmap"]);
  t.deepEqual(depmodRuns, []);
  t.deepEqual(readJournal(again.tx.file).steps, []);
});

for (const compress of [undefined, "xz", "zst"] as const) {
  test(`replace${compress ? ` (stock .ko.${compress})` : ""}: stock moved to -bak, patched in place, restore puts the original back`, async (t) => {
    const sr = makeSysroot(compress ? { compress } : {});
    const before = snapshotTree(sr.root);
    const stock = join(sr.modDir, sr.stockE1000);
    const stockSha = sha256(stock);
    t.is(await resolves(sr, "e1000"), stock, "depmod and modinfo read the compressed stock module");

    await up(sr, "replace");
    const inPlace = join(sr.modDir, "kernel/drivers/net/ethernet/intel/e1000/e1000.ko");
    t.false(existsSync(stock) && stock !== inPlace);
    t.is(
      sha256(`${stock}-bak`),
      stockSha,
      "the original is moved aside as <file>-bak, like the 2012 procedure",
    );
    t.is(await resolves(sr, "e1000"), inPlace);
    t.is(
      await resolves(sr, "netmap"),
      join(sr.modDir, "updates/netmap/netmap.ko"),
      "netmap itself always goes to updates/",
    );
    const e1000 = readInstalled(sr.stateDir)?.modules.find((m) => m.module === "e1000");
    t.is(
      e1000?.replacedOriginal?.path,
      `/lib/modules/${kver}/${sr.stockE1000}`,
      "the compressed name is what comes back",
    );

    await restore({ root: sr.root, stateDir: sr.stateDir, exec });
    t.deepEqual(snapshotTree(sr.root), before);
    t.is(await resolves(sr, "e1000"), stock);
  });
}

test("replace with the old layout's netmap_lin (the seed recipe): netmap_lin under updates/netmap, only e1000 moved to -bak; restore is byte-identical", async (t) => {
  const sr = makeSysroot();
  const before = snapshotTree(sr.root);
  const stock = join(sr.modDir, sr.stockE1000);
  const stockSha = sha256(stock);
  const tx = openTransaction(sr.stateDir, "up", { root: sr.root, command: "test up" });
  // The module that is netmap is named by the caller (the build manifest's netmapModule).
  const options = {
    root: sr.root,
    kver,
    artifacts: standinArtifacts("netmap_lin"),
    strategy: "replace" as const,
    stateDir: sr.stateDir,
    exec,
    journal: tx,
    netmapModule: "netmap_lin",
  };
  const r = await installModules(options);
  commit(tx);
  t.is(sha256(`${stock}-bak`), stockSha, "the stock e1000 is moved aside as e1000.ko-bak");
  t.is(await resolves(sr, "e1000"), stock, "the patched e1000 takes the stock file's place");
  t.is(await resolves(sr, "netmap_lin"), join(sr.modDir, "updates/netmap/netmap_lin.ko"));
  t.regex(
    readFileSync(join(sr.modDir, "modules.dep"), "utf8"),
    /^kernel\/drivers\/net\/ethernet\/intel\/e1000\/e1000\.ko: updates\/netmap\/netmap_lin\.ko$/m,
  );
  t.deepEqual(Object.keys(r.resolved).sort(), ["e1000", "netmap_lin"]);
  // The record says which module is netmap: down unloads it last and never reloads it as a stock driver.
  const rec = JSON.parse(readFileSync(installedPath(sr.stateDir), "utf8"));
  t.is(rec.netmapModule, "netmap_lin");
  t.deepEqual(
    rec.modules.map((m: { module: string; path: string; replacedOriginal?: { movedAside?: string } }) => [
      m.module,
      m.path,
      m.replacedOriginal?.movedAside,
    ]),
    [
      ["netmap_lin", `/lib/modules/${kver}/updates/netmap/netmap_lin.ko`, undefined],
      ["e1000", `/lib/modules/${kver}/${e1000Rel}`, `/lib/modules/${kver}/${e1000Rel}-bak`],
    ],
  );

  await restore({ root: sr.root, stateDir: sr.stateDir, exec });
  t.deepEqual(snapshotTree(sr.root), before);
  t.is(await resolves(sr, "e1000"), stock);
  t.is(await resolves(sr, "netmap_lin"), undefined);
});

for (const compress of ["xz", "zst"] as const) {
  test(`updates with a .ko.${compress} stock module: the uncompressed patched .ko in updates/ still wins`, async (t) => {
    const sr = makeSysroot({ compress });
    const before = snapshotTree(sr.root);
    await up(sr, "updates");
    t.is(readModulesDep(sr.root, kver).get("e1000"), "updates/netmap/e1000.ko");
    t.is(await resolves(sr, "e1000"), join(sr.modDir, "updates/netmap/e1000.ko"));
    await restore({ root: sr.root, stateDir: sr.stateDir, exec });
    t.deepEqual(snapshotTree(sr.root), before);
    t.is(await resolves(sr, "e1000"), join(sr.modDir, sr.stockE1000));
  });
}

test("restore refuses to overwrite a file changed by someone else, and --force goes ahead", async (t) => {
  const sr = makeSysroot();
  const before = snapshotTree(sr.root);
  await up(sr, "replace");
  const inPlace = join(sr.modDir, "kernel/drivers/net/ethernet/intel/e1000/e1000.ko");
  writeFileSync(inPlace, "someone else's e1000.ko\n");
  const changed = snapshotTree(sr.root);
  const err = await t.throwsAsync(restore({ root: sr.root, stateDir: sr.stateDir, exec }), {
    instanceOf: StepError,
  });
  t.regex(err?.message ?? "", /neither what netmap-provision installed nor the originals/);
  t.true(err?.message.includes(inPlace));
  t.regex(err?.hint ?? "", /--force/);
  t.deepEqual(snapshotTree(sr.root), changed, "nothing was touched");
  t.truthy(readInstalled(sr.stateDir));

  await restore({ root: sr.root, stateDir: sr.stateDir, exec, force: true });
  t.deepEqual(snapshotTree(sr.root), before);
});

test("a failing depmod rolls the install back automatically (like DKMS) and says so", async (t) => {
  const sr = makeSysroot();
  const before = snapshotTree(sr.root);
  let depmodCalls = 0;
  // The real depmod, made to fail on its first run by pointing it at a kernel that is not there.
  const sabotaged: Exec = {
    dryRun: false,
    start: exec.start,
    run: (argv, o) => {
      if (argv[0] === "depmod" && depmodCalls++ === 0)
        return exec.run([...argv.slice(0, -1), "0.0.0-missing"], o);
      return exec.run(argv, o);
    },
  };
  const tx = openTransaction(sr.stateDir, "up", { root: sr.root });
  const err = await t.throwsAsync(
    installModules({
      root: sr.root,
      kver,
      artifacts: standinArtifacts(),
      strategy: "replace",
      stateDir: sr.stateDir,
      exec: sabotaged,
      journal: tx,
      netmapModule: "netmap",
    }),
    { instanceOf: StepError },
  );
  t.is(err?.step, "depmod");
  t.regex(err?.message ?? "", /every file was put back and depmod rerun/);
  t.is(depmodCalls, 2, "depmod ran again after the files were put back");
  t.deepEqual(snapshotTree(sr.root), before);
  t.is(readInstalled(sr.stateDir), undefined);
  t.true(
    readJournal(tx.file).steps.every((s) => s.undone),
    "every journaled step is marked undone",
  );
});

test("an artifact whose sha256 does not match the build is refused before any change", async (t) => {
  const sr = makeSysroot();
  const before = snapshotTree(sr.root);
  const tx = openTransaction(sr.stateDir, "up", { root: sr.root });
  const [netmap] = standinArtifacts();
  if (!netmap) throw new Error("no artifacts");
  await t.throwsAsync(
    installModules({
      root: sr.root,
      kver,
      artifacts: [{ ...netmap, sha256: "0".repeat(64) }],
      strategy: "updates",
      stateDir: sr.stateDir,
      exec,
      journal: tx,
      netmapModule: "netmap",
    }),
    { message: /has sha256 .* but the build recorded/ },
  );
  t.deepEqual(snapshotTree(sr.root), before);
  t.deepEqual(readJournal(tx.file).steps, []);
});
