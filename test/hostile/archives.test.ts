import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { bundleTar, fakeBundleParts, hostileBundles, sha256 } from "../helpers/bundle-craft.js";
import { corpusCases, hostileCase, type Scratch, scratch } from "../helpers/hostile.js";
import { FIXTURE_RELEASE } from "../helpers/hosts.js";
import { type CraftEntry, craftTar, writeGzipBomb } from "../helpers/tar-craft.js";

/**
 * Hostile-input corpus, archives (issue 11, point 1): crafted build bundles for `up --from` and
 * sources bundles for `fetch --import`. Every case is refused with exit 2 naming the archive and
 * the problem; nothing outside the scratch cache/state changes, and nothing is left unpacked in
 * TMPDIR (hostileCase). `up` runs with --root: a bundle is checked before anything else, so a
 * good one gets as far as "only runs on the host itself", and a bad one never does.
 */

/** Two cases at a time: each starts the CLI, some of them several times. */
const corpus = corpusCases(test);

const base = fakeBundleParts(FIXTURE_RELEASE);

const upArgs = (s: Scratch, bundle: string, json = false) => [
  "up",
  ...(json ? ["--json"] : []),
  "--from",
  bundle,
  "--root",
  s.host,
  "--state-dir",
  s.state,
  "--cache-dir",
  s.cache,
];

/** Something an attack would like to overwrite or delete, so the listing shows it if it did. */
function bait(s: Scratch): void {
  writeFileSync(join(s.outside, "etc", "hostname"), "outside\n");
  writeFileSync(join(s.outside, "keep"), "keep\n");
}

/** A refused `up --from`: exit 2, the bundle named, the problem named, human and --json. */
async function refusedBundle(
  t: ExecutionContext,
  name: string,
  bytes: Buffer,
  message: RegExp,
): Promise<void> {
  const s = scratch(t);
  bait(s);
  const file = s.input(name);
  writeFileSync(file, bytes);
  // Both the bundle's path and the problem, wherever each is in the message.
  const where = new RegExp(
    `^(?=[\\s\\S]*${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})(?=[\\s\\S]*${message.source})`,
  );
  for (const json of [false, true]) {
    const r = await hostileCase(t, s, { args: upArgs(s, file, json), exit: 2, message: where });
    t.notRegex(r.stderr, /only runs on the host itself/, "refused before the --root check");
  }
  t.deepEqual(readdirSync(s.state), [], "the state dir is untouched (no lock, no journal)");
}

for (const c of hostileBundles(base))
  corpus(`up --from: a crafted bundle (${c.id}) is refused with exit 2`, (t) =>
    refusedBundle(t, `${c.id}.tar`, c.bytes, c.message),
  );

corpus("up --from: a good bundle passes every check (then up refuses --root)", async (t) => {
  const s = scratch(t);
  const file = s.input("good.tar");
  writeFileSync(file, bundleTar(base));
  await hostileCase(t, s, { args: upArgs(s, file), exit: 2, message: /only runs on the host itself/ });
});

corpus("up --from: a bundle named host:file.tar is a local file, not a remote archive", async (t) => {
  const s = scratch(t);
  const file = s.input("host:file.tar");
  writeFileSync(file, bundleTar(base));
  await hostileCase(t, s, { args: upArgs(s, file, true), exit: 2, message: /only runs on the host itself/ });
  // Relative, as a user types it: tar without --force-local reads "host:" as a remote host (rsh).
  await hostileCase(t, s, {
    args: upArgs(s, "host:file.tar"),
    cwd: s.in,
    exit: 2,
    message: /only runs on the host itself/,
  });
  const bad = s.input("evil:x.tar");
  writeFileSync(bad, hostileBundles(base)[0]?.bytes ?? Buffer.alloc(0));
  await hostileCase(t, s, {
    args: upArgs(s, bad),
    exit: 2,
    message: /evil:x\.tar is not a netmap-provision build manifest: .*a module name/,
  });
});

corpus("up --from: a 300 MB gzip bomb is stopped by the decompression cap, quickly", async (t) => {
  const s = scratch(t);
  const file = s.input("bomb.tar.gz");
  await writeGzipBomb(file, "artifacts/zeros", 300 * 1024 * 1024);
  const started = Date.now();
  await hostileCase(t, s, {
    args: upArgs(s, file, true),
    exit: 2,
    message: /bomb\.tar\.gz: it decompresses to more than .*decompression bomb/,
  });
  t.true(Date.now() - started < 30_000, `${Date.now() - started} ms`);
});

