import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { StepError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import {
  detectInitramfs,
  initramfsToolFor,
  inspectInitramfs,
  modulesLoadPath,
  persistenceInPlace,
} from "../../toolkit/modules/persist.js";
import { restore } from "../../toolkit/modules/restore.js";
import { readInstalled, writeInstalled } from "../../toolkit/state/installed.js";
import {
  kver,
  makeSysroot,
  type Sysroot,
  sha256,
  snapshotTree,
  standinArtifacts,
  upOnSysroot,
} from "./sysroot.js";

const exec = createExec();

async function upPersist(sr: Sysroot) {
  const r = await upOnSysroot(sr, { strategy: "updates", persist: true, exec });
  if (!r.persist) throw new Error("persistModules did not run");
  return r.persist;
}

test.before(() => {
  standinArtifacts();
});

test("persist (sysroot): a modules-load.d entry, netmap first; down removes it and the tree is as before", async (t) => {
  const sr = makeSysroot();
  const before = snapshotTree(sr.root);
  const p = await upPersist(sr);
  const conf = join(sr.root, modulesLoadPath);
  const lines = readFileSync(conf, "utf8")
    .split("\n")
    .filter((l) => l && !l.startsWith("#"));
  t.deepEqual(lines, ["netmap", "e1000"]);
  // The sysroot has no initramfs generator: said, not guessed.
  t.is(p.initramfs, null);
  t.regex(p.note, /no initramfs generator/);
  const rec = readInstalled(sr.stateDir);
  t.deepEqual(
    rec?.files.map((f) => [f.path, f.sha256]),
    [[modulesLoadPath, sha256(conf)]],
  );
  t.true(rec !== undefined && persistenceInPlace(sr.root, rec));

  await restore({ root: sr.root, stateDir: sr.stateDir, exec });
  t.false(existsSync(conf));
  t.false(existsSync(join(sr.root, "etc")), "the directories up created are gone again");
  t.deepEqual(snapshotTree(sr.root), before);
});

test("persist (sysroot): an existing netmap-provision.conf is backed up and comes back byte for byte", async (t) => {
  const sr = makeSysroot();
  const conf = join(sr.root, modulesLoadPath);
  mkdirSync(join(sr.root, "etc/modules-load.d"), { recursive: true });
  writeFileSync(conf, "# hand-written earlier\nnetmap\n", { mode: 0o600 });
  const original = sha256(conf);
  await upPersist(sr);
  t.not(sha256(conf), original);
  const rec = readInstalled(sr.stateDir);
  t.is(rec?.files[0]?.previous?.sha256, original);
  t.is(rec?.files[0]?.previous?.path, modulesLoadPath, "recorded as a host path, not the sysroot path");
  await restore({ root: sr.root, stateDir: sr.stateDir, exec });
  t.is(sha256(conf), original);
});

test("detectInitramfs: none, a named generator that is missing, no image for the kernel", (t) => {
  const root = mkdtempSync(join(tmpdir(), "np-initramfs-root-"));
  t.regex(detectInitramfs(root, kver, "none").note, /left as it is/);
  t.regex(detectInitramfs(root, kver, "auto").note, /no initramfs generator/);
  const err = t.throws(() => detectInitramfs(root, kver, "dracut"), { instanceOf: StepError });
  t.regex(err?.message ?? "", /dracut is not installed/);
  // A generator with no image for this kernel: nothing could carry a stock driver.
  mkdirSync(join(root, "usr/sbin"), { recursive: true });
  writeFileSync(join(root, "usr/sbin/update-initramfs"), "");
  const d = detectInitramfs(root, kver, "auto");
  t.is(d.tool, undefined);
  t.regex(d.note, new RegExp(`/boot/initrd.img-${kver} does not exist`));
  mkdirSync(join(root, "boot"));
  writeFileSync(join(root, "boot", `initrd.img-${kver}`), "");
  t.deepEqual(detectInitramfs(root, kver, "auto").tool, initramfsToolFor("update-initramfs", kver));
  t.deepEqual(initramfsToolFor("dracut", kver).regenerate, [
    "dracut",
    "--force",
    `/boot/initramfs-${kver}.img`,
    kver,
  ]);
});

// Debian's own initrd (MODULES=most) carries the stock e1000: exactly what makes the stock driver
// win at boot. The inspection must see it, by content.
const debianInitrd = `/boot/initrd.img-${kver}`;
test("inspectInitramfs on Debian's real initrd: the stock e1000 is found and told apart by sha256", async (t) => {
  if (!existsSync(debianInitrd)) return t.fail(`${debianInitrd} is missing: install linux-image-amd64`);
  const stock = sha256(`/lib/modules/${kver}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko`);
  const tool = initramfsToolFor("update-initramfs", kver);
  const asPatched = await inspectInitramfs(exec, tool, debianInitrd, [
    { module: "e1000", file: "", sha256: stock },
    { module: "netmap", file: "", sha256: "0".repeat(64) },
  ]);
  t.deepEqual(asPatched, [
    {
      module: "e1000",
      path: `usr/lib/modules/${kver}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko`,
      patched: true,
    },
    { module: "netmap", patched: null },
  ]);
  const [other] = await inspectInitramfs(exec, tool, debianInitrd, [
    { module: "e1000", file: "", sha256: "f".repeat(64) },
  ]);
  t.is(other?.patched, false, "a copy with other bytes is the stock driver");
});

test("down: an initramfs regenerated by something else since up is rebuilt, not refused or overwritten", async (t) => {
  const sr = makeSysroot();
  await upPersist(sr);
  // As persistModules records an image on a host with update-initramfs. The record holds the
  // generator's real argv (installed.json may name no other command); the sysroot cannot run it, so
  // the exec stands in for update-initramfs with a real command that leaves a mark.
  const image = join(sr.root, "boot", `initrd.img-${kver}`);
  mkdirSync(join(sr.root, "boot"), { recursive: true });
  writeFileSync(image, "image written by up\n");
  const mark = join(sr.root, "regenerated");
  const rec = readInstalled(sr.stateDir);
  if (!rec) return t.fail("no installed.json");
  const tool = initramfsToolFor("update-initramfs", kver);
  rec.files.push({
    path: tool.image,
    sha256: sha256(image),
    kind: "initramfs",
    regenerate: tool.regenerate,
  });
  writeInstalled(sr.stateDir, rec);
  writeFileSync(image, "image a kernel update wrote since\n");
  const warnings: string[] = [];
  const ran: string[][] = [];
  const standin: typeof exec = {
    ...exec,
    run: (argv, o) => {
      if (argv[0] !== "update-initramfs") return exec.run(argv, o);
      ran.push([...argv]);
      return exec.run(["touch", mark], o);
    },
  };
  await restore({ root: sr.root, stateDir: sr.stateDir, exec: standin, warn: (m) => warnings.push(m) });
  t.deepEqual(ran, [tool.regenerate]);
  t.true(existsSync(mark), "the generator ran again");
  t.is(readFileSync(image, "utf8"), "image a kernel update wrote since\n", "not overwritten");
  t.regex(warnings.join("\n"), /regenerated by something else after up/);
  t.false(existsSync(join(sr.root, modulesLoadPath)));
});
