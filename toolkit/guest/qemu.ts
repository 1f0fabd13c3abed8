import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { StepError, TimeoutError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { findGuestKernel, releaseFromImage } from "./guest-kernel.js";
import { PAYLOAD_START_MARKER } from "./guest-scripts.js";
import { buildGuestInitramfs } from "./initramfs.js";
import { defaultCacheDir, probeAccel } from "./kvm-probe.js";
import { pvhKernel } from "./pvh-kernel.js";

/** A NIC QEMU emulates, each on its own user-mode (slirp) network that needs no privileges. */
export interface GuestNic {
  /** QEMU device model: "e1000" (e1000), "e1000e" (e1000e), "virtio-net-pci" (virtio_net), ... */
  model: string;
  /** Netdev id, unique per guest ("n0"). */
  id: string;
  mac?: string;
}

export interface BootGuestOptions {
  /** The payload: argv run as root in the guest (argv[0] looked up in the guest's PATH). */
  command: readonly string[];
  /** Kernel image; default: the newest /boot/vmlinuz-* with modules (see findGuestKernel). */
  kernel?: string;
  /** Release of `kernel`; default: from its file name. */
  kernelRelease?: string;
  /** A prebuilt initramfs speaking the same protocol; default: built for this run. */
  initrd?: string;
  memoryMb?: number;
  cpus?: number;
  nics?: readonly GuestNic[];
  accel?: "auto" | "kvm" | "tcg";
  /** From QEMU start until the guest prints the payload-start marker (default 120 s). */
  bootTimeoutMs?: number;
  /** From QEMU start until it exits (default 600 s). */
  totalTimeoutMs?: number;
  /** Extra environment for the payload (PATH, HOME, LANG are set already). */
  env?: Record<string, string>;
  /** Payload working directory in the guest (default /xfer, the shared directory). */
  cwd?: string;
  /** Host directory shared read-write at /xfer; kept when given, a removed temp dir otherwise. */
  xferDir?: string;
  /** Serial console log; kept when given, otherwise kept only when the run fails. */
  serialLog?: string;
  /** Appended to the kernel command line. */
  extraAppend?: string;
  /** Modules to load in stage 1, before the payload. */
  extraModules?: readonly string[];
  root?: string;
  qemu?: string;
  /**
   * Cache for the KVM probe's verdict and the extracted PVH vmlinux; false: nothing is kept.
   * Default: $XDG_CACHE_HOME/netmap-provision.
   */
  cacheDir?: string | false;
  /** Boot the uncompressed vmlinux through its PVH entry (skips slow decompression under TCG). Default true. */
  pvh?: boolean;
}

/** What came back from a guest run. */
export interface GuestResult {
  accel: "kvm" | "tcg";
  /** Why this accelerator (the KVM probe's verdict, or "requested"). */
  accelReason: string;
  /** The payload's exit status (128+signal if it was killed). */
  exitCode: number;
  timedOut: false | "boot" | "total";
  /** QEMU start to exit. */
  durationMs: number;
  /** QEMU start to the payload-start marker; undefined if it never appeared. */
  bootMs: number | undefined;
  /** Path of the serial log if it still exists (given by the caller, or kept after a failure). */
  serialLog: string | undefined;
  /** Last 40 lines of the serial console. */
  serialTail: string[];
  stdout: string;
  stderr: string;
  /** The shared directory, if the caller gave one (otherwise it was removed). */
  xferDir: string | undefined;
  qemuArgv: string[];
}

/** A guest ran out of time; `result` holds what was seen (serial tail, timings). */
export class GuestTimeoutError extends TimeoutError {
  readonly result: GuestResult;
  constructor(message: string, hint: string, result: GuestResult) {
    super(message, hint);
    this.result = result;
  }
}

/** The qemu command line for one guest run (pure: also what `--dry-run` would print). */
export function qemuArgv(o: {
  qemu: string;
  accel: "kvm" | "tcg";
  kernel: string;
  initrd: string;
  memoryMb: number;
  cpus: number;
  nics: readonly GuestNic[];
  serialLog: string;
  pidFile: string;
  xferDir: string;
  rootDir: string;
  extraAppend?: string;
}): string[] {
  const append = ["console=ttyS0", "panic=-1", "quiet", o.extraAppend].filter(Boolean).join(" ");
  return [
    o.qemu,
    ...(o.accel === "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg"]),
    ...["-m", String(o.memoryMb), "-smp", String(o.cpus)],
    // -nodefaults: no default NIC, VGA or monitor; only what is listed here exists in the guest.
    ...[
      "-nodefaults",
      "-display",
      "none",
      "-no-reboot",
      "-serial",
      `file:${o.serialLog}`,
      "-pidfile",
      o.pidFile,
    ],
    ...["-kernel", o.kernel, "-initrd", o.initrd, "-append", append],
    // multidevs=remap: the host root spans several filesystems; keeps inode numbers unique.
    ...[
      "-virtfs",
      `local,path=${o.rootDir},mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap`,
    ],
    ...["-virtfs", `local,path=${o.xferDir},mount_tag=xfer,security_model=none,multidevs=remap`],
    ...o.nics.flatMap((n) => [
      "-netdev",
      `user,id=${n.id}`,
      "-device",
      `${n.model},netdev=${n.id}${n.mac ? `,mac=${n.mac}` : ""}`,
    ]),
  ];
}