corpus(
  "up --from: a bundle with more members than a bundle ever has is refused before extraction",
  async (t) => {
    const s = scratch(t);
    const extra: CraftEntry[] = Array.from({ length: 10_001 }, (_, i) => ({
      name: `artifacts/f${i}`,
      data: "",
    }));
    const file = s.input("many.tar");
    writeFileSync(file, bundleTar(base, { extra }));
    await hostileCase(t, s, {
      args: upArgs(s, file),
      exit: 2,
      message: /many\.tar: it holds more than 10000 members, the limit for a build bundle/,
    });
  },
);

corpus("up --from: a missing bundle, a directory and a FIFO are exit 2 naming the path", async (t) => {
  const s = scratch(t);
  await hostileCase(t, s, {
    args: upArgs(s, s.input("nope.tar"), true),
    exit: 2,
    message: /build bundle .*nope\.tar does not exist/,
  });
  await hostileCase(t, s, { args: upArgs(s, s.in), exit: 2, message: /is not a regular file/ });
  const fifo = s.input("fifo.tar");
  execFileSync("mkfifo", [fifo]);
  await hostileCase(t, s, { args: upArgs(s, fifo), exit: 2, message: /fifo\.tar is not a regular file/ });
});

// --- fetch --import ------------------------------------------------------------------------------

const COMMIT = "89607e1406c1fa5ac2106bd2ff33417f090c0d60";
const blob = Buffer.from("an external driver archive\n");
const HEX = sha256(blob);

interface SourcesBundle {
  manifest?: unknown;
  manifestText?: string;
  members?: CraftEntry[];
}

/** A sources bundle as `fetch --out` writes it: downloads/sha256/<hex>, netmap/<commit>/, the list. */
function sourcesTar(o: SourcesBundle = {}): Buffer {
  const manifest = o.manifest ?? {
    format: 1,
    entries: [
      { kind: "download", path: `downloads/sha256/${HEX}`, url: "https://example.org/d.tar.gz", sha256: HEX },
      {
        kind: "netmap-git",
        path: `netmap/${COMMIT}`,
        url: "https://github.com/luigirizzo/netmap",
        commit: COMMIT,
      },
    ],
  };
  const members = o.members ?? [
    { name: "downloads/", type: "dir" },
    { name: "downloads/sha256/", type: "dir" },
    { name: `downloads/sha256/${HEX}`, data: blob },
    { name: "netmap/", type: "dir" },
    { name: `netmap/${COMMIT}/`, type: "dir" },
    { name: `netmap/${COMMIT}/configure`, data: "#!/bin/sh\n", mode: 0o755 },
    { name: `netmap/${COMMIT}/.netmap-provision-ok`, data: "x\n" },
    { name: `netmap/${COMMIT}/LINUX/`, type: "dir" },
    { name: `netmap/${COMMIT}/LINUX/configure`, type: "symlink", linkname: "../configure" },
  ];
  return craftTar([
    ...members,
    { name: "fetch-manifest.json", data: o.manifestText ?? `${JSON.stringify(manifest, null, 2)}\n` },
  ]);
}

const importArgs = (s: Scratch, file: string, json = false) => [
  "fetch",
  ...(json ? ["--json"] : []),
  "--import",
  file,
  "--cache-dir",
  s.cache,
];

/** Refused: exit 2, the bundle and problem named, the cache holds nothing (no entry, no stage dir). */
async function refusedImport(t: ExecutionContext, bytes: Buffer, message: RegExp): Promise<void> {
  const s = scratch(t);
  bait(s);
  const file = s.input("sources.tar");
  writeFileSync(file, bytes);
  for (const json of [false, true])
    await hostileCase(t, s, { args: importArgs(s, file, json), exit: 2, message });
  t.deepEqual(readdirSync(s.cache), [], "nothing imported, no stage dir left in the cache");
}

corpus("fetch --import: a good sources bundle lands in the cache by its validated paths", async (t) => {
  const s = scratch(t);
  const file = s.input("sources.tar");
  writeFileSync(file, sourcesTar());
  const r = await hostileCase(t, s, { args: importArgs(s, file, true), exit: 0 });
  t.is((r.json?.imported as unknown[] | undefined)?.length, 2);
  t.is(readFileSync(join(s.cache, "downloads", "sha256", HEX), "utf8"), blob.toString());
  t.true(existsSync(join(s.cache, "netmap", COMMIT, "LINUX", "configure")));
  t.deepEqual(readdirSync(s.cache).sort(), ["downloads", "netmap"]);
});

