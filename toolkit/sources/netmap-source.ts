import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { BlockedError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { redactSecrets, redactUrl } from "../core/redact.js";
import { unpackArchive } from "../core/safe-archive.js";
import { type DownloadSpec, ensureDownload } from "./download.js";
import { checkedGitRef, checkedGitUrl, GIT_ENV } from "./git-args.js";

/**
 * Where netmap's sources come from, resolved to a directory on disk plus an identity that the
 * build cache can key on (a commit, a tarball's sha256, or a content hash of a local tree).
 */

export type NetmapSourceSpec =
  | { kind: "local"; path: string }
  | { kind: "git"; url: string; commit: string; allowMovingRef?: boolean }
  | { kind: "tarball"; url: string; sha256: string };

/**
 * configure: a `configure` script at the top (v11.2+) or in LINUX/ (v11.1).
 * legacy-make: v11.0 and older, `make KSRC=<tree>` in LINUX/, module netmap_lin.ko.
 */
export type NetmapLayout = "configure" | "legacy-make";

export interface ResolvedNetmapSource {
  /** The top of the netmap tree. */
  dir: string;
  layout: NetmapLayout;
  /** The configure script to run (configure layout only). */
  configure?: string;
  /** "commit:<sha>", "sha256:<hex>" or "tree:<hex>": stable across runs for the same content. */
  id: string;
  /** The full commit, for git sources. */
  commit?: string;
  spec: NetmapSourceSpec;
}

export interface ResolveOptions {
  cacheDir: string;
  exec: Exec;
  offline?: boolean;
  logFile?: string;
}

const FULL_SHA = /^[0-9a-f]{40}$/;
const SHORT_SHA = /^[0-9a-f]{7,40}$/;

/** Which layout a tree has, or why it is not a netmap tree. */
export function detectLayout(
  dir: string,
): { layout: NetmapLayout; configure?: string } | { problem: string } {
  if (existsSync(join(dir, "configure"))) return { layout: "configure", configure: join(dir, "configure") };
  if (existsSync(join(dir, "LINUX", "configure")))
    return { layout: "configure", configure: join(dir, "LINUX", "configure") };
  if (existsSync(join(dir, "LINUX", "Makefile"))) return { layout: "legacy-make" };
  return { problem: `${dir} has neither configure, LINUX/configure nor LINUX/Makefile` };
}

/** Names that builds leave behind: not part of a tree's identity. */
const BUILD_OUTPUT =
  /\.(o|ko|mod|mod\.c|cmd|a|order|symvers|d|tmp)$|^\.tmp_versions$|^\.git$|^ext-drivers$|^build-apps$|^config\.log$/;

/**
 * A content hash of a local tree (relative path, mode and bytes of every file), skipping .git
 * build outputs and ext-drivers/ (archives the toolkit places there itself, pinned by sha256), so editing one source file changes the build key and a rebuild happens.
 */
export function treeContentHash(dir: string): string {
  const h = createHash("sha256");
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      if (BUILD_OUTPUT.test(name)) continue;
      const p = join(d, name);
      const st = lstatSync(p);
      const rel = relative(dir, p);
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) h.update(`L ${rel} ${readlinkSync(p)}\n`);
      else if (st.isFile()) {
        h.update(`F ${rel} ${st.mode & 0o111 ? "x" : "-"} ${st.size}\n`);
        h.update(readFileSync(p));
      }
    }
  };
  walk(dir);
  return h.digest("hex");
}

/** The downloads a netmap source needs before any build step (for the offline preflight). */
export function netmapSourceDownloads(spec: NetmapSourceSpec): DownloadSpec[] {
  return spec.kind === "tarball"
    ? [{ url: spec.url, sha256: spec.sha256, label: "netmap source tarball" }]
    : [];
}

function layoutOrThrow(dir: string, what: string): { layout: NetmapLayout; configure?: string } {
  const l = detectLayout(dir);
  if ("problem" in l) {
    throw new UserError(
      `${what} is not a netmap source tree: ${l.problem}`,
      "point netmap.source at the top of a netmap checkout (the folder holding LINUX/)",
    );
  }
  return l;
}

function resolveLocal(path: string): ResolvedNetmapSource {
  if (!existsSync(path)) {
    throw new UserError(
      `netmap source directory ${path} does not exist`,
      "check --netmap-source / netmap.source.path",
    );
  }
  const l = layoutOrThrow(path, path);
  return { dir: path, ...l, id: `tree:${treeContentHash(path)}`, spec: { kind: "local", path } };
}

