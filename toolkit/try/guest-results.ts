import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isHarmlessNoise, parseDmesg } from "../parse/dmesg.js";

/**
 * Reading back what the guest payload (guest-payload.sh) left in the shared directory: the
 * per-command timings and exit codes, each command's --json document, the interface snapshots
 * before `up` and after `down`, and the kernel log from the payload's marker on.
 */

/** The line the payload writes to /dev/kmsg just before `up`. */
export const DMESG_MARKER = "netmap-provision try: dmesg marker";

export interface PayloadStep {
  id: string;
  exitCode: number;
  durationMs: number;
}

/** One interface as the payload saw it: who drives it and which bytes modprobe resolves for it. */
export interface InterfaceSnapshot {
  ifname: string;
  driver: string | null;
  module: string | null;
  srcversion: string | null;
  file: string | null;
  sha256: string | null;
}

export interface PayloadResults {
  steps: PayloadStep[];
  /** Each command's stdout parsed as JSON; null when it printed no valid JSON. */
  docs: Record<string, unknown>;
  /** Each command's stderr (last lines), for a failure that came before its JSON. */
  stderr: Record<string, string[]>;
  before: InterfaceSnapshot[];
  after: InterfaceSnapshot[];
  /** Kernel lines logged from the marker on, minus the expected taint noise. */
  dmesg: string[];
}

const readText = (p: string): string => (existsSync(p) ? readFileSync(p, "utf8") : "");
const dash = (v: string | undefined): string | null => (v === undefined || v === "-" || v === "" ? null : v);

function parseSteps(text: string): PayloadStep[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("\t"))
    .filter((f) => f.length === 3 && /^\d+$/.test(f[1] ?? "") && /^-?\d+$/.test(f[2] ?? ""))
    .map(([id, code, ms]) => ({ id: id as string, exitCode: Number(code), durationMs: Number(ms) }));
}

function parseSnapshot(text: string): InterfaceSnapshot[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("\t"))
    .map((f) => ({
      ifname: f[0] ?? "?",
      driver: dash(f[1]),
      module: dash(f[2]),
      srcversion: dash(f[3]),
      file: dash(f[4]),
      sha256: dash(f[5]),
    }));
}

function parseDoc(text: string): unknown {
  const t = text.trim();
  if (!t) return null;
  try {
    return JSON.parse(t) as unknown;
  } catch {
    return null;
  }
}

/** The kernel's own lines from the marker on (the whole log if the marker never got there). */
export function dmesgAfterMarker(text: string): string[] {
  const lines = parseDmesg(text);
  const at = lines.findIndex((l) => l.text.includes(DMESG_MARKER));
  return lines
    .slice(at + 1)
    .map((l) => l.text)
    .filter((t) => !isHarmlessNoise(t));
}

/** Everything the payload left in `<xferDir>/try`; missing files read as empty. */
export function readPayloadResults(xferDir: string): PayloadResults {
  const dir = join(xferDir, "try");
  const steps = parseSteps(readText(join(dir, "steps.tsv")));
  const docs: Record<string, unknown> = {};
  const stderr: Record<string, string[]> = {};
  for (const id of ["up", "status", "down"]) {
    docs[id] = parseDoc(readText(join(dir, `${id}.json`)));
    stderr[id] = readText(join(dir, `${id}.err`))
      .trimEnd()
      .split("\n")
      .filter(Boolean)
      .slice(-15);
  }
  return {
    steps,
    docs,
    stderr,
    before: parseSnapshot(readText(join(dir, "before.tsv"))),
    after: parseSnapshot(readText(join(dir, "after.tsv"))),
    dmesg: dmesgAfterMarker(readText(join(dir, "dmesg.txt"))),
  };
}
