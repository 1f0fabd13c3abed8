import { createHash, randomBytes } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { BlockedError, StepError, UserError } from "../core/errors.js";
import { redactSecrets, redactUrl } from "../core/redact.js";

/**
 * A content-addressed download cache: `<cacheDir>/downloads/sha256/<hex>`. A file only ever
 * reaches its final name after its sha256 was checked, so an interrupted download never looks
 * cached, and a file copied there by hand (air-gapped hosts) is verified before it is used.
 */

/** One file a build needs from the network, pinned by its sha256. */
export interface DownloadSpec {
  url: string;
  sha256: string;
  /** What it is, for messages ("igb driver archive"). */
  label?: string;
}

export interface DownloadOptions extends DownloadSpec {
  cacheDir: string;
  /** Never touch the network: a file not in the cache is a BlockedError. */
  offline?: boolean;
  timeoutMs?: number;
}

export interface DownloadResult {
  path: string;
  /** False when the cache already had it. */
  downloaded: boolean;
  bytes: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The cache root: an explicit flag, else $NETMAP_PROVISION_CACHE, else $XDG_CACHE_HOME/netmap-provision,
 * else ~/.cache/netmap-provision (the XDG default).
 */
export function resolveCacheDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (env.NETMAP_PROVISION_CACHE) return env.NETMAP_PROVISION_CACHE;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "netmap-provision");
  return join(homedir(), ".cache", "netmap-provision");
}

/** Where a file with this sha256 lives in the cache. */
export function cachedPath(cacheDir: string, sha256: string): string {
  return join(cacheDir, "downloads", "sha256", sha256.toLowerCase());
}

/** sha256 of a file, streamed (kernel tarballs are 100+ MB). */
export async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  await pipeline(createReadStream(path), h);
  return h.digest("hex");
}

/** What to tell a user whose host cannot download `spec`. */
export function supplyHint(spec: DownloadSpec, cacheDir: string): string {
  return (
    `on a connected host run \`netmap-provision fetch --recipe <recipe> --out bundle.tar\` and use the bundle here, ` +
    `or download ${redactUrl(spec.url)} yourself, check that its sha256 is ${spec.sha256}, and copy it to ${cachedPath(cacheDir, spec.sha256)}`
  );
}

function checkPin(spec: DownloadSpec): string {
  const hex = spec.sha256?.toLowerCase() ?? "";
  if (!HEX64.test(hex)) {
    throw new UserError(
      `${spec.label ?? redactUrl(spec.url)}: sha256 "${spec.sha256 ?? ""}" is not a 64-digit hex digest`,
      "pin the file's sha256 in the recipe (sha256sum <file> on a trusted copy)",
    );
  }
  return hex;
}

/** Is the cached copy present and intact? A corrupt copy is removed so it gets fetched again. */
async function verifiedCached(path: string, hex: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  const got = await hashFile(path);
  if (got === hex) return true;
  rmSync(path, { force: true });
  return false;
}

/** Node's fetch hides the reason in `cause` (ECONNREFUSED, ENOTFOUND...). */
function networkReason(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** Stream `url` into `tmp`, returning its sha256 and size. file:// URLs are copied (local mirrors). */
async function fetchTo(url: string, tmp: string, timeoutMs: number): Promise<{ hex: string; bytes: number }> {
  const h = createHash("sha256");
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  if (url.startsWith("file://")) {
    await pipeline(createReadStream(fileURLToPath(url)), tap, createWriteStream(tmp));
    return { hex: h.digest("hex"), bytes };
  }
  const { href, headers } = withoutCredentials(url);
  const res = await fetch(href, { signal: AbortSignal.timeout(timeoutMs), redirect: "follow", headers });
  if (!res.ok || res.body === null) throw new HttpStatusError(res.status, res.statusText);
  await pipeline(
    Readable.fromWeb(res.body as import("node:stream/web").ReadableStream),
    tap,
    createWriteStream(tmp),
  );
  return { hex: h.digest("hex"), bytes };
}

/**
 * fetch() refuses URLs with credentials: `https://user:password@host/...` becomes the bare URL
 * plus HTTP basic authentication, so a private mirror works and the password stays off the URL.
 */
function withoutCredentials(url: string): { href: string; headers: Record<string, string> } {
  const u = new URL(url);
  if (u.username === "" && u.password === "") return { href: url, headers: {} };
  const auth = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  u.username = "";
  u.password = "";
  return { href: u.href, headers: { authorization: `Basic ${Buffer.from(auth).toString("base64")}` } };
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    statusText: string,
  ) {
    super(`HTTP ${status} ${statusText}`);
  }
}