/**
 * The git commands of a netmap fetch, each made here only (`plan` prints them): the URL and refs
 * after `--`, so nothing from the recipe is read as an option; checkout only ever sees 40 hex.
 */
export const netmapGitArgv = {
  init: (): string[] => ["git", "init", "--quiet"],
  shallowFetch: (url: string, commit: string): string[] => [
    "git",
    "fetch",
    "--quiet",
    "--depth",
    "1",
    "--",
    url,
    commit,
  ],
  fullFetch: (url: string): string[] => [
    "git",
    "fetch",
    "--quiet",
    "--tags",
    "--",
    url,
    "+refs/heads/*:refs/remotes/origin/*",
  ],
  revParse: (candidate: string): string[] => [
    "git",
    "rev-parse",
    "--verify",
    "--quiet",
    "--end-of-options",
    `${candidate}^{commit}`,
  ],
  checkout: (commit: string): string[] => ["git", "checkout", "--quiet", "--detach", commit, "--"],
  head: (): string[] => ["git", "rev-parse", "HEAD"],
};

/** What rev-parse is asked, in order: a commit is itself; a moving ref is a branch, else a tag. */
export const revParseCandidates = (ref: string): string[] =>
  SHORT_SHA.test(ref) ? [ref] : [`origin/${ref}`, ref];

/** Where a fetch is made before it is renamed to `<cache>/netmap/<commit>`. */
export const cloneDirPrefix = (cacheDir: string): string => join(cacheDir, "netmap", ".clone-");

/** The cached checkout of a pinned commit, when there is one (a moving ref is never reused). */
export function cachedNetmapCheckout(cacheDir: string, ref: string): string | undefined {
  const root = join(cacheDir, "netmap");
  if (!SHORT_SHA.test(ref) || !existsSync(root)) return undefined;
  const n = readdirSync(root).find(
    (x) => FULL_SHA.test(x) && x.startsWith(ref) && existsSync(join(root, x, ".netmap-provision-ok")),
  );
  return n === undefined ? undefined : join(root, n);
}

