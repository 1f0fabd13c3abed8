import {
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import test, { type ExecutionContext } from "ava";
import { execa, execaSync } from "execa";
import { reEscape } from "../helpers/debian-kernel.js";
import { corpusCases, hostileCase, type Scratch, scratch } from "../helpers/hostile.js";
import { FIXTURE_RELEASE } from "../helpers/hosts.js";
import { cliPath } from "../helpers/paths.js";

/**
 * Hostile-input corpus, bounded reads (issue 11, point 3): recipes that are a FIFO, /dev/zero,
 * /dev/urandom, a directory or 100 MB; host trees (--root) with a FIFO or a gzip bomb at
 * /proc/config.gz, an osrelease that climbs out of the tree, /proc and /sys files that are FIFOs or
 * devices. Nothing may wait forever, read without bound, or read outside --root.
 *
 * `up` only runs on the host itself (--root /), and this machine is one: its cases run with
 * NETMAP_PROVISION_STOP_AT_STEP=1, so even if a case got past the recipe, up would kill itself
 * right after journaling its first change and before making it.
 */

const UP_GUARD = { NETMAP_PROVISION_STOP_AT_STEP: "1" };
const FAST = 20_000;

const corpus = corpusCases(test);

const dirs = (s: Scratch) => ["--cache-dir", s.cache, "--state-dir", s.state];
const mkfifo = (path: string) => execaSync("mkfifo", [path]);

/** recipe validate (plain and --json), recipe show, plan --json --root and up all refuse `file`. */
async function recipeRefused(t: ExecutionContext, s: Scratch, file: string, why: RegExp): Promise<void> {
  const message = new RegExp(`${reEscape(file)}:1:1: (error: )?${why.source}`);
  for (const args of [
    ["recipe", "validate", file],
    ["recipe", "validate", "--json", file],
    ["recipe", "show", file],
    ["plan", "--json", "--recipe", file, "--root", s.host, ...dirs(s)],
  ])
    await hostileCase(t, s, { args, exit: 2, message, timeoutMs: FAST });
  await hostileCase(t, s, {
    args: ["up", "--recipe", file, ...dirs(s)],
    exit: 2,
    message,
    env: UP_GUARD,
    timeoutMs: FAST,
  });
}

// --- recipes --------------------------------------------------------------------------------------

corpus("recipe a FIFO: refused at once (it used to block forever)", async (t) => {
  const s = scratch(t);
  const file = s.input("fifo.yaml");
  mkfifo(file);
  await recipeRefused(t, s, file, /is a FIFO \(named pipe\), not a recipe file/);
});

for (const dev of ["/dev/zero", "/dev/urandom"]) {
  corpus(`recipe ${dev}: refused at once (/dev/zero was read to 1.9 GB)`, async (t) => {
    const s = scratch(t);
    await recipeRefused(t, s, dev, /is a character device, not a recipe file/);
  });
}

corpus("recipe a symlink to /dev/zero: refused at once", async (t) => {
  const s = scratch(t);
  const file = s.input("zero.yaml");
  symlinkSync("/dev/zero", file);
  await recipeRefused(t, s, file, /is a character device, not a recipe file/);
});

corpus("recipe a directory: refused", async (t) => {
  const s = scratch(t);
  const file = s.input("recipe.yaml");
  mkdirSync(file);
  await recipeRefused(t, s, file, /is a directory, not a recipe file/);
});

corpus("recipe of 100 MB: refused before it is read", async (t) => {
  const s = scratch(t);
  const file = s.input("big.yaml");
  writeFileSync(file, "name: big\n");
  truncateSync(file, 100 * 1024 * 1024);
  await recipeRefused(t, s, file, /recipe is 102400 KiB; recipes are limited to 256 KiB/);
  // Not a timing: strace counts the bytes the CLI read from the file (the size comes from fstat).
  const probe = await execa("strace", ["-f", "-o", "/dev/null", "true"], { reject: false });
  if (probe.exitCode !== 0) return t.log("strace is not usable here: the bytes-read check is skipped");
  const log = join(s.state, "strace-read.log");
  const r = await execa(
    "strace",
    ["-f", "-e", "trace=openat,read,close", "-o", log, process.execPath, cliPath, "recipe", "validate", file],
    { reject: false, timeout: 60_000, env: { NO_COLOR: "1", TMPDIR: s.tmp } },
  );
  t.is(r.exitCode, 2, String(r.stderr));
  t.is(bytesReadFrom(readFileSync(log, "utf8"), file), 0, "the recipe's bytes were read");
});

/** Bytes read(2) returned on fds opened on `file`, from an `strace -f -e trace=openat,read,close` log. */
function bytesReadFrom(log: string, file: string): number {
  const open = new Set<string>();
  let total = 0;
  for (const line of log.split("\n")) {
    const m = /^(\d+)\s+(openat|read|close)\((.*)\)\s+=\s+(-?\d+)/.exec(line);
    if (!m) continue;
    // Fds belong to the process, not the thread: libuv may read on another thread than it opened.
    const [, , call, args = "", ret = "-1"] = m;
    if (call === "openat" && args.includes(`"${file}"`) && Number(ret) >= 0) open.add(ret);
    const fd = args.split(",")[0] ?? "";
    if (call === "read" && open.has(fd)) total += Math.max(0, Number(ret));
    if (call === "close") open.delete(fd);
  }
  return total;
}

// --- host trees: /proc/config.gz ------------------------------------------------------------------

/** The host tree with no /boot config, so the config chain reaches /proc/config.gz. */
function withoutBootConfig(s: Scratch): void {
  rmSync(join(s.host, "boot", `config-${FIXTURE_RELEASE}`));
}

corpus("/proc/config.gz a FIFO: doctor skips it with a warning (no hang)", async (t) => {
  const s = scratch(t);
  withoutBootConfig(s);
  mkfifo(join(s.host, "proc/config.gz"));
  for (const json of [[], ["--json"]]) {
    const r = await hostileCase(t, s, {
      args: ["doctor", ...json, "--root", s.host],
      exit: 0,
      timeoutMs: FAST,
    });
    t.regex(r.stdout, /skipped: host file \/proc\/config\.gz is a FIFO \(named pipe\), not a regular file/);
  }
});

corpus(
  "/proc/config.gz a gzip bomb (1 GiB of zeros): doctor skips it fast, without the memory",
  async (t) => {
    const s = scratch(t);
    withoutBootConfig(s);
    writeFileSync(join(s.host, "proc/config.gz"), gzipSync(Buffer.alloc(1024 * 1024 * 1024), { level: 9 }));
    for (const json of [[], ["--json"]]) {
      const r = await hostileCase(t, s, {
        args: ["doctor", ...json, "--root", s.host],
        exit: 0,
        timeoutMs: FAST,
      });
      t.regex(r.stdout, /\/proc\/config\.gz decompresses to more than 16\.0 MiB/);
    }
    // It once took 935 MB: the output cap keeps the whole run small.
    if (!existsSync("/usr/bin/time")) return t.log("no /usr/bin/time: peak memory not measured");
    const r = await execa(
      "/usr/bin/time",
      ["-f", "maxrss %M", process.execPath, cliPath, "doctor", "--root", s.host],
      {
        reject: false,
        timeout: FAST,
        env: { NO_COLOR: "1", TMPDIR: s.tmp },
      },
    );
    const kb = Number(/maxrss (\d+)/.exec(String(r.stderr))?.[1]);
    t.true(kb > 0 && kb < 400 * 1024, `doctor peaked at ${kb} KiB on a gzip bomb`);
  },
);

// --- host trees: osrelease --------------------------------------------------------------------------

/** What a read outside the tree would find: a complete module dir for the climbing "release". */
function plantOutside(s: Scratch): void {
  const k = join(s.outside, "k");
  mkdirSync(join(k, "build"), { recursive: true });
  writeFileSync(join(k, "modules.dep"), "kernel/drivers/net/ethernet/intel/e1000/e1000.ko:\n");
  writeFileSync(join(k, "build", ".config"), "CONFIG_NETMAP_OUTSIDE=y\n");
}

corpus("osrelease ../../../outside/k: doctor and status never read outside --root", async (t) => {
  const s = scratch(t);
  plantOutside(s);
  writeFileSync(join(s.host, "proc/sys/kernel/osrelease"), "../../../outside/k\n");
  for (const json of [[], ["--json"]]) {
    const d = await hostileCase(t, s, {
      args: ["doctor", ...json, "--root", s.host],
      exit: 4,
      timeoutMs: FAST,
    });
    t.notRegex(d.stdout, /outside/, "doctor used the release read from the host tree as a path");
    t.regex(d.stdout, /kernel unknown|"release": "unknown"/);
    const st = await hostileCase(t, s, {
      args: ["status", ...json, "--root", s.host, "--state-dir", s.state],
      exit: 0,
      timeoutMs: FAST,
    });
    t.notRegex(st.stdout, /outside/);
  }
});

corpus("osrelease ../../../outside/k: no file outside --root is even opened (strace)", async (t) => {
  const s = scratch(t);
  plantOutside(s);
  writeFileSync(join(s.host, "proc/sys/kernel/osrelease"), "../../../outside/k\n");
  const probe = await execa("strace", ["-f", "-o", "/dev/null", "true"], { reject: false });
  if (probe.exitCode !== 0) return t.log("strace is not usable here: the file-access check is skipped");
  const log = join(s.state, "strace.log");
  const r = await execa(
    "strace",
    ["-f", "-e", "trace=%file", "-o", log, process.execPath, cliPath, "doctor", "--root", s.host],
    { reject: false, timeout: 60_000, env: { NO_COLOR: "1", TMPDIR: s.tmp } },
  );
  t.is(r.exitCode, 4, String(r.stderr));
  const outside = readFileSync(log, "utf8")
    .split("\n")
    .filter((l) => l.includes(s.outside) || l.includes(`${s.host}/..`));
  t.deepEqual(outside, [], "doctor touched files outside --root");
});

corpus("osrelease a FIFO: status and doctor answer (no hang), the kernel is unknown", async (t) => {
  const s = scratch(t);
  rmSync(join(s.host, "proc/sys/kernel/osrelease"));
  mkfifo(join(s.host, "proc/sys/kernel/osrelease"));
  const st = await hostileCase(t, s, {
    args: ["status", "--root", s.host, "--state-dir", s.state],
    exit: 0,
    timeoutMs: FAST,
  });
  t.regex(st.stdout, /kernel unknown/);
  await hostileCase(t, s, { args: ["doctor", "--json", "--root", s.host], exit: 4, timeoutMs: FAST });
});

// --- host trees: /proc and /sys files that are devices or FIFOs -----------------------------------

corpus(
  "/proc/modules a symlink to /dev/zero, an interface's operstate a FIFO: status answers at once",
  async (t) => {
    const s = scratch(t);
    rmSync(join(s.host, "proc/modules"));
    symlinkSync("/dev/zero", join(s.host, "proc/modules"));
    const operstate = join(s.host, "sys/devices/pci0000:00/0000:00:03.0/net/eth0/operstate");
    rmSync(operstate);
    mkfifo(operstate);
    for (const json of [[], ["--json"]])
      await hostileCase(t, s, {
        args: ["status", ...json, "--root", s.host, "--state-dir", s.state],
        exit: 0,
        timeoutMs: FAST,
      });
    await hostileCase(t, s, { args: ["doctor", "--root", s.host], exit: 0, timeoutMs: FAST });
  },
);

corpus(
  "modules.dep a symlink to /dev/urandom: doctor and status answer at once (it was read without end)",
  async (t) => {
    const s = scratch(t);
    const dep = join(s.host, "lib/modules", FIXTURE_RELEASE, "modules.dep");
    rmSync(dep);
    symlinkSync("/dev/urandom", dep);
    await hostileCase(t, s, {
      args: ["status", "--root", s.host, "--state-dir", s.state],
      exit: 0,
      timeoutMs: FAST,
    });
    const d = await hostileCase(t, s, {
      args: ["doctor", "--json", "--root", s.host],
      exit: 0,
      timeoutMs: FAST,
    });
    t.truthy(d.json);
  },
);