const readText = (path: string): string => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
};

const tailLines = (text: string, n: number): string[] => {
  const lines = text.replaceAll("\r", "").split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.slice(-n);
};

/** Items for stage 2's `read -d ""` loop: each one terminated by a NUL, which none may contain. */
function nulSeparated(items: readonly string[], what: string): string {
  for (const i of items) {
    if (i.includes("\0"))
      throw new StepError("guest", `a ${what} contains a NUL byte, which no argv can carry`);
  }
  return items.map((i) => `${i}\0`).join("");
}

function envItem(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new StepError("guest", `invalid environment variable name "${name}" for the guest payload`);
  }
  return `${name}=${value}`;
}

/** Comma would split QEMU's -virtfs option list; such a path cannot be passed safely. */
function assertVirtfsPath(path: string, what: string): void {
  if (path.includes(",")) {
    throw new StepError("guest", `${what} path "${path}" contains a comma, which QEMU's -virtfs cannot take`);
  }
}

/**
 * Boot the guest kernel with the host root as a tmpfs overlay, run `command` as root, and bring
 * back its exit status and output. QEMU is never left running: it is stopped on a timeout and on
 * any error on the way.
 */
export async function bootGuest(exec: Exec, opts: BootGuestOptions): Promise<GuestResult> {
  if (opts.command.length === 0) throw new StepError("guest", "bootGuest: empty command");
  const root = opts.root ?? "/";
  const qemu = opts.qemu ?? "qemu-system-x86_64";
  const { kernel, kernelRelease } = opts.kernel
    ? {
        kernel: opts.kernel,
        kernelRelease: opts.kernelRelease ?? releaseFromImage(opts.kernel) ?? "",
      }
    : findGuestKernel(root, opts.kernelRelease);
  if (!kernelRelease) {
    throw new StepError("guest", `cannot tell the release of kernel ${kernel}`, "pass kernelRelease");
  }
  const bootTimeoutMs = opts.bootTimeoutMs ?? 120_000;
  const totalTimeoutMs = opts.totalTimeoutMs ?? 600_000;

  let accel: "kvm" | "tcg";
  let accelReason: string;
  if (opts.accel === "kvm" || opts.accel === "tcg") {
    accel = opts.accel;
    accelReason = "requested";
  } else {
    const probe = await probeAccel(exec, {
      root,
      kernel,
      kernelRelease,
      qemu,
      ...(opts.cacheDir === undefined ? {} : { cacheDir: opts.cacheDir }),
    });
    accel = probe.accel;
    accelReason = probe.reason;
  }

  const work = mkdtempSync(join(tmpdir(), "np-guest-"));
  const xferDir = opts.xferDir ?? join(work, "xfer");
  const serialLog = opts.serialLog ?? join(work, "serial.log");
  const pidFile = join(work, "qemu.pid");
  let succeeded = false;
  let qemuExited = true;
  let stopQemu: () => Promise<void> = async () => {};
  try {
    assertVirtfsPath(xferDir, "xfer directory");
    assertVirtfsPath(root, "root");
    const control = join(xferDir, ".guest");
    mkdirSync(control, { recursive: true });
    for (const f of ["exit-code", "stdout", "stderr"]) rmSync(join(xferDir, f), { force: true });
    const env = {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: "/root",
      LANG: "C.UTF-8",
      TERM: "dumb",
      ...opts.env,
    };
    writeFileSync(join(control, "argv"), nulSeparated(opts.command, "command argument"));
    writeFileSync(
      join(control, "env"),
      nulSeparated(
        Object.entries(env).map(([k, v]) => envItem(k, v)),
        "env",
      ),
    );
    writeFileSync(join(control, "cwd"), nulSeparated([opts.cwd ?? "/xfer"], "cwd"));
    let initrd = opts.initrd;
    if (!initrd) {
      initrd = join(work, "initramfs.cpio");
      const built = await buildGuestInitramfs(exec, {
        root,
        kernelRelease,
        ...(opts.extraModules ? { extraModules: opts.extraModules } : {}),
      });
      writeFileSync(initrd, built.image);
    }
    writeFileSync(serialLog, "");
    const cacheDir = opts.cacheDir === undefined ? defaultCacheDir() : opts.cacheDir;
    const bootKernel = opts.pvh === false ? kernel : await pvhKernel(exec, kernel, cacheDir || work);

    const argv = qemuArgv({
      qemu,
      accel,
      kernel: bootKernel,
      initrd,
      memoryMb: opts.memoryMb ?? 1024,
      cpus: opts.cpus ?? 2,
      nics: opts.nics ?? [],
      serialLog,
      pidFile,
      xferDir,
      rootDir: root,
      ...(opts.extraAppend ? { extraAppend: opts.extraAppend } : {}),
    });

    const started = performance.now();
    qemuExited = false;
    const running = exec.run(argv, { reject: false, timeoutMs: totalTimeoutMs }).finally(() => {
      qemuExited = true;
    });
    // Stop the QEMU this call started, by the pid it wrote to our private pidfile.
    stopQemu = async () => {
      const pid = Number.parseInt(readText(pidFile).trim(), 10);
      if (qemuExited || !Number.isInteger(pid) || pid <= 0) return;
      try {
        process.kill(pid, "SIGTERM");
        for (let i = 0; i < 30 && !qemuExited; i++) await sleep(100);
        if (!qemuExited) process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    };

    // Watch the serial log for the payload-start marker; past the boot timeout, stop QEMU.
    let bootMs: number | undefined;
    let bootTimedOut = false;
    while (!qemuExited) {
      await Promise.race([running, sleep(250)]);
      if (bootMs === undefined && readText(serialLog).includes(PAYLOAD_START_MARKER)) {
        bootMs = Math.round(performance.now() - started);
      }
      if (bootMs === undefined && !qemuExited && performance.now() - started > bootTimeoutMs) {
        bootTimedOut = true;
        await stopQemu();
      }
      if (bootMs !== undefined) break;
    }
    const r = await running;
    const durationMs = Math.round(performance.now() - started);
    const serialTail = tailLines(readText(serialLog), 40);
    const result: GuestResult = {
      accel,
      accelReason,
      exitCode: -1,
      timedOut: bootTimedOut ? "boot" : r.timedOut ? "total" : false,
      durationMs,
      bootMs,
      serialLog,
      serialTail,
      stdout: readText(join(xferDir, "stdout")),
      stderr: readText(join(xferDir, "stderr")),
      xferDir: opts.xferDir,
      qemuArgv: argv,
    };
    const tailText = `--- last lines of the serial console (${serialLog}) ---\n${serialTail.join("\n")}`;
    if (result.timedOut) {
      const limit = result.timedOut === "boot" ? bootTimeoutMs : totalTimeoutMs;
      const what = result.timedOut === "boot" ? "did not reach the payload" : "did not finish";
      throw new GuestTimeoutError(
        `the ${accel.toUpperCase()} guest ${what} within ${Math.round(limit / 1000)} s; QEMU was stopped\n${tailText}`,
        result.timedOut === "boot"
          ? "the serial log shows how far the boot got; under TCG allow a minute or more"
          : "the payload hung or needs more time: raise the total timeout or check its output",
        result,
      );
    }
    const code = readText(join(xferDir, "exit-code")).trim();
    if (!/^\d+$/.test(code)) {
      const qemuSaid =
        r.exitCode !== 0
          ? `QEMU exited ${r.exitCode}: ${r.stderr.trim().split("\n").slice(-3).join(" / ")}\n`
          : "";
      throw new StepError(
        "guest",
        `the guest stopped without reporting the payload's exit status\n${qemuSaid}${tailText}`,
        "look for a 'netmap-guest: FAILED:' line or a kernel panic in the serial log",
      );
    }
    result.exitCode = Number(code);
    if (!opts.serialLog) result.serialLog = undefined; // removed with the work dir below
    succeeded = true;
    return result;
  } finally {
    await stopQemu();
    if (!opts.xferDir) rmSync(join(work, "xfer"), { recursive: true, force: true });
    else rmSync(join(xferDir, ".guest"), { recursive: true, force: true });
    if (succeeded || opts.serialLog) rmSync(work, { recursive: true, force: true });
    else for (const f of ["initramfs.cpio", "qemu.pid"]) rmSync(join(work, f), { force: true });
  }
}