/**
 * The cached, verified path of a pinned file; downloads it when missing (unless offline).
 * Download goes to a temp file next to the final name and is renamed only once its sha256 matched.
 */
export async function ensureDownload(opts: DownloadOptions): Promise<DownloadResult> {
  const hex = checkPin(opts);
  const final = cachedPath(opts.cacheDir, hex);
  if (await verifiedCached(final, hex))
    return { path: final, downloaded: false, bytes: statSync(final).size };
  const shown = redactUrl(opts.url);
  const what = opts.label ? `${opts.label} (${shown})` : shown;
  if (opts.offline) {
    throw new BlockedError(
      `offline and ${what} is not in the download cache (sha256 ${hex})`,
      supplyHint({ ...opts, sha256: hex }, opts.cacheDir),
    );
  }
  mkdirSync(join(opts.cacheDir, "downloads", "sha256"), { recursive: true });
  const tmp = `${final}.part-${randomBytes(4).toString("hex")}`;
  try {
    let got: { hex: string; bytes: number };
    try {
      got = await fetchTo(opts.url, tmp, opts.timeoutMs ?? 10 * 60_000);
    } catch (err) {
      const reason = redactSecrets(err instanceof HttpStatusError ? err.message : networkReason(err));
      throw new BlockedError(
        `cannot download ${what}: ${reason} (needed with sha256 ${hex})`,
        supplyHint({ ...opts, sha256: hex }, opts.cacheDir),
      );
    }
    if (got.hex !== hex) {
      throw new StepError(
        "download",
        `${what} has sha256 ${got.hex}, but the recipe pins ${hex} (${got.bytes} bytes received)`,
        "the file changed upstream or the pin is wrong: check the URL, then fix the sha256 in the recipe only if you trust the new file",
      );
    }
    renameSync(tmp, final);
    return { path: final, downloaded: true, bytes: got.bytes };
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Result of checking every download a build needs, before the build starts. */
export interface PreflightResult {
  paths: Map<string, string>;
  downloaded: DownloadSpec[];
}

/**
 * Make sure every pinned file a build needs is in the cache (fetching what is missing unless
 * offline) BEFORE any build step runs, so an offline host fails in seconds, naming every URL,
 * instead of half-way through a build.
 */
export async function preflightDownloads(
  list: DownloadSpec[],
  opts: { cacheDir: string; offline?: boolean; timeoutMs?: number },
): Promise<PreflightResult> {
  const paths = new Map<string, string>();
  const downloaded: DownloadSpec[] = [];
  const missing: Array<{ spec: DownloadSpec; why: string }> = [];
  for (const spec of list) {
    try {
      const r = await ensureDownload({ ...spec, ...opts });
      paths.set(spec.sha256.toLowerCase(), r.path);
      if (r.downloaded) downloaded.push(spec);
    } catch (err) {
      if (!(err instanceof BlockedError)) throw err;
      missing.push({ spec, why: err.message });
    }
  }
  if (missing.length > 0) {
    const first = missing[0] as { spec: DownloadSpec };
    throw new BlockedError(
      `${missing.length} file(s) the build needs are not available, nothing was built:\n${missing
        .map((m) => `  - ${m.why}`)
        .join("\n")}`,
      missing.length === 1
        ? supplyHint(first.spec, opts.cacheDir)
        : `on a connected host run \`netmap-provision fetch --recipe <recipe> --out bundle.tar\`, or download each URL, check its sha256, and copy it to ${join(opts.cacheDir, "downloads", "sha256")}/<sha256>`,
    );
  }
  return { paths, downloaded };
}
