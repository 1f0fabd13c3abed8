import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { findGuestKernel } from "../../toolkit/guest/guest-kernel.js";
import { hostileBundles, readBundleParts } from "../helpers/bundle-craft.js";
import { debianKernel } from "../helpers/debian-kernel.js";
import { type Json, runUpPayload } from "../helpers/guest-payload.js";
import { fixture, repoRoot } from "../helpers/paths.js";
import { buildStandinBundle } from "../helpers/standin-bundle.js";
import { writeGzipBomb } from "../helpers/tar-craft.js";

/*
 * The guest tier's must-hold for crafted bundles (issue 11): Debian's real kernel in QEMU, the
 * stand-in bundle built on the host through the toolkit, then one thing at a time made hostile
 * (a traversing module name, a symlink to a host file, a non-ELF module, a device node, and the
 * rest of the corpus's classes). In ONE boot the payload runs `up --from` with each as root and
 * lists /lib/modules/<release>, /etc/modules-load.d, /etc/modprobe.d, the state dir and TMPDIR
 * (every file's sha256) and lsmod before and after: each must be exit 2 with nothing changed.
 */

const debian = debianKernel();
const exec = createExec();
const { kernel, kernelRelease } = findGuestKernel("/", debian.release);
const work = join(repoRoot, ".cache", "up-guest", `hostile-${process.pid}`);
const bundleDir = join(work, "hostile-bundles");
const recipeFile = fixture("guest", "standin.yaml");
let flags: string[] = [];
/** Bundle file name -> what its refusal must say. */
const expected = new Map<string, RegExp>();
/** The must-hold's four classes. */
const MUST = ["traversing-module-name", "symlink-to-host-file", "non-elf-module", "device-node"];

test.before(async () => {
  mkdirSync(bundleDir, { recursive: true });
  let bundle: string;
  ({ bundle, flags } = await buildStandinBundle(work, recipeFile, debian));
  const cases = hostileBundles(readBundleParts(bundle));
  for (const [i, c] of cases.entries()) {
    const name = `${String(i).padStart(2, "0")}-${c.id}.tar`;
    writeFileSync(join(bundleDir, name), c.bytes);
    expected.set(name, c.message);
  }
  await writeGzipBomb(join(bundleDir, "99-gzip-bomb.tar.gz"), "artifacts/zeros", 300 * 1024 * 1024);
  expected.set("99-gzip-bomb.tar.gz", /decompresses to more than .*decompression bomb/);
});

test.after.always(() => {
  if (process.env.NP_KEEP_GUEST_RUNS !== "1") rmSync(work, { recursive: true, force: true });
});

test.serial(
  "guest: crafted bundles (traversing module name, symlink to a host file, non-ELF module, device node, ...) are refused by up --from with exit 2 before any change to the host",
  async (t) => {
    const started = Date.now();
    const { out, log } = await runUpPayload({
      exec,
      kernel,
      kernelRelease,
      work,
      mode: "hostile",
      bundleDir,
      nics: [{ model: "e1000", id: "n0" }],
      flags,
      totalTimeoutMs: 1_800_000,
      cacheDir: join(work, "guest-cache"),
    });
    t.log(log.split("\n")[0]);
    t.true(out.trimmed.sameBytes, JSON.stringify(out.trimmed));
    t.true(out.beforeCount > 10, `the listing watched ${out.beforeCount} entries: ${out.watched}`);
    const names = (out.runs as Json[]).map((r) => r.name);
    t.deepEqual(names, [...expected.keys()].sort());
    for (const id of MUST)
      t.true(
        names.some((n) => n.endsWith(`-${id}.tar`)),
        `${id} was run`,
      );
    for (const r of out.runs as Json[]) {
      const what = `${r.name}: exit ${r.status}\n${JSON.stringify(r.report).slice(0, 1500)}\n${r.stderr}`;
      t.is(r.status, 2, what);
      t.false(r.report.ok, what);
      t.regex(`${r.report.error?.message ?? ""}\n${r.stderr}`, expected.get(r.name) as RegExp, what);
      t.regex(r.report.error?.message ?? "", new RegExp(r.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), what);
      t.deepEqual(r.changed, [], `${r.name} changed the host`);
      t.false(r.lsmodChanged, `${r.name} changed the loaded modules`);
    }
    const a = out.afterAll;
    t.is(a.eth0Driver, "e1000");
    t.false(a.netmapLoaded);
    t.false(a.devNetmap);
    t.is(a.stockSha256, out.before.stockSha256);
    t.false(a.installed);
    const ms = (out.runs as Json[]).map((r) => r.ms as number);
    t.log(
      `${ms.length} crafted bundles refused in one boot; up took ${Math.min(...ms)}-${Math.max(...ms)} ms each; test ${Math.round((Date.now() - started) / 1000)} s`,
    );
  },
);
