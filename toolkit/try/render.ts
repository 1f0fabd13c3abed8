import { badge, color } from "../core/terminal-style.js";
import { pktgenLines } from "../verify/verify-report.js";
import type { TryReport, TryStep } from "./try-report.js";

const secs = (ms: number | null): string => (ms === null ? "-" : `${(ms / 1000).toFixed(1)} s`);

const stepBadge = (s: TryStep): string =>
  s.verdict === "passed" ? badge("ok") : s.verdict === "failed" ? badge("fail") : badge("skip");

/** The human report, one block per question the user has: did it work, on what, and can I go back. */
export function renderTryReport(r: TryReport): string {
  const out: string[] = [];
  const line = (s = "") => out.push(s);
  line(
    `${r.ok ? badge("ok") : badge("fail")} try: ${r.ok ? "up, verify and down passed in the guest" : "the rehearsal failed"}`,
  );
  line(`        kernel ${r.kernel.release} (${r.kernel.image}; ${r.kernel.why})`);
  line(`        accel ${r.accel.accel.toUpperCase()}: ${r.accel.reason}`);
  line(`        NICs ${r.nics.join(", ") || "none"}`);
  line(
    `        build ${r.build.cacheHit ? "cache hit" : "built"} ${r.build.key ?? ""} in ${secs(r.build.durationMs)}`,
  );
  line();
  line("Steps:");
  for (const s of r.steps) {
    line(
      `${stepBadge(s)} ${s.id.padEnd(9)} ${secs(s.durationMs).padStart(8)}${s.message ? `  ${s.message}` : ""}`,
    );
    for (const sub of s.substeps ?? []) {
      if (sub.status === "passed" && s.verdict === "passed") continue;
      line(color.dim(`          ${sub.id}: ${sub.status}${sub.message ? ` (${sub.message})` : ""}`));
    }
  }
  if (r.guest.timedOut) {
    line();
    line(
      `${badge("fail")} guest timed out (${r.guest.timedOut}) after ${secs(r.guest.durationMs)}; QEMU was stopped`,
    );
    line(`--- last lines of the serial console${r.guest.serialLog ? ` (${r.guest.serialLog})` : ""} ---`);
    for (const l of r.guest.serialTail) line(`  ${l}`);
  }
  if (r.interfaces.length > 0) {
    line();
    line("Interfaces:");
    for (const i of r.interfaces) {
      const mode =
        i.mode === "native"
          ? color.green("native")
          : i.mode === "emulated"
            ? color.yellow("emulated")
            : i.mode;
      line(
        `        ${i.ifname}: stock ${i.stockDriver ?? "none"} -> ${i.driver ?? "?"} ${mode}${i.expected && i.expected !== "any" ? ` (expected ${i.expected})` : ""}`,
      );
    }
  }
  line();
  if (r.devNetmap) {
    line(
      `${r.devNetmap.present ? badge("ok") : badge("fail")} /dev/netmap ${r.devNetmap.present ? `present (minor ${r.devNetmap.minor ?? "?"})` : "absent"}`,
    );
  } else line(`${badge("skip")} /dev/netmap not checked (up did not verify)`);
  if (r.pktgen) {
    for (const l of pktgenLines(r.pktgen)) line(`        ${l}`);
    for (const n of r.pktgen.notes) line(`        ${color.dim(n)}`);
    line(color.dim("        (figures from a TCG/KVM guest: they show pkt-gen runs, not line rate)"));
  }
  line(
    `${r.rollback.ok ? badge("ok") : badge("fail")} rollback: ${r.rollback.stockRestored ? "stock driver restored" : "stock driver NOT restored"}`,
  );
  for (const i of r.interfaces) line(`        ${i.ifname}: ${i.restoredWhy}`);
  for (const f of r.rollback.restored)
    line(
      `        ${f.path}: ${f.matches ? "original bytes back" : color.red("bytes differ from the backup")}`,
    );
  if (r.dmesg.errors.length > 0) {
    line();
    line("Kernel says:");
    for (const e of r.dmesg.errors) {
      line(`${badge("fail")} ${e.text}`);
      if (e.hint) line(color.dim(`        ${e.hint}`));
    }
  }
  if (r.dmesg.excerpt.length > 0) {
    line();
    line("dmesg (from just before up):");
    for (const l of r.dmesg.excerpt) line(`  ${l}`);
  }
  for (const n of r.notes) line(`${badge("info")} ${n}`);
  if (r.kept) line(`${badge("info")} guest files kept in ${r.kept}`);
  return `${out.join("\n")}\n`;
}
