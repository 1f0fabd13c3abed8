import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { BlockedError, StepError, UserError } from "../../toolkit/core/errors.js";
import {
  cachedPath,
  ensureDownload,
  preflightDownloads,
  resolveCacheDir,
} from "../../toolkit/sources/download.js";

/** A real HTTP server on loopback: the download path runs through Node's fetch for real. */
const body = Buffer.from("netmap-provision download test payload\n".repeat(1000));
const hex = createHash("sha256").update(body).digest("hex");
let server: Server;
let base = "";
/** Requests per path: tests run concurrently against one server. */
const hits = new Map<string, number>();

test.before(async () => {
  server = createServer((req, res) => {
    hits.set(req.url ?? "", (hits.get(req.url ?? "") ?? 0) + 1);
    if (req.url?.startsWith("/file")) {
      res.writeHead(200, { "content-length": body.length });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end("no");
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after.always(() => server.close());

const freshCache = () => mkdtempSync(join(tmpdir(), "np-dl-"));

test("downloads, verifies and renames into downloads/sha256/<hex>; then serves it from the cache", async (t) => {
  const cacheDir = freshCache();
  const r = await ensureDownload({ url: `${base}/file-once.tar.gz`, sha256: hex, cacheDir });
  t.true(r.downloaded);
  t.is(r.path, join(cacheDir, "downloads", "sha256", hex));
  t.deepEqual(readFileSync(r.path), body);
  const again = await ensureDownload({ url: `${base}/file-once.tar.gz`, sha256: hex, cacheDir });
  t.false(again.downloaded);
  t.is(hits.get("/file-once.tar.gz"), 1, "the second call did not touch the network");
  rmSync(cacheDir, { recursive: true, force: true });
});

test("a sha256 mismatch names both hashes and leaves nothing in the cache", async (t) => {
  const cacheDir = freshCache();
  const wrong = "0".repeat(64);
  const e = await t.throwsAsync(ensureDownload({ url: `${base}/file.tar.gz`, sha256: wrong, cacheDir }));
  t.true(e instanceof StepError);
  t.true(e?.message.includes(hex));
  t.true(e?.message.includes(wrong));
  t.false(existsSync(cachedPath(cacheDir, wrong)));
  rmSync(cacheDir, { recursive: true, force: true });
});

test("offline and not cached: BlockedError naming the URL, the sha256 and where to put the file", async (t) => {
  const cacheDir = freshCache();
  const e = await t.throwsAsync(
    ensureDownload({ url: `${base}/file.tar.gz`, sha256: hex, cacheDir, offline: true }),
  );
  t.true(e instanceof BlockedError);
  t.true(e?.message.includes(`${base}/file.tar.gz`));
  t.true(e?.message.includes(hex));
  t.true((e as BlockedError).hint?.includes(cachedPath(cacheDir, hex)));
  t.regex((e as BlockedError).hint ?? "", /netmap-provision fetch --recipe <recipe> --out bundle\.tar/);
});

test("a file copied by hand into the cache is used offline, and a corrupt one is refused", async (t) => {
  const cacheDir = freshCache();
  mkdirSync(join(cacheDir, "downloads", "sha256"), { recursive: true });
  writeFileSync(cachedPath(cacheDir, hex), body);
  const r = await ensureDownload({ url: "http://127.0.0.1:9/nothing", sha256: hex, cacheDir, offline: true });
  t.false(r.downloaded);
  writeFileSync(cachedPath(cacheDir, hex), "tampered");
  await t.throwsAsync(
    ensureDownload({ url: "http://127.0.0.1:9/nothing", sha256: hex, cacheDir, offline: true }),
    {
      instanceOf: BlockedError,
    },
  );
  t.false(existsSync(cachedPath(cacheDir, hex)), "the corrupt copy was removed");
});

test("connection refused and HTTP errors are BlockedErrors naming the URL", async (t) => {
  const cacheDir = freshCache();
  // Port 9 (discard) is one fetch refuses outright ("bad port"); a closed port gives ECONNREFUSED.
  const blocked = await t.throwsAsync(
    ensureDownload({ url: "http://127.0.0.1:9/nothing.tar.gz", sha256: hex, cacheDir }),
  );
  t.true(blocked instanceof BlockedError);
  t.true(blocked?.message.includes("http://127.0.0.1:9/nothing.tar.gz: bad port"));
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const refused = await t.throwsAsync(
    ensureDownload({ url: `http://127.0.0.1:${port}/x`, sha256: hex, cacheDir }),
  );
  t.true(refused instanceof BlockedError);
  t.regex(refused?.message ?? "", /ECONNREFUSED/);
  const missing = await t.throwsAsync(ensureDownload({ url: `${base}/missing`, sha256: hex, cacheDir }));
  t.regex(missing?.message ?? "", /HTTP 404/);
});

test("an unpinned sha256 is a UserError", async (t) => {
  await t.throwsAsync(ensureDownload({ url: `${base}/file.tar.gz`, sha256: "", cacheDir: freshCache() }), {
    instanceOf: UserError,
  });
});

test("preflight lists every missing download before anything runs", async (t) => {
  const cacheDir = freshCache();
  const e = await t.throwsAsync(
    preflightDownloads(
      [
        { url: "http://127.0.0.1:9/a.zip", sha256: "a".repeat(64) },
        { url: "http://127.0.0.1:9/b.zip", sha256: "b".repeat(64) },
      ],
      { cacheDir, offline: true },
    ),
  );
  t.true(e instanceof BlockedError);
  t.regex(e?.message ?? "", /2 file\(s\).*\n.*a\.zip.*\n.*b\.zip/);
  const ok = await preflightDownloads([{ url: `${base}/file.tar.gz`, sha256: hex }], { cacheDir });
  t.is(ok.downloaded.length, 1);
});

test("cache dir: flag, then NETMAP_PROVISION_CACHE, then XDG_CACHE_HOME, then ~/.cache", (t) => {
  t.is(resolveCacheDir("/x", { NETMAP_PROVISION_CACHE: "/y" }), "/x");
  t.is(resolveCacheDir(undefined, { NETMAP_PROVISION_CACHE: "/y", XDG_CACHE_HOME: "/z" }), "/y");
  t.is(resolveCacheDir(undefined, { XDG_CACHE_HOME: "/z" }), "/z/netmap-provision");
  t.regex(resolveCacheDir(undefined, {}), /\.cache\/netmap-provision$/);
});
