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
