import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { writeNewc } from "../../toolkit/guest/cpio.js";
import { tempDirs } from "../helpers/temp.js";

const tempDir = tempDirs(test);

// The archive is checked with the real GNU cpio, the independent reader at hand.
const archive = () =>
  writeNewc([
    { kind: "dir", path: "bin" },
    { kind: "file", path: "bin/hello", data: Buffer.from("hello\n"), mode: 0o755 },
    { kind: "file", path: "odd-size", data: Buffer.from("abcde") },
    { kind: "symlink", path: "bin/sh", target: "hello" },
    { kind: "chardev", path: "console", major: 5, minor: 1 },
  ]);

const archiveFile = (): string => {
  const file = join(tempDir("np-cpio-"), "a.cpio");
  writeFileSync(file, archive());
  return file;
};

test("GNU cpio lists every member with its type, mode and device numbers", async (t) => {
  const r = await createExec().run(["cpio", "-itv", "--quiet", "-F", archiveFile()]);
  const lines = r.stdout.split("\n");
  t.is(lines.length, 5);
  t.regex(lines[0] ?? "", /^drwxr-xr-x .* root +root .* bin$/);
  t.regex(lines[1] ?? "", /^-rwxr-xr-x .* 6 .* bin\/hello$/);
  t.regex(lines[3] ?? "", /^lrwxrwxrwx .* bin\/sh -> hello$/);
  t.regex(lines[4] ?? "", /^crw------- .* 5, +1 .* console$/);
});

test("file contents survive padding to 4-byte boundaries", async (t) => {
  const file = archiveFile();
  const ex = createExec();
  const hello = await ex.run(["cpio", "-i", "--quiet", "--to-stdout", "-F", file, "bin/hello"]);
  t.is(hello.stdout, "hello");
  const odd = await ex.run(["cpio", "-i", "--quiet", "--to-stdout", "-F", file, "odd-size"]);
  t.is(odd.stdout, "abcde");
  t.is(archive().length % 4, 0);
});

test("duplicate paths are refused", (t) => {
  t.throws(
    () =>
      writeNewc([
        { kind: "dir", path: "a" },
        { kind: "dir", path: "/a" },
      ]),
    { message: /duplicate/ },
  );
});
