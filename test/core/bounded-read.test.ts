import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import test from "ava";
import { execa } from "execa";
import {
  gunzipBounded,
  readBoundedFile,
  readBoundedFileIfExists,
  readBoundedText,
} from "../../toolkit/core/bounded-read.js";
import { ExitCode, UserError } from "../../toolkit/core/errors.js";
import { FIXTURE_RELEASE } from "../helpers/hosts.js";

function dir(t: { teardown(f: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), "np-bounded-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const o = { what: "test file", maxBytes: 1024 };

test("reads a small regular file", (t) => {
  const p = join(dir(t), "a");
  writeFileSync(p, "hello");
  t.is(readBoundedText(p, o), "hello");
  t.is(readBoundedFile(p, { ...o, maxBytes: 5 }).length, 5);
});

test("a file over the cap is refused before it is read", (t) => {
  const p = join(dir(t), "big");
  writeFileSync(p, Buffer.alloc(100 * 1024 * 1024));
  const start = Date.now();
  const e = t.throws(() => readBoundedFile(p, o), { instanceOf: UserError });
  t.is(e?.exitCode, ExitCode.usage);
  t.regex(e?.message ?? "", /test file .*big is .*the limit is 1 KiB/);
  t.true(Date.now() - start < 1000);
});

test("a FIFO is refused without blocking", async (t) => {
  const p = join(dir(t), "fifo");
  await execa("mkfifo", [p]);
  const e = t.throws(() => readBoundedFile(p, o), { instanceOf: UserError });
  t.regex(e?.message ?? "", /FIFO/);
});

test("a directory is refused", (t) => {
  const d = join(dir(t), "sub");
  mkdirSync(d);
  t.regex(t.throws(() => readBoundedFile(d, o))?.message ?? "", /is a directory, not a regular file/);
});

test("character devices are refused", (t) => {
  for (const dev of ["/dev/zero", "/dev/urandom", "/dev/null"]) {
    t.regex(t.throws(() => readBoundedFile(dev, o))?.message ?? "", /character device/);
  }
});

test("a size-0 /proc file is read up to the cap, and refused past it", (t) => {
  t.regex(readBoundedText("/proc/self/status", { what: "proc", maxBytes: 1 << 20 }), /^Name:/);
  t.regex(
    t.throws(() => readBoundedText("/proc/self/status", { what: "proc", maxBytes: 16 }))?.message ?? "",
    /over 16 bytes/,
  );
});

test("missing files: UserError, or undefined with IfExists", (t) => {
  const p = join(dir(t), "nope");
  t.regex(t.throws(() => readBoundedFile(p, o))?.message ?? "", /not found/);
  t.is(readBoundedFileIfExists(p, o), undefined);
});

test("gunzipBounded stops a gzip bomb at the cap", (t) => {
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
  const e = t.throws(() => gunzipBounded(bomb, 1024 * 1024, "config.gz"), { instanceOf: UserError });
  t.regex(e?.message ?? "", /config\.gz decompresses to more than 1\.0 MiB/);
  t.is(gunzipBounded(gzipSync("CONFIG_X=y\n"), 1024, "c").toString(), "CONFIG_X=y\n");
  t.regex(t.throws(() => gunzipBounded(Buffer.from("nope"), 1024, "c"))?.message ?? "", /not valid gzip/);
});

// --- the readers built on it ------------------------------------------------------------------------

test("the catalog loader refuses a FIFO and a device with a file:line:col error", async (t) => {
  const { loadYamlFile } = await import("../../toolkit/catalog/yaml-file.js");
  const { z } = await import("zod");
  const p = join(dir(t), "drivers.yaml");
  await execa("mkfifo", [p]);
  for (const f of [p, "/dev/zero"])
    t.regex(
      t.throws(() => loadYamlFile(f, z.object({})))?.message ?? "",
      /:1:1: cannot read the catalog file: .*(FIFO|character device)/,
    );
});

test("host files: a path with .. never leaves the root; a FIFO or device reads as missing", async (t) => {
  const { readHostFile, readHostText, hostExists, listHostDir } = await import(
    "../../toolkit/host/host-fs.js"
  );
  const root = dir(t);
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "os-release"), "ID=debian\n");
  await execa("mkfifo", [join(root, "etc", "fifo")]);
  t.is(readHostText(root, "/etc/os-release"), "ID=debian\n");
  t.is(readHostText(root, "/lib/modules/../../etc/os-release"), null);
  t.false(hostExists(root, "/../../etc"));
  t.deepEqual(listHostDir(root, "/.."), []);
  const fifo = readHostFile(root, "/etc/fifo");
  t.true("problem" in fifo && /\/etc\/fifo is a FIFO/.test(fifo.problem));
  t.is(readHostText(root, "/etc/fifo"), null);
});

test("installed.json policy: what persist.ts records for an initramfs is what the policy accepts", async (t) => {
  const { initramfsToolFor } = await import("../../toolkit/modules/persist.js");
  const { initramfsImages } = await import("../../toolkit/state/installed-policy.js");
  for (const kind of ["update-initramfs", "dracut"] as const) {
    const tool = initramfsToolFor(kind, FIXTURE_RELEASE);
    t.deepEqual(initramfsImages(FIXTURE_RELEASE).get(tool.image), tool.regenerate);
  }
});

test("kernel releases: uname -r forms pass, paths do not", async (t) => {
  const { isKernelRelease } = await import("../../toolkit/host/release-name.js");
  for (const r of [FIXTURE_RELEASE, "5.14.0-362.el9.x86_64", "6.8.0-1-generic", "6.18.44-fc-v782", "4.19.0+"])
    t.true(isKernelRelease(r), r);
  for (const r of ["../../../../etc", "6.1/../../x", "", "..", "6.1.0 x", "-6.1", "6.1.0\n"])
    t.false(isKernelRelease(r), r);
});
