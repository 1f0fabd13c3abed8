import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import test, { type ExecutionContext } from "ava";
import { UserError } from "../../toolkit/core/errors.js";
import { createExec } from "../../toolkit/core/exec.js";
import {
  type ArchiveContext,
  checkExtractedTree,
  extractArgv,
  listArchive,
  readArchiveMember,
  resolveInside,
  stripComponents,
  unpackArchive,
} from "../../toolkit/core/safe-archive.js";
import { type CraftEntry, craftTar, writeGzipBomb } from "../helpers/tar-craft.js";

const exec = createExec();
const ctx = (o: Partial<ArchiveContext> = {}): ArchiveContext => ({
  what: "test archive",
  hint: "use a good one",
  limits: { maxBytes: 64 * 1024 * 1024, maxMembers: 100 },
  ...o,
});

function work(t: ExecutionContext): { dir: string; parent: string; outside: string } {
  const dir = mkdtempSync(join(tmpdir(), "np-safe-archive-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const parent = join(dir, "parent");
  const outside = join(dir, "outside");
  mkdirSync(parent);
  mkdirSync(outside);
  return { dir, parent, outside };
}

/** The archive is refused with exit 2, naming the archive and the problem, and nothing is left. */
async function refused(
  t: ExecutionContext,
  entries: CraftEntry[],
  message: RegExp,
  o: Partial<ArchiveContext> = {},
) {
  const w = work(t);
  const f = join(w.dir, "bad.tar");
  writeFileSync(f, craftTar(entries));
  const e = await t.throwsAsync(unpackArchive(f, { ...ctx(o), exec, parent: w.parent, prefix: "u-" }));
  t.true(e instanceof UserError, String(e));
  t.is((e as UserError).exitCode, 2);
  t.regex(e?.message ?? "", /test archive .*bad\.tar/);
  t.regex(e?.message ?? "", message);
  t.is((e as UserError).hint, "use a good one");
  t.deepEqual(readdirSync(w.parent), [], "nothing unpacked");
  t.deepEqual(readdirSync(w.outside), [], "nothing outside");
}

const file = (name: string, data = "x\n", mode?: number): CraftEntry => ({
  name,
  data,
  ...(mode !== undefined ? { mode } : {}),
});

test("a well-formed archive unpacks into a private dir; dispose removes it", async (t) => {
  const w = work(t);
  const f = join(w.dir, "ok.tar.gz");
  writeFileSync(
    f,
    gzipSync(
      craftTar([
        { name: "top/", type: "dir" },
        file("top/a.txt", "hello\n"),
        { name: "top/sub/", type: "dir" },
        { name: "top/sub/link", type: "symlink", linkname: "../a.txt" },
        { name: "top/hard", type: "hardlink", linkname: "top/a.txt" },
        file(`top/${"d/".repeat(60)}long.txt`, "long\n"),
        { name: `top/${"p".repeat(120)}`, data: "pax\n", longName: "pax" },
      ]),
    ),
  );
  const u = await unpackArchive(f, { ...ctx(), exec, parent: w.parent, prefix: "u-" });
  t.is(u.compression, "gzip");
  t.is((lstatSync(u.dir).mode & 0o777).toString(8), "700");
  t.is(readFileSync(join(u.dir, "top", "sub", "link"), "utf8"), "hello\n");
  t.is(readlinkSync(join(u.dir, "top", "sub", "link")), "../a.txt");
  t.is(readFileSync(join(u.dir, "top", "hard"), "utf8"), "hello\n");
  t.is(
    readFileSync(join(u.dir, "top", ..."d/".repeat(60).split("/").filter(Boolean), "long.txt"), "utf8"),
    "long\n",
  );
  t.is(readFileSync(join(u.dir, "top", "p".repeat(120)), "utf8"), "pax\n");
  t.deepEqual(u.members.map((m) => [m.path, m.kind]).slice(0, 5), [
    ["top", "dir"],
    ["top/a.txt", "file"],
    ["top/sub", "dir"],
    ["top/sub/link", "symlink"],
    ["top/hard", "hardlink"],
  ]);
  u.dispose();
  t.false(existsSync(u.dir));
  t.deepEqual(readdirSync(w.parent), []);
});

test("--strip-components as GNU tar counts it (./ is a component), hardlink targets stripped too", async (t) => {
  t.is(stripComponents("./linux/Makefile", 1), "linux/Makefile");
  // GNU tar stops right after the slash: the rest starts with "/" and is then refused as absolute.
  t.is(stripComponents("linux//Makefile", 1), "/Makefile");
  t.is(stripComponents("linux", 1), undefined);
  const w = work(t);
  const f = join(w.dir, "src.tar");
  writeFileSync(
    f,
    craftTar([
      { name: "linux-6.1/", type: "dir" },
      file("linux-6.1/Makefile", "VERSION = 6\n"),
      { name: "linux-6.1/Makefile.copy", type: "hardlink", linkname: "linux-6.1/Makefile" },
    ]),
  );
  const u = await unpackArchive(f, { ...ctx(), stripComponents: 1, exec, parent: w.parent, prefix: "u-" });
  t.teardown(u.dispose);
  t.deepEqual(readdirSync(u.dir).sort(), ["Makefile", "Makefile.copy"]);
  t.deepEqual(
    u.members.map((m) => m.path),
    ["Makefile", "Makefile.copy"],
  );
});

test("traversing, absolute and through-a-pax-or-long-name members are refused", async (t) => {
  await refused(t, [file("../x")], /member "\.\.\/x" has a "\.\." segment/);
  await refused(t, [file("a/../../x")], /"\.\." segment/);
  await refused(t, [file("/etc/x")], /member "\/etc\/x" is an absolute path/);
  // The ustar name is harmless; the pax path (what tar uses) is not.
  await refused(
    t,
    [{ name: "harmless", data: "x", pax: { path: "../../evil" } }],
    /member "\.\.\/\.\.\/evil"/,
  );
  await refused(t, [file(`${"a/".repeat(60)}../../../${"b/".repeat(70)}x`)], /"\.\." segment/);
  await refused(t, [file("ok/\nname")], /control character/);
});

test("symlinks out of the tree are refused, also through a chain of in-tree links", async (t) => {
  await refused(
    t,
    [{ name: "l", type: "symlink", linkname: "/etc/hostname" }],
    /symbolic link that points to the absolute path \/etc\/hostname/,
  );
  await refused(t, [{ name: "a/l", type: "symlink", linkname: "../../outside" }], /climbs out of the tree/);
  // Each link stays inside on its own; followed as the kernel does, b/t ends above the root.
  await refused(
    t,
    [
      { name: "a/b/s", type: "symlink", linkname: "../.." },
      { name: "a/b/t", type: "symlink", linkname: "s/.." },
    ],
    /a\/b\/t" is a symbolic link that points to s\/\.\., which climbs out of the tree/,
  );
  await refused(
    t,
    [
      { name: "x", type: "symlink", linkname: "y" },
      { name: "y", type: "symlink", linkname: "x" },
    ],
    /symlink loop/,
  );
});

test("a file written through a symlink member is refused, even a symlink that stays inside", async (t) => {
  await refused(
    t,
    [{ name: "d", type: "symlink", linkname: "../outside" }, file("d/pwned")],
    /symbolic link that points to \.\.\/outside/,
  );
  await refused(
    t,
    [{ name: "d", type: "dir" }, { name: "l", type: "symlink", linkname: "d" }, file("l/x")],
    /member "l\/x" goes through "l", which is a symbolic link/,
  );
  await refused(t, [file("f"), file("f")], /appears twice/);
});

test("hardlinks to anything but an earlier regular member are refused", async (t) => {
  await refused(
    t,
    [{ name: "h", type: "hardlink", linkname: "/etc/shadow" }],
    /hard link to "\/etc\/shadow"/,
  );
  await refused(
    t,
    [{ name: "h", type: "hardlink", linkname: "../outside/x" }],
    /hard link to "\.\.\/outside\/x"/,
  );
  await refused(
    t,
    [{ name: "h", type: "hardlink", linkname: "later" }, file("later")],
    /not an earlier regular member/,
  );
  await refused(
    t,
    [
      { name: "d", type: "dir" },
      { name: "h", type: "hardlink", linkname: "d" },
    ],
    /not an earlier regular member/,
  );
  await refused(
    t,
    [file("f"), { name: "h", type: "symlink", linkname: "f" }],
    /"h" is a symbolic link to "f", which a test archive never holds/,
    { allowLinks: false },
  );
});

test("devices, FIFOs, set-id and sticky bits, sparse and unknown member types are refused", async (t) => {
  await refused(t, [{ name: "null", type: "char" }], /member "null" is a character device/);
  await refused(t, [{ name: "sda", type: "block" }], /block device/);
  await refused(t, [{ name: "pipe", type: "fifo" }], /member "pipe" is a FIFO/);
  await refused(t, [file("app", "x", 0o4755)], /member "app" has the setuid bit set \(mode 4755\)/);
  await refused(t, [file("app", "x", 0o2755)], /setgid/);
  await refused(t, [{ name: "tmp/", type: "dir", mode: 0o1777 }], /sticky/);
  await refused(t, [{ name: "s", type: "sparse" }], /GNU sparse file/);
  await refused(t, [{ name: "s", data: "x", pax: { "GNU.sparse.major": "1" } }], /sparse member/);
});

test("member count and total size are limited before anything is extracted", async (t) => {
  const many = Array.from({ length: 101 }, (_, i) => file(`f${i}`));
  await refused(t, many, /more than 100 members, the limit for a test archive/);
  await refused(t, [file("big", "x".repeat(2048))], /add up to more than 1024 bytes/, {
    limits: { maxBytes: 1024, maxMembers: 10 },
  });
});

test("a gzip bomb is stopped early by the decompression caps", async (t) => {
  const w = work(t);
  const f = join(w.dir, "bomb.tar.gz");
  await writeGzipBomb(f, "zeros", 300 * 1024 * 1024);
  t.true(lstatSync(f).size < 2 * 1024 * 1024);
  const started = Date.now();
  const e = await t.throwsAsync(
    unpackArchive(f, {
      ...ctx({ limits: { maxBytes: 512 * 1024 * 1024, maxMembers: 10 } }),
      exec,
      parent: w.parent,
      prefix: "u-",
    }),
  );
  t.regex(e?.message ?? "", /bomb\.tar\.gz: it decompresses to more than .* \(a decompression bomb\?\)/);
  t.true(Date.now() - started < 20_000);
  t.deepEqual(readdirSync(w.parent), []);
  // And with a plain size cap below the bomb's size.
  const e2 = await t.throwsAsync(
    listArchive(f, ctx({ limits: { maxBytes: 8 * 1024 * 1024, maxMembers: 10, maxRatio: 1e9 } })),
  );
  t.regex(e2?.message ?? "", /add up to more than 8\.0 MiB/);
});

test("truncated, corrupt and non-tar files are refused as unreadable, with exit 2", async (t) => {
  const w = work(t);
  const good = craftTar([file("a", "x".repeat(5000))]);
  const cases: Array<[string, Buffer, RegExp]> = [
    ["trunc.tar", good.subarray(0, 1536), /truncated/],
    ["text.tar", Buffer.from("this is not a tar file at all\n".repeat(40)), /bad checksum/],
    ["trunc.tar.gz", gzipSync(good).subarray(0, 40), /cannot be read as a gzip-compressed tar archive/],
    ["empty.tar", Buffer.alloc(10240), /holds no members/],
  ];
  for (const [name, bytes, re] of cases) {
    const f = join(w.dir, name);
    writeFileSync(f, bytes);
    const e = await t.throwsAsync(unpackArchive(f, { ...ctx(), exec, parent: w.parent, prefix: "u-" }));
    t.is((e as UserError).exitCode, 2, name);
    t.regex(e?.message ?? "", re, name);
  }
  const xz = join(w.dir, "x.tar.xz");
  writeFileSync(xz, execFileSync("xz", ["-c"], { input: good }).subarray(0, 100));
  const e = await t.throwsAsync(listArchive(xz, ctx()));
  t.regex(e?.message ?? "", /cannot be read as a xz-compressed tar archive/);
  t.deepEqual(readdirSync(w.parent), []);
});

test("xz, zstd and bzip2 archives are read through the tool with the file as stdin", async (t) => {
  const w = work(t);
  const tar = craftTar([file("a/Makefile", "VERSION = 6\nPATCHLEVEL = 1\n"), file("a/b", "b")]);
  for (const [tool, ext] of [
    ["xz", "xz"],
    ["zstd", "zst"],
    ["bzip2", "bz2"],
  ] as const) {
    const f = join(w.dir, `s.tar.${ext}`);
    writeFileSync(f, execFileSync(tool, ["-c"], { input: tar }));
    const u = await unpackArchive(f, { ...ctx(), exec, parent: w.parent, prefix: "u-" });
    t.is(u.compression, tool);
    t.is(readFileSync(join(u.dir, "a", "b"), "utf8"), "b");
    u.dispose();
    const m = await readArchiveMember(f, "a/Makefile", { ...ctx(), maxBytes: 1024 });
    t.is(m?.toString(), "VERSION = 6\nPATCHLEVEL = 1\n");
    t.is(await readArchiveMember(f, "a/none", { ...ctx(), maxBytes: 1024 }), undefined);
  }
});

test("an archive named host:file.tar is a local file (tar --force-local), and a missing one is exit 2", async (t) => {
  const w = work(t);
  const f = join(w.dir, "host:file.tar");
  writeFileSync(f, craftTar([file("a", "local\n")]));
  const u = await unpackArchive(f, { ...ctx(), exec, parent: w.parent, prefix: "u-" });
  t.teardown(u.dispose);
  t.is(readFileSync(join(u.dir, "a"), "utf8"), "local\n");
  // Relative too: tar would otherwise take "host:file.tar" for a remote archive.
  const argv = extractArgv("host:file.tar", "/d", "none");
  t.true(argv.includes("--force-local"));
  const e = await t.throwsAsync(
    unpackArchive(join(w.dir, "nope.tar"), { ...ctx(), exec, parent: w.parent, prefix: "u-" }),
  );
  t.regex(e?.message ?? "", /test archive .*nope\.tar does not exist/);
  t.is((e as UserError).exitCode, 2);
  const fifo = join(w.dir, "fifo.tar");
  execFileSync("mkfifo", [fifo]);
  const e2 = await t.throwsAsync(listArchive(fifo, ctx()));
  t.regex(e2?.message ?? "", /fifo\.tar is not a regular file/);
});

test("resolveInside follows links as the kernel does", (t) => {
  const links = new Map([
    ["a/b/s", "../.."],
    ["d", "a/b"],
  ]);
  const look = (s: readonly string[]) => links.get(s.join("/"));
  t.deepEqual(resolveInside(["a", "b"], "s/a", look), ["a"]);
  t.regex(String(resolveInside(["a", "b"], "s/..", look)), /climbs out/);
  t.regex(String(resolveInside([], "d/s/..", look)), /climbs out/);
  t.deepEqual(resolveInside([], "d/../x", look), ["a", "x"]);
  t.regex(String(resolveInside([], "/x", look)), /absolute/);
});

test("the extracted tree is walked again: an escaping symlink, a FIFO or a set-id file is refused", (t) => {
  const cases: Array<[string, (d: string) => void, RegExp]> = [
    [
      "link",
      (d) => symlinkSync("../../etc", join(d, "a", "l")),
      /"a\/l" is a symbolic link that points to \.\.\/\.\.\/etc/,
    ],
    ["fifo", (d) => execFileSync("mkfifo", [join(d, "a", "p")]), /"a\/p" was extracted as a special file/],
    [
      "setuid",
      (d) => {
        writeFileSync(join(d, "a", "s"), "x");
        execFileSync("chmod", ["4755", join(d, "a", "s")]);
      },
      /"a\/s" was extracted with a set-id or sticky bit/,
    ],
  ];
  for (const [name, make, re] of cases) {
    const w = work(t);
    mkdirSync(join(w.parent, "a"));
    writeFileSync(join(w.parent, "a", "ok"), "ok");
    symlinkSync("ok", join(w.parent, "a", "inside"));
    make(w.parent);
    const e = t.throws(() => checkExtractedTree(w.parent, "x.tar", ctx()), undefined, name);
    t.regex(e?.message ?? "", re, name);
  }
  const w = work(t);
  mkdirSync(join(w.parent, "a"));
  symlinkSync("../a", join(w.parent, "a", "up"));
  t.notThrows(() => checkExtractedTree(w.parent, "x.tar", ctx()));
});
