import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { execaSync } from "execa";
import { corpusCases, hostileCase, type Scratch, scratch } from "../helpers/hostile.js";
import { FIXTURE_RELEASE } from "../helpers/hosts.js";

/**
 * Hostile-input corpus, state files and state dirs (issue 11, points 3 and 4): installed.json,
 * the journal, the lock and deadman.json damaged, foreign, forged, a FIFO or huge; --state-dir and
 * --cache-dir values that are empty, a file, or on /proc or /sys. Each is exit 2 naming the file
 * (or the flag) and what to do, with nothing changed outside the scratch state and cache dirs, no
 * hang and no exit 70. `down` with a forged record refuses before touching anything.
 *
 * `up` only runs on the host itself (--root /), and this machine is one: its cases run with
 * NETMAP_PROVISION_STOP_AT_STEP=1, so even if a case got past the state checks, up would kill
 * itself right after journaling its first change and before making it.
 */

const kver = FIXTURE_RELEASE;
const sha256 = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
const UP_GUARD = { NETMAP_PROVISION_STOP_AT_STEP: "1" };

const corpus = corpusCases(test);

const installed = (s: Scratch) => join(s.state, "installed.json");

/** status, status --json and down, each refusing with exit 2 and this message. */
async function refusedByReaders(t: ExecutionContext, s: Scratch, message: RegExp, timeoutMs = 20_000) {
  for (const args of [
    ["status", "--root", s.host, "--state-dir", s.state],
    ["status", "--json", "--root", s.host, "--state-dir", s.state],
    ["down", "--root", s.host, "--state-dir", s.state],
    ["down", "--json", "--root", s.host, "--state-dir", s.state],
  ])
    await hostileCase(t, s, { args, exit: 2, message, timeoutMs });
}

/** `up` (on this host, guarded) refuses as well. */
async function refusedByUp(t: ExecutionContext, s: Scratch, message: RegExp) {
  for (const json of [[], ["--json"]])
    await hostileCase(t, s, {
      args: ["up", ...json, "--state-dir", s.state, "--cache-dir", s.cache],
      exit: 2,
      message,
      env: UP_GUARD,
      timeoutMs: 30_000,
    });
}

// --- installed.json damaged, foreign, a FIFO, huge -----------------------------------------------

const damaged: Array<[string, (s: Scratch) => void, RegExp]> = [
  ["empty", (s) => writeFileSync(installed(s), ""), /it is empty/],
  [
    "truncated",
    (s) => writeFileSync(installed(s), `{"kernelRelease": "${kver}", "strategy": "upd`),
    /not valid JSON/,
  ],
  ["[]", (s) => writeFileSync(installed(s), "[]"), /not a record netmap-provision wrote/],
  ['{"foo":1}', (s) => writeFileSync(installed(s), '{"foo":1}'), /not a record netmap-provision wrote/],
  [
    "a FIFO",
    (s) => {
      execaSyncFifo(installed(s));
    },
    /is a FIFO \(named pipe\), not a regular file/,
  ],
  ["a directory", (s) => mkdirSync(installed(s)), /is a directory, not a regular file/],
  [
    "huge (64 MiB, sparse)",
    (s) => {
      writeFileSync(installed(s), "");
      truncateSync(installed(s), 64 * 1024 * 1024);
    },
    /the limit is 4\.0 MiB/,
  ],
];

function execaSyncFifo(path: string): void {
  // mkfifo through the real tool, as an attacker would plant one.
  execaSync("mkfifo", [path]);
}

for (const [what, plant, why] of damaged) {
  corpus(`installed.json ${what}: status, status --json, down and up exit 2 naming the file`, async (t) => {
    const s = scratch(t);
    plant(s);
    const message = new RegExp(
      `installed\\.json in ${s.state} is damaged: [^\\n]*${why.source}[\\s\\S]*move it aside`,
    );
    await refusedByReaders(t, s, message);
    await refusedByUp(t, s, message);
  });
}

// --- installed.json forged: down refuses before touching anything --------------------------------

interface Forged {
  kernelRelease?: string;
  backups?: Array<{ content: string; suffix: string }>;
  modules?: unknown[];
  files?: unknown[];
  createdDirs?: string[];
}

