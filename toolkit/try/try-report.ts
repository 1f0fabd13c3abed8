import { ExitCode } from "../core/errors.js";
import { explainModuleLoadError } from "../parse/dmesg.js";
import type { VerifyReport } from "../verify/verify-report.js";
import type { InterfaceSnapshot, PayloadResults } from "./guest-results.js";

/**
 * The one report `try` prints: assembled from what the guest's `up`, `status` and `down` printed
 * (the JSON contract in their commands) plus the payload's own before/after snapshots, which
 * check the rollback independently of `down`'s word for it.
 */

/** The parts of `up --json` (UpReport) and `down --json` (DownReport) the report reads. */
interface StepDoc {
  id?: string;
  title?: string;
  status?: string;
  durationMs?: number;
  message?: string;
}
interface UpDoc {
  ok?: boolean;
  steps?: StepDoc[];
  verify?: {
    ok?: boolean;
    failures?: string[];
    devNetmap?: { present?: boolean; minor?: number | null };
    dmesg?: { errors?: Array<{ kind?: string; module?: string; text?: string; hint?: string }> };
    interfaces?: Array<{ ifname?: string; driver?: string | null; mode?: string; expected?: string }>;
    pktgen?: TryReport["pktgen"];
  } | null;
  error?: { message?: string; hint?: string; exitCode?: number };
}
interface DownDoc {
  ok?: boolean;
  steps?: StepDoc[];
  restored?: Array<{ path?: string; sha256?: string; matches?: boolean }>;
  stockBound?: Array<{ ifname?: string; driver?: string }>;
  devNetmapGone?: boolean;
  error?: { message?: string; hint?: string; exitCode?: number };
}

export type StepVerdict = "passed" | "failed" | "not-run";

export interface TryStep {
  id: "build" | "boot" | "coldplug" | "trim-modules" | "up" | "verify" | "status" | "down";
  verdict: StepVerdict;
  durationMs: number | null;
  /** Why it failed, in the guest command's own words. */
  message?: string;
  /** The steps the guest command ran, as it reported them. */
  substeps?: Array<{ id: string; status: string; durationMs: number | null; message?: string }>;
}

export interface TryInterface {
  ifname: string;
  /** The driver bound before `up` (the stock one the coldplug loaded). */
  stockDriver: string | null;
  /** After `up`: the driver and how netmap drives it. */
  driver: string | null;
  mode: string;
  expected: string | null;
  /** After `down`: the same driver bound, same srcversion, same module bytes as before `up`. */
  stockRestored: boolean;
  restoredWhy: string;
}

export interface TryReport {
  ok: boolean;
  exitCode: number;
  kernel: { image: string; release: string; why: string };
  accel: { accel: "kvm" | "tcg"; reason: string };
  nics: string[];
  build: { cacheHit: boolean; key: string | undefined; durationMs: number };
  guest: {
    bootMs: number | null;
    durationMs: number | null;
    timedOut: false | "boot" | "total";
    serialTail: string[];
    serialLog: string | null;
  };
  steps: TryStep[];
  verify: { ok: boolean; failures: string[] } | null;
  devNetmap: { present: boolean; minor: number | null } | null;
  interfaces: TryInterface[];
  pktgen: VerifyReport["pktgen"];
  rollback: {
    ok: boolean;
    restored: Array<{ path: string; matches: boolean }>;
    stockRestored: boolean;
    devNetmapGone: boolean | null;
  };
  dmesg: {
    excerpt: string[];
    errors: Array<{ kind: string; text: string; hint: string }>;
  };
  /** Where the guest's files were kept (--keep, or after a failure). */
  kept: string | null;
  notes: string[];
}

const asUp = (v: unknown): UpDoc | null => (v && typeof v === "object" ? (v as UpDoc) : null);
const asDown = (v: unknown): DownDoc | null => (v && typeof v === "object" ? (v as DownDoc) : null);

const substeps = (steps: StepDoc[] | undefined): TryStep["substeps"] =>
  steps?.map((s) => ({
    id: s.id ?? "?",
    status: s.status ?? "?",
    durationMs: typeof s.durationMs === "number" ? s.durationMs : null,
    ...(s.message ? { message: s.message } : {}),
  }));

