import { execFile } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import test from "ava";
import type { TryReport } from "../../toolkit/try/try-report.js";
import { ensureKernelDriverSources, standinDir } from "../helpers/kernel-sources.js";
import { assertAccelChoice } from "../helpers/kvm.js";
import { cliPath, repoRoot } from "../helpers/paths.js";

/*
 * The guest tier for `try`: the real CLI builds the stand-in on the host (cached after the first
 * test), boots Debian's kernel under QEMU and runs up/status/down inside. Each run is minutes
 * under TCG on two cores, so they are serial. Scratch trees live under the repo's .cache/ (not
 * /tmp): the guest replaces /tmp with an empty tmpfs, and `up` in the guest reads the recipe's
 * paths through the shared host root.
 */
const run = promisify(execFile);
const scratch = join(repoRoot, ".cache", "try-test", `run-${process.pid}`);
const cacheDir = join(scratch, "cache");
mkdirSync(cacheDir, { recursive: true });
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], timeoutMs = 1_150_000): Promise<CliRun> {
  try {
    const r = await run(process.execPath, [cliPath, ...args], {
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, NO_COLOR: "1" },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === "number" ? x.code : -1, stdout: x.stdout ?? "", stderr: x.stderr ?? "" };
  }
}

const tryArgs = (netmapSource: string, extra: string[] = []): string[] => [
  "try",
  "--netmap-source",
  netmapSource,
  "--kernel-sources",
  ensureKernelDriverSources(),
  "--drivers",
  "e1000",
  "--cache-dir",
  cacheDir,
  ...extra,
];

const summary = (r: TryReport): string =>
  r.steps
    .map(
      (s) => `${s.id}=${s.verdict}${s.durationMs === null ? "" : `(${(s.durationMs / 1000).toFixed(1)}s)`}`,
    )
    .join(" ");

test.serial(
  "guest: try with the stand-in on Debian's kernel and one e1000 passes: native, /dev/netmap, stock restored",
  async (t) => {
    const r = await cli(tryArgs(standinDir, ["--json", "--timeout", "1100"]));
    const report = JSON.parse(r.stdout) as TryReport;
    t.log(summary(report));
    t.log(`accel ${report.accel.accel}: ${report.accel.reason}`);
    t.is(r.code, 0, `${r.stderr}\n${JSON.stringify(report.steps, null, 1)}`);
    t.true(report.ok);
    for (const id of ["up", "verify", "status", "down"])
      t.is(report.steps.find((s) => s.id === id)?.verdict, "passed", id);
    const eth0 = report.interfaces.find((i) => i.ifname === "eth0");
    t.is(eth0?.stockDriver, "e1000");
    t.is(eth0?.driver, "e1000");
    t.is(eth0?.mode, "native");
    t.true(eth0?.stockRestored, eth0?.restoredWhy);
    t.true(report.devNetmap?.present);
    t.true(report.rollback.ok);
    t.true(report.rollback.restored.every((f) => f.matches));
    t.true(
      report.dmesg.excerpt.some((l) => /netmap/.test(l)),
      "the dmesg excerpt shows netmap's lines",
    );
    t.is(report.kept, null, "a passing run leaves nothing behind");
  },
);

test.serial(
  "guest: a patched driver that fails to load makes try fail with the kernel's Unknown symbol",
  async (t) => {
    // A stand-in whose netmap.ko does not export netmap_attach, with modpost told to only warn
    // about the unresolved symbol (as a driver built against another netmap tree would be):
    // the build succeeds, and the patched e1000 fails to load in the guest.
    const broken = join(scratch, "standin-broken");
    cpSync(standinDir, broken, { recursive: true });
    const src = join(broken, "LINUX", "netmap_standin.c");
    const text = readFileSync(src, "utf8");
    t.true(text.includes("EXPORT_SYMBOL(netmap_attach);"));
    writeFileSync(src, text.replace("EXPORT_SYMBOL(netmap_attach);", ""));
    const conf = join(broken, "LINUX", "configure");
    const ctext = readFileSync(conf, "utf8");
    t.true(ctext.includes("KOPTS :=$KOPTS"));
    writeFileSync(conf, ctext.replace("KOPTS :=$KOPTS", "KOPTS :=$KOPTS KBUILD_MODPOST_WARN=1"));

    const r = await cli(tryArgs(broken));
    // The report only (the build's progress lines come before it on stdout).
    t.log(
      r.stdout
        .slice(Math.max(0, r.stdout.indexOf("FAIL    try:")))
        .split("\n")
        .slice(0, 30)
        .join("\n"),
    );
    t.not(r.code, 0);
    t.regex(r.stdout, /FAIL\s+up/);
    t.regex(r.stdout, /e1000: Unknown symbol netmap_attach/, "the kernel's own message is in the report");
    t.regex(r.stderr, /the rehearsal failed: up failed/);
    const kept = /guest files kept in (\S+)/.exec(r.stdout)?.[1];
    t.truthy(kept, "a failed run keeps the guest's files");
    if (kept) rmSync(kept, { recursive: true, force: true });
  },
);

test.serial(
  "guest: a guest that never finishes is stopped at --timeout and reported as a timeout with its serial tail",
  async (t) => {
    const started = performance.now();
    // --test-hang (hidden, test-only) makes the payload sleep instead of running up.
    const r = await cli(tryArgs(standinDir, ["--test-hang", "--timeout", "60"]), 200_000);
    const took = (performance.now() - started) / 1000;
    t.log(`exit ${r.code} after ${took.toFixed(1)} s`);
    t.is(r.code, 5);
    t.regex(r.stdout, /guest timed out \((total|boot)\)/);
    t.regex(r.stdout, /last lines of the serial console/);
    t.regex(r.stdout, /netmap-guest: (stage 1|payload starting)/, "the serial tail is shown");
    t.regex(r.stderr, /did not finish within 60 s/);
    t.true(took < 150);
    const kept = /guest files kept in (\S+)/.exec(r.stdout)?.[1];
    if (kept) rmSync(kept, { recursive: true, force: true });
  },
);

test.serial(
  "guest: try picks the accelerator by itself: TCG saying why, unless a test kernel boots under KVM",
  async (t) => {
    // The same short hung run as above is enough: the accelerator line comes before the payload.
    const r = await cli(tryArgs(standinDir, ["--test-hang", "--timeout", "30", "--json"]), 150_000);
    const report = JSON.parse(r.stdout) as TryReport;
    t.log(`accel ${report.accel.accel}: ${report.accel.reason}`);
    // TCG with the reason where /dev/kvm is absent or broken, KVM where a test kernel booted under it.
    assertAccelChoice(t, report.accel);
    t.is(report.exitCode, 5);
    if (report.kept) rmSync(report.kept, { recursive: true, force: true });
  },
);