/** A well-formed record around the forged parts; backups are really in the state dir. */
function writeRecord(s: Scratch, f: Forged): void {
  for (const b of f.backups ?? []) {
    mkdirSync(join(s.state, "backups", kver), { recursive: true });
    writeFileSync(join(s.state, "backups", kver, `${sha256(b.content)}${b.suffix}`), b.content);
  }
  writeFileSync(
    installed(s),
    JSON.stringify({
      kernelRelease: f.kernelRelease ?? kver,
      strategy: "replace",
      modules: f.modules ?? [],
      files: f.files ?? [],
      createdDirs: f.createdDirs ?? [],
      installedAt: "2026-01-01T00:00:00.000Z",
    }),
  );
}

const EVIL = "evil bytes\n";
const ref = (s: Scratch, path: string, suffix = ".ko", content = EVIL) => ({
  path,
  backupPath: join(s.state, "backups", kver, `${sha256(content)}${suffix}`),
  sha256: sha256(content),
  mode: 0o644,
  uid: 0,
  gid: 0,
  mtimeMs: 0,
  size: content.length,
});
/** A module netmap-provision could have installed; "np_forged" is loaded nowhere. */
const mod = (extra: Record<string, unknown>) => ({
  module: "np_forged",
  path: `/lib/modules/${kver}/updates/netmap/np_forged.ko`,
  sha256: sha256("patched"),
  ...extra,
});

/**
 * [what, the forged parts, what down says, status's exit]: status reads the record through the
 * same checks (shape, confined paths) but does not look for backups or symlinks, which only down
 * needs before it changes anything.
 */
const forged: Array<[string, (s: Scratch) => Forged, RegExp, number]> = [
  [
    "replacedOriginal at a host file (/etc/np-evil.ko)",
    (s) => ({
      backups: [{ content: EVIL, suffix: ".ko" }],
      modules: [mod({ replacedOriginal: ref(s, "/etc/np-evil.ko") })],
    }),
    /replacedOriginal\.path \/etc\/np-evil\.ko: not under \/lib\/modules\//,
    2,
  ],
  [
    "replacedOriginal climbing out of the root (/../outside/etc/np-evil.ko)",
    (s) => ({
      backups: [{ content: EVIL, suffix: ".ko" }],
      modules: [mod({ replacedOriginal: ref(s, "/../outside/etc/np-evil.ko") })],
    }),
    /replacedOriginal\.path: expected an absolute path without `\.\.`/,
    2,
  ],
  [
    "replacedOriginal through a symlink in the module tree that leads outside",
    (s) => {
      mkdirSync(join(s.host, "lib/modules", kver, "kernel"), { recursive: true });
      symlinkSync(join(s.outside, "etc"), join(s.host, "lib/modules", kver, "kernel", "evil"));
      return {
        backups: [{ content: EVIL, suffix: ".ko" }],
        modules: [mod({ replacedOriginal: ref(s, `/lib/modules/${kver}/kernel/evil/np-evil.ko`) })],
      };
    },
    /kernel\/evil\/np-evil\.ko leads to .*outside\/etc\/np-evil\.ko, outside /,
    0,
  ],
  [
    "a backup outside the state dir",
    (s) => {
      writeFileSync(join(s.outside, "payload.ko"), EVIL);
      return {
        modules: [
          mod({
            replacedOriginal: {
              ...ref(s, `/lib/modules/${kver}/kernel/np_forged.ko`),
              backupPath: join(s.outside, "payload.ko"),
            },
          }),
        ],
      };
    },
    /replacedOriginal\.backupPath .*payload\.ko: not the backup of sha256/,
    2,
  ],
  [
    "a backup that is missing",
    (s) => ({ modules: [mod({ replacedOriginal: ref(s, `/lib/modules/${kver}/kernel/np_forged.ko`) })] }),
    /the backup .* of \/lib\/modules\/.*np_forged\.ko is missing/,
    0,
  ],
  [
    "a backup whose bytes are not the recorded sha256",
    (s) => {
      mkdirSync(join(s.state, "backups", kver), { recursive: true });
      writeFileSync(join(s.state, "backups", kver, `${sha256(EVIL)}.ko`), "other bytes\n");
      return { modules: [mod({ replacedOriginal: ref(s, `/lib/modules/${kver}/kernel/np_forged.ko`) })] };
    },
    /does not have the recorded sha256/,
    0,
  ],
  [
    "an initramfs whose regenerate command is a command of the attacker's",
    (s) => ({
      files: [
        {
          path: `/boot/initrd.img-${kver}`,
          sha256: sha256("x"),
          kind: "initramfs",
          regenerate: ["touch", join(s.outside, "pwned")],
        },
      ],
    }),
    /regenerate .*touch.*: not the command that regenerates \/boot\/initrd\.img-/,
    2,
  ],
  [
    "a file outside the config dirs (/etc/hostname)",
    () => ({ files: [{ path: "/etc/hostname", sha256: sha256("x") }] }),
    /files\[0\] path \/etc\/hostname: not a \.conf file in \/etc\/modules-load\.d or \/etc\/modprobe\.d/,
    2,
  ],
  [
    "a module name that is a path",
    () => ({ modules: [mod({ module: "../../../../tmp/x" })] }),
    /modules\.0\.module: expected a module name/,
    2,
  ],
  [
    "a created directory that up never creates (/etc/cron.d)",
    () => ({ createdDirs: ["/etc/cron.d"] }),
    /createdDirs\[0\] \/etc\/cron\.d: not a directory up creates/,
    2,
  ],
  [
    "a kernel release that is a path",
    () => ({ kernelRelease: "../../../outside" }),
    /kernelRelease: expected a kernel release/,
    2,
  ],
];