/** A git checkout in the cache: `<cache>/netmap/<commit>`, reused when HEAD is that commit. */
async function resolveGit(
  spec: Extract<NetmapSourceSpec, { kind: "git" }>,
  o: ResolveOptions,
): Promise<ResolvedNetmapSource> {
  const ref = checkedGitRef(spec.commit.trim(), "netmap.source.commit");
  const url = checkedGitUrl(spec.url, "netmap.source.url");
  // What messages, logs and the cache may show: never the URL's password.
  const shown = redactUrl(url);
  const isSha = SHORT_SHA.test(ref);
  if (!isSha && !spec.allowMovingRef) {
    throw new UserError(
      `netmap.source.commit "${ref}" is not a commit id: a branch or tag can move, so the build would not be reproducible`,
      "pin a commit (git ls-remote <url> <ref>), or set netmap.source.allowMovingRef: true",
    );
  }
  const run = (argv: string[], cwd: string, reject = true) =>
    o.exec.run(argv, { cwd, logFile: o.logFile, reject, env: GIT_ENV });
  const headOf = async (dir: string) => (await run(netmapGitArgv.head(), dir)).stdout.trim();

  const root = join(o.cacheDir, "netmap");
  const cached = cachedNetmapCheckout(o.cacheDir, ref);
  if (cached) {
    const existing = basename(cached);
    return {
      dir: cached,
      ...layoutOrThrow(cached, cached),
      id: `commit:${existing}`,
      commit: existing,
      spec,
    };
  }
  if (o.offline) {
    throw new BlockedError(
      `offline and netmap ${ref} from ${shown} is not in the cache (${root})`,
      "on a connected host run `netmap-provision fetch --recipe <recipe> --out bundle.tar`, or point --netmap-source at a local checkout",
    );
  }
  mkdirSync(root, { recursive: true });
  const tmp = `${cloneDirPrefix(o.cacheDir)}${randomBytes(4).toString("hex")}`;
  try {
    mkdirSync(tmp);
    await run(netmapGitArgv.init(), tmp);
    // A shallow fetch of one commit needs its full id and a server that allows it; else clone all.
    // The URL and refs come after `--`: nothing from the recipe is read as an option.
    const shallow =
      FULL_SHA.test(ref) && (await run(netmapGitArgv.shallowFetch(url, ref), tmp, false)).exitCode === 0;
    if (!shallow) {
      const full = await run(netmapGitArgv.fullFetch(url), tmp, false);
      if (full.exitCode !== 0) {
        const why = redactSecrets((full.stderr || full.stdout).trim().split("\n").slice(-2).join(" "));
        throw new BlockedError(
          `cannot fetch netmap from ${shown}: ${why}`,
          "check the URL and the network, or use `netmap-provision fetch` on a connected host and a bundle here",
        );
      }
    }
    // A moving ref is a branch (origin/<ref>) or a tag (<ref>); a commit is itself. Each is
    // resolved to a full commit id first, so checkout only ever sees 40 hex digits.
    let commit: string | undefined;
    for (const c of revParseCandidates(ref)) {
      const r = await run(netmapGitArgv.revParse(c), tmp, false);
      const sha = r.stdout.trim();
      if (r.exitCode === 0 && FULL_SHA.test(sha)) {
        commit = sha;
        break;
      }
    }
    if (!commit || (await run(netmapGitArgv.checkout(commit), tmp, false)).exitCode !== 0) {
      throw new UserError(
        `netmap ${isSha ? "commit" : "ref"} ${ref} is not in ${shown}`,
        "check netmap.source.commit (git log in a checkout of that repository)",
      );
    }
    const head = await headOf(tmp);
    if (isSha && !head.startsWith(ref)) {
      throw new UserError(
        `checked out ${head}, which is not the pinned commit ${ref}`,
        "check netmap.source.commit",
      );
    }
    const dir = join(root, head);
    if (existsSync(join(dir, ".netmap-provision-ok"))) {
      rmSync(tmp, { recursive: true, force: true });
    } else {
      rmSync(dir, { recursive: true, force: true });
      writeFileSync(join(tmp, ".netmap-provision-ok"), `${shown} ${head}\n`);
      renameSync(tmp, dir);
    }
    return { dir, ...layoutOrThrow(dir, `${shown} at ${head}`), id: `commit:${head}`, commit: head, spec };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** A netmap release tarball is a few MB; anything far larger is not one. */
export const NETMAP_TARBALL_LIMITS = { maxBytes: 512 * 1024 * 1024, maxMembers: 50_000 };

/** A tarball in the download cache, unpacked once into `<cache>/netmap/sha256-<hex>`. */
async function resolveTarball(
  spec: Extract<NetmapSourceSpec, { kind: "tarball" }>,
  o: ResolveOptions,
): Promise<ResolvedNetmapSource> {
  const { path } = await ensureDownload({
    url: spec.url,
    sha256: spec.sha256,
    cacheDir: o.cacheDir,
    offline: o.offline,
    label: "netmap source tarball",
  });
  const hex = spec.sha256.toLowerCase();
  const dir = join(o.cacheDir, "netmap", `sha256-${hex}`);
  if (!existsSync(join(dir, ".netmap-provision-ok"))) {
    mkdirSync(dirname(dir), { recursive: true });
    // Checked member by member before anything is extracted (toolkit/core/safe-archive.ts).
    const u = await unpackArchive(path, {
      what: "netmap source tarball",
      hint: `check netmap.source.url and sha256 (${spec.url}); remove ${path} to download it again`,
      limits: NETMAP_TARBALL_LIMITS,
      exec: o.exec,
      parent: dirname(dir),
      prefix: `.unpack-sha256-${hex.slice(0, 12)}-`,
      ...(o.logFile ? { logFile: o.logFile } : {}),
    });
    try {
      // Release tarballs wrap the tree in one folder (netmap-<ver>/): use its contents.
      const top = readdirSync(u.dir);
      const inner =
        top.length === 1 && lstatSync(join(u.dir, top[0] as string)).isDirectory()
          ? join(u.dir, top[0] as string)
          : u.dir;
      layoutOrThrow(inner, spec.url);
      rmSync(dir, { recursive: true, force: true });
      renameSync(inner, dir);
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, ".netmap-provision-ok"), `${redactUrl(spec.url)} ${hex}\n`);
    } finally {
      u.dispose();
    }
  }
  return { dir, ...layoutOrThrow(dir, dir), id: `sha256:${hex}`, spec };
}

/** Resolve a netmap source spec to a tree on disk with its identity. */
export async function resolveNetmapSource(
  spec: NetmapSourceSpec,
  o: ResolveOptions,
): Promise<ResolvedNetmapSource> {
  switch (spec.kind) {
    case "local":
      return resolveLocal(spec.path);
    case "git":
      return resolveGit(spec, o);
    case "tarball":
      return resolveTarball(spec, o);
  }
}