/** The first failed sub-step's message, else the document's error, else stderr's last line. */
function failureMessage(
  doc: { steps?: StepDoc[]; error?: { message?: string } } | null,
  stderr: string[],
): string {
  const step = doc?.steps?.find((s) => s.status === "failed" || s.status === "undo-failed");
  const parts = [step ? `${step.id}: ${step.message ?? step.status}` : undefined, doc?.error?.message];
  const msg = parts.filter(Boolean).join(" / ");
  if (msg) return msg;
  return stderr.at(-1) ?? (doc ? "reported failure" : "printed no JSON report");
}

/** Stock driver bound again after down, and modprobe resolves the same bytes it did before up. */
function restoredVerdict(
  before: InterfaceSnapshot,
  after: InterfaceSnapshot | undefined,
): { ok: boolean; why: string } {
  if (!after) return { ok: false, why: "the interface is gone after down" };
  if (after.driver !== before.driver)
    return { ok: false, why: `bound to ${after.driver ?? "no driver"}, was ${before.driver ?? "none"}` };
  if (before.srcversion && after.srcversion !== before.srcversion)
    return {
      ok: false,
      why: `loaded ${after.module} has srcversion ${after.srcversion}, stock was ${before.srcversion}`,
    };
  if (before.sha256 && after.sha256 !== before.sha256)
    return { ok: false, why: `modprobe resolves ${after.file} with other bytes than before up` };
  return {
    ok: true,
    why: before.driver
      ? `${before.driver} bound again, same srcversion${before.sha256 ? " and module bytes" : ""} as before up`
      : "no driver before or after",
  };
}

export interface AssembleInput {
  kernel: TryReport["kernel"];
  accel: TryReport["accel"];
  nics: string[];
  build: TryReport["build"];
  guest: TryReport["guest"];
  results: PayloadResults;
  kept: string | null;
  notes: string[];
}