for (const [what, make, why, statusExit] of forged) {
  corpus(`forged installed.json, ${what}: down refuses with exit 2, nothing changed`, async (t) => {
    const s = scratch(t);
    writeRecord(s, make(s));
    for (const json of [[], ["--json"]])
      await hostileCase(t, s, {
        args: ["down", ...json, "--root", s.host, "--state-dir", s.state],
        exit: 2,
        message: new RegExp(`installed\\.json[^\\n]*(damaged|cannot be undone safely)[\\s\\S]*${why.source}`),
      });
    await hostileCase(t, s, {
      args: ["status", "--root", s.host, "--state-dir", s.state],
      exit: statusExit,
    });
  });
}

// --- the journal --------------------------------------------------------------------------------

const journalDir = (s: Scratch) => join(s.state, "journal");
const openLine = (s: Scratch, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    seq: 0,
    status: "open",
    txid: "20260101T000000000Z-up-1",
    kind: "up",
    pid: 1,
    at: "2026-01-01T00:00:00.000Z",
    meta: { root: s.host, kver, ...extra },
  });
function writeJournal(s: Scratch, lines: string[]): string {
  mkdirSync(journalDir(s), { recursive: true });
  const file = join(journalDir(s), "20260101T000000000Z-up-1.jsonl");
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

const journals: Array<[string, (s: Scratch) => void, RegExp]> = [
  [
    "a garbage line in the middle",
    (s) => {
      writeJournal(s, [openLine(s), "{garbage", JSON.stringify({ status: "commit", at: "x" })]);
    },
    /journal .* line 2 is corrupt/,
  ],
  [
    "a line of another shape",
    (s) => {
      writeJournal(s, [openLine(s), JSON.stringify({ seq: 1, status: "begin" })]);
    },
    /journal .* line 2 is not an entry netmap-provision writes/,
  ],
  [
    "a FIFO",
    (s) => {
      mkdirSync(journalDir(s), { recursive: true });
      execaSyncFifo(join(journalDir(s), "20260101T000000000Z-up-1.jsonl"));
    },
    /journal .*\.jsonl is a FIFO/,
  ],
  [
    "the journal dir is a file",
    (s) => {
      writeFileSync(journalDir(s), "not a dir\n");
    },
    /the journal directory .* is a regular file, not a directory/,
  ],
  [
    "a forged undo step that would put a backup over a file outside the root",
    (s) => {
      const victim = join(s.outside, "etc", "passwd");
      writeFileSync(victim, "root:x:0:0\n");
      mkdirSync(join(s.state, "backups", kver), { recursive: true });
      writeFileSync(join(s.state, "backups", kver, sha256(EVIL)), EVIL);
      writeJournal(s, [
        openLine(s),
        JSON.stringify({
          seq: 1,
          status: "begin",
          op: "write-file",
          args: {
            path: victim,
            sha256: sha256("root:x:0:0\n"),
            previous: { ...ref(s, victim, ""), backupPath: join(s.state, "backups", kver, sha256(EVIL)) },
          },
          at: "x",
        }),
      ]);
    },
    /step #1 write-file path .*outside\/etc\/passwd.*: not installed\.json or a \.conf file up writes/,
  ],
  [
    "an op netmap-provision never journals (an undo it has no handler for)",
    (s) => {
      writeJournal(s, [
        openLine(s),
        JSON.stringify({ seq: 1, status: "begin", op: "frobnicate", args: { path: "/etc/passwd" }, at: "x" }),
      ]);
    },
    /the journal .*20260101T000000000Z-up-1\.jsonl holds op "frobnicate" \(step #1\), which netmap-provision never journals in an "up" transaction, so nothing in it is undone/,
  ],
  [
    "an interrupted down naming an op down never journals (it used to be finished around it)",
    (s) => {
      writeRecord(s, { modules: [mod({})] });
      writeJournal(s, [
        openLine(s).replace('"kind":"up"', '"kind":"down"'),
        JSON.stringify({
          seq: 1,
          status: "begin",
          op: "unload",
          args: { module: "e1000", root: s.host },
          at: "x",
        }),
      ]);
    },
    /holds op "unload" \(step #1\), which netmap-provision never journals in a "down" transaction/,
  ],
  [
    "an interrupted down made for another root (recovery would remove files there)",
    (s) => {
      const there = join(s.outside, "lib/modules", kver, "updates/netmap");
      mkdirSync(there, { recursive: true });
      writeFileSync(join(there, "np_forged.ko"), "patched");
      writeRecord(s, { modules: [mod({})] });
      writeJournal(s, [openLine(s, { root: s.outside }).replace('"kind":"up"', '"kind":"down"')]);
    },
    /was made under root .*outside.*, not /,
  ],
];

for (const [what, plant, why] of journals) {
  corpus(`journal ${what}: down exits 2 naming it, nothing changed`, async (t) => {
    const s = scratch(t);
    plant(s);
    for (const json of [[], ["--json"]])
      await hostileCase(t, s, {
        args: ["down", ...json, "--root", s.host, "--state-dir", s.state],
        exit: 2,
        message: why,
        timeoutMs: 20_000,
      });
  });
}

corpus("journal a FIFO: up exits 2 naming it (no hang)", async (t) => {
  const s = scratch(t);
  mkdirSync(journalDir(s), { recursive: true });
  execaSyncFifo(join(journalDir(s), "20260101T000000000Z-up-1.jsonl"));
  await refusedByUp(t, s, /journal .*\.jsonl is a FIFO/);
});

// --- the lock -----------------------------------------------------------------------------------

corpus("lock a FIFO: down and up exit 2 naming it (they used to block on it)", async (t) => {
  const s = scratch(t);
  execaSyncFifo(join(s.state, "lock"));
  const message =
    /the lock .*state\/lock is a FIFO \(named pipe\), not a lock file[\s\S]*remove .*lock by hand/;
  for (const json of [[], ["--json"]])
    await hostileCase(t, s, {
      args: ["down", ...json, "--root", s.host, "--state-dir", s.state],
      exit: 2,
      message,
      timeoutMs: 20_000,
    });
  await refusedByUp(t, s, message);
});

corpus("lock a directory: down exits 2 naming it", async (t) => {
  const s = scratch(t);
  mkdirSync(join(s.state, "lock"));
  await hostileCase(t, s, {
    args: ["down", "--root", s.host, "--state-dir", s.state],
    exit: 2,
    message: /the lock .*state\/lock is a directory, not a lock file/,
  });
});

corpus("lock garbage: taken over as stale, with a warning (exit 0)", async (t) => {
  const s = scratch(t);
  writeFileSync(join(s.state, "lock"), "\u0000\u0001garbage");
  const r = await hostileCase(t, s, { args: ["down", "--root", s.host, "--state-dir", s.state], exit: 0 });
  t.regex(r.stdout, /took over a stale lock .*state\/lock left by pid 0 \(started \?, unreadable lock file/);
});

// --- deadman.json -------------------------------------------------------------------------------

corpus("deadman.json damaged: confirm and down exit 2 naming it", async (t) => {
  const s = scratch(t);
  writeFileSync(join(s.state, "deadman.json"), '{"pid": 1');
  const message = /deadman\.json in .* is damaged: not valid JSON/;
  for (const json of [[], ["--json"]])
    await hostileCase(t, s, { args: ["confirm", ...json, "--state-dir", s.state], exit: 2, message });
  await hostileCase(t, s, { args: ["down", "--root", s.host, "--state-dir", s.state], exit: 2, message });
});

corpus("deadman.json naming another live process: confirm does not kill it", async (t) => {
  const s = scratch(t);
  const victim = spawn("sleep", ["60"], { stdio: "ignore" });
  t.teardown(() => victim.kill("SIGKILL"));
  const exited = new Promise<string>((r) => victim.on("exit", (_c, sig) => r(String(sig))));
  writeFileSync(
    join(s.state, "deadman.json"),
    JSON.stringify({ pid: victim.pid, txid: "tx-1", timeoutSec: 20, deadline: "2026-01-01T00:00:00Z" }),
  );
  await hostileCase(t, s, { args: ["confirm", "--state-dir", s.state], exit: 0 });
  const still = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("alive"), 500))]);
  t.is(still, "alive", "confirm killed a process that is not the dead-man timer");
});