corpus(
  "fetch --import: an entry path climbing out of the cache (../) is refused, outside untouched",
  async (t) => {
    for (const path of ["../outside/keep", "../outside", `downloads/sha256/../../../outside/${HEX}`])
      await refusedImport(
        t,
        sourcesTar({
          manifest: {
            format: 1,
            entries: [{ kind: "download", path, url: "https://example.org/x", sha256: HEX }],
          },
        }),
        /fetch-manifest\.json in .*sources\.tar is not a sources bundle manifest: entries\.0\.path: a download's path must be downloads\/sha256\/<64 hex digits>/,
      );
    await refusedImport(
      t,
      sourcesTar({
        manifest: {
          format: 1,
          entries: [{ kind: "netmap-git", path: "../../outside", url: "https://x.org/n", commit: COMMIT }],
        },
      }),
      /entries\.0\.path: a netmap checkout's path must be netmap\/<40 hex digits>/,
    );
  },
);

corpus("fetch --import: absolute entry paths and absolute or traversing members are refused", async (t) => {
  await refusedImport(
    t,
    sourcesTar({
      manifest: {
        format: 1,
        entries: [{ kind: "download", path: "/tmp/x", url: "https://example.org/x", sha256: HEX }],
      },
    }),
    /entries\.0\.path: a download's path must be/,
  );
  await refusedImport(
    t,
    sourcesTar({ members: [{ name: "/etc/cron.d/x", data: "x" }] }),
    /member "\/etc\/cron\.d\/x" is an absolute path/,
  );
  await refusedImport(
    t,
    sourcesTar({ members: [{ name: "../outside/x", data: "x" }] }),
    /member "\.\.\/outside\/x" has a "\.\." segment/,
  );
});

corpus("fetch --import: a symlink member pointing at /etc, or out of its checkout, is refused", async (t) => {
  const tree = (extra: CraftEntry[]): CraftEntry[] => [
    { name: "downloads/sha256/", type: "dir" },
    { name: `downloads/sha256/${HEX}`, data: blob },
    { name: `netmap/${COMMIT}/`, type: "dir" },
    { name: `netmap/${COMMIT}/configure`, data: "#!/bin/sh\n" },
    ...extra,
  ];
  await refusedImport(
    t,
    sourcesTar({ members: tree([{ name: `netmap/${COMMIT}/etc`, type: "symlink", linkname: "/etc" }]) }),
    new RegExp(`member "netmap/${COMMIT}/etc" is a symbolic link that points to the absolute path /etc`),
  );
  await refusedImport(
    t,
    sourcesTar({
      members: tree([{ name: `netmap/${COMMIT}/up`, type: "symlink", linkname: "../../../outside" }]),
    }),
    /is a symbolic link that points to \.\.\/\.\.\/\.\.\/outside, which climbs out of the tree/,
  );
  await refusedImport(
    t,
    sourcesTar({
      members: tree([{ name: `netmap/${COMMIT}/dl`, type: "symlink", linkname: "../../downloads" }]),
    }),
    new RegExp(
      `netmap/${COMMIT}/dl is a symbolic link to "\\.\\./\\.\\./downloads", which leaves netmap/${COMMIT}`,
    ),
  );
});

corpus(
  "fetch --import: entries of the wrong type, a wrong sha256, a malformed list are exit 2",
  async (t) => {
    await refusedImport(
      t,
      sourcesTar({
        members: [
          { name: `downloads/sha256/${HEX}/`, type: "dir" },
          { name: `netmap/${COMMIT}/`, type: "dir" },
        ],
      }),
      new RegExp(`downloads/sha256/${HEX} is not a regular file`),
    );
    await refusedImport(
      t,
      sourcesTar({
        members: [
          { name: `downloads/sha256/${HEX}`, data: "tampered" },
          { name: `netmap/${COMMIT}/`, type: "dir" },
        ],
      }),
      new RegExp(`downloads/sha256/${HEX} has sha256 [0-9a-f]{64}, not ${HEX}`),
    );
    await refusedImport(
      t,
      sourcesTar({ manifestText: '{"format": 1, "entries": [' }),
      /fetch-manifest\.json in .* is not valid JSON/,
    );
    await refusedImport(
      t,
      craftTar([{ name: "x", data: "x" }]),
      /is not a sources bundle \(no fetch-manifest\.json\)/,
    );
  },
);

corpus("fetch --import: a missing file is exit 2 saying it does not exist and what to pass", async (t) => {
  const s = scratch(t);
  for (const json of [false, true])
    await hostileCase(t, s, {
      args: importArgs(s, s.input("nope.tar"), json),
      exit: 2,
      message: /sources bundle .*nope\.tar does not exist[\s\S]*fetch --out/,
    });
});