/** Put the report together and decide the exit code: 0 only when up, verify and down all passed. */
export function assembleReport(i: AssembleInput): TryReport {
  const r = i.results;
  const code = (id: string) => r.steps.find((s) => s.id === id);
  const up = asUp(r.docs.up);
  const down = asDown(r.docs.down);
  const steps: TryStep[] = [
    { id: "build", verdict: "passed", durationMs: i.build.durationMs },
    {
      id: "boot",
      verdict: i.guest.timedOut === "boot" ? "failed" : i.guest.bootMs === null ? "not-run" : "passed",
      durationMs: i.guest.bootMs,
      ...(i.guest.timedOut === "boot" ? { message: "the guest did not reach the payload in time" } : {}),
    },
  ];
  const cp = code("coldplug");
  steps.push({ id: "coldplug", verdict: cp ? "passed" : "not-run", durationMs: cp?.durationMs ?? null });
  const trim = code("trim-modules");
  if (trim)
    steps.push({
      id: "trim-modules",
      verdict: trim.exitCode === 0 ? "passed" : "failed",
      durationMs: trim.durationMs,
      ...(trim.exitCode === 0
        ? {}
        : {
            message: `trimming the guest's module tree failed (exit ${trim.exitCode}); rerun with --full-module-tree`,
          }),
    });

  const upRun = code("up");
  const upPassed = upRun !== undefined && upRun.exitCode === 0 && up?.ok === true;
  steps.push({
    id: "up",
    verdict: upRun === undefined ? "not-run" : upPassed ? "passed" : "failed",
    durationMs: upRun?.durationMs ?? null,
    ...(upRun && !upPassed
      ? { message: `exit ${upRun.exitCode}: ${failureMessage(up, r.stderr.up ?? [])}` }
      : {}),
    ...(up?.steps ? { substeps: substeps(up.steps) } : {}),
  });
  const v = up?.verify ?? null;
  steps.push({
    id: "verify",
    verdict: v ? (v.ok ? "passed" : "failed") : upRun === undefined ? "not-run" : "failed",
    durationMs: up?.steps?.find((s) => s.id === "verify")?.durationMs ?? null,
    ...(v && !v.ok ? { message: (v.failures ?? []).join("; ") } : {}),
    ...(!v && upRun !== undefined ? { message: "up did not get as far as verifying" } : {}),
  });
  const st = code("status");
  steps.push({
    id: "status",
    verdict: st === undefined ? "not-run" : st.exitCode === 0 && r.docs.status ? "passed" : "failed",
    durationMs: st?.durationMs ?? null,
    ...(st && st.exitCode !== 0 ? { message: `exit ${st.exitCode}: ${r.stderr.status?.at(-1) ?? ""}` } : {}),
  });
  const dn = code("down");
  const downPassed = dn !== undefined && dn.exitCode === 0 && down?.ok === true;
  steps.push({
    id: "down",
    verdict: dn === undefined ? "not-run" : downPassed ? "passed" : "failed",
    durationMs: dn?.durationMs ?? null,
    ...(dn && !downPassed
      ? { message: `exit ${dn.exitCode}: ${failureMessage(down, r.stderr.down ?? [])}` }
      : {}),
    ...(down?.steps ? { substeps: substeps(down.steps) } : {}),
  });

  const afterUp = new Map((v?.interfaces ?? []).map((x) => [x.ifname ?? "?", x]));
  const after = new Map(r.after.map((x) => [x.ifname, x]));
  const interfaces: TryInterface[] = r.before.map((b) => {
    const u = afterUp.get(b.ifname);
    const verdict =
      dn === undefined ? { ok: false, why: "down did not run" } : restoredVerdict(b, after.get(b.ifname));
    return {
      ifname: b.ifname,
      stockDriver: b.driver,
      driver: u?.driver ?? null,
      mode: u?.mode ?? "unknown",
      expected: u?.expected ?? null,
      stockRestored: verdict.ok,
      restoredWhy: verdict.why,
    };
  });

  const restored = (down?.restored ?? []).map((x) => ({ path: x.path ?? "?", matches: x.matches === true }));
  const stockRestored = dn !== undefined && interfaces.every((x) => x.stockRestored);
  const rollback = {
    ok: downPassed && restored.every((x) => x.matches) && stockRestored,
    restored,
    stockRestored,
    devNetmapGone: typeof down?.devNetmapGone === "boolean" ? down.devNetmapGone : null,
  };

  // The kernel's own words first: up's classified errors, then any load failure in the log.
  const errors = (v?.dmesg?.errors ?? []).map((e) => ({
    kind: e.kind ?? "?",
    text: e.text ?? "",
    hint: e.hint ?? "",
  }));
  for (const line of r.dmesg) {
    const ex = explainModuleLoadError(line);
    if (ex && !errors.some((e) => e.text.includes(line) || line.includes(e.text)))
      errors.push({ kind: ex.kind, text: line, hint: ex.hint });
  }

  let exitCode: number = ExitCode.ok;
  if (i.guest.timedOut) exitCode = ExitCode.timeout;
  else if (upRun && upRun.exitCode !== 0) exitCode = upRun.exitCode;
  else if (!upPassed || !v?.ok) exitCode = ExitCode.failed;
  else if (dn && dn.exitCode !== 0) exitCode = dn.exitCode;
  else if (!rollback.ok) exitCode = ExitCode.rollbackFailed;

  return {
    ok: exitCode === ExitCode.ok,
    exitCode,
    kernel: i.kernel,
    accel: i.accel,
    nics: i.nics,
    build: i.build,
    guest: i.guest,
    steps,
    verify: v ? { ok: v.ok === true, failures: v.failures ?? [] } : null,
    devNetmap: v?.devNetmap
      ? { present: v.devNetmap.present === true, minor: v.devNetmap.minor ?? null }
      : null,
    interfaces,
    pktgen: v?.pktgen ?? null,
    rollback,
    dmesg: { excerpt: r.dmesg.slice(0, 60), errors },
    kept: i.kept,
    notes: i.notes,
  };
}