// --- resume.json --------------------------------------------------------------------------------

corpus("resume.json a FIFO: status shows the host, then exits 2 naming it (no hang)", async (t) => {
  const s = scratch(t);
  execaSyncFifo(join(s.state, "resume.json"));
  for (const json of [[], ["--json"]])
    await hostileCase(t, s, {
      args: ["status", ...json, "--root", s.host, "--state-dir", s.state],
      exit: 2,
      message: /resume\.json in .* is damaged: it is a FIFO/,
      timeoutMs: 20_000,
    });
});

// --- --state-dir and --cache-dir ------------------------------------------------------------------

const badDirs: Array<[string, (s: Scratch) => string, RegExp]> = [
  ["empty", () => "", /is empty/],
  [
    "a regular file",
    (s) => {
      writeFileSync(s.input("file"), "x\n");
      return s.input("file");
    },
    /is not a directory/,
  ],
  [
    "under a regular file",
    (s) => {
      writeFileSync(s.input("file"), "x\n");
      return join(s.input("file"), "sub");
    },
    /a part of the path is a file, not a directory/,
  ],
  ["/proc/x (a recursive mkdir there never returns)", () => "/proc/x", /on a proc filesystem|on \/proc/],
  ["/sys/kernel", () => "/sys/kernel", /on a sysfs filesystem|on \/sys/],
  ["/dev/shm/np", () => "/dev/shm/np", /on \/dev/],
];

