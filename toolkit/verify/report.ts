/** The verify report: what `up --json` prints under `verify` (contract shared with `try`). */
export interface VerifyReport {
  ok: boolean;
  failures: string[];
  devNetmap: { present: boolean; minor: number | null; miscMinor: number | null };
  dmesg: {
    mknod: { major: number; minor: number; err: number } | null;
    loaded: boolean;
    /** Kernel lines since the cursor. */
    excerpt: string[];
    errors: Array<{ kind: string; module?: string; text: string; hint: string }>;
  };
  modules: Array<{ name: string; deps: string[]; dependsOnNetmap: boolean }>;
  interfaces: Array<{
    ifname: string;
    driver: string | null;
    mode: "native" | "emulated" | "none";
    expected: "native" | "emulated" | "any";
  }>;
  pktgen: null | {
    vale?: { txPps: number | null; rxPps: number | null; txPackets: number | null; rxPackets: number | null };
    interfaces: Array<{ ifname: string; txPps: number | null }>;
    /** Why a number is null (e.g. a pkt-gen without VALE rx). */
    notes: string[];
  };
}