for (const [what, value, why] of badDirs) {
  corpus(`--state-dir ${what}: status, down, confirm, plan and up exit 2 naming the flag`, async (t) => {
    const s = scratch(t);
    const v = value(s);
    const message = new RegExp(
      `--state-dir[^\\n]*${why.source}[\\s\\S]*pass a directory on a real filesystem`,
    );
    for (const args of [
      ["status", "--root", s.host, "--state-dir", v],
      ["status", "--json", "--root", s.host, "--state-dir", v],
      ["down", "--root", s.host, "--state-dir", v],
      ["down", "--json", "--root", s.host, "--state-dir", v],
      ["confirm", "--state-dir", v],
      ["plan", "--json", "--root", s.host, "--state-dir", v, "--cache-dir", s.cache],
    ])
      await hostileCase(t, s, { args, exit: 2, message, timeoutMs: 20_000 });
    await hostileCase(t, s, {
      args: ["up", "--state-dir", v, "--cache-dir", s.cache],
      exit: 2,
      message,
      env: UP_GUARD,
      timeoutMs: 20_000,
    });
  });

  corpus(`--cache-dir ${what}: plan and build exit 2 naming the flag`, async (t) => {
    const s = scratch(t);
    const v = value(s);
    const message = new RegExp(
      `--cache-dir[^\\n]*${why.source}[\\s\\S]*pass a directory on a real filesystem`,
    );
    for (const args of [
      ["plan", "--root", s.host, "--state-dir", s.state, "--cache-dir", v],
      ["plan", "--json", "--root", s.host, "--state-dir", s.state, "--cache-dir", v],
      ["build", "--json", "--cache-dir", v],
    ])
      await hostileCase(t, s, { args, exit: 2, message, timeoutMs: 20_000 });
  });
}
