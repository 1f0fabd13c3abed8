import { join } from "node:path";
import type { Step } from "../runner/step.js";
import { commit, journalDir } from "../state/journal.js";
import { netmapModuleOf, running, type UpResolve, type UpRun } from "./context.js";
import { type LoadRecord, loadRecordPath, writeLoadRecord } from "./in-place.js";

/**
 * up's last step: write load.json (the dmesg cursor and inputs a later `up` re-verifies against,
 * toolkit/up/in-place.ts) and commit the transaction: from here on `down` is what takes it back.
 */
export function recordStep(u: UpResolve, r?: UpRun): Step {
  return {
    describe: () => ({
      id: "record",
      title: "Record what is loaded and commit the transaction (for status, a later up, and down)",
      mutates: true,
      dependsOn: [u.persist ? "persist" : "verify"],
      commands: [],
      files: [
        { action: "create", path: loadRecordPath(u.stateDir) },
        { action: "replace", path: join(journalDir(u.stateDir), "<txid>.jsonl") },
      ],
      checks: [],
    }),
    run: async () => {
      const run = running(r, "record");
      const { st } = run;
      const rec: LoadRecord = {
        cursor: st.cursor ?? { ts: null },
        at: new Date().toISOString(),
        inputs: run.inputs,
        netmapModule: netmapModuleOf(run),
        expected: u.expected,
      };
      if (st.tx) rec.txid = st.tx.txid;
      if (st.artifacts?.pktgen && !u.from) rec.pktgen = st.artifacts.pktgen;
      writeLoadRecord(u.stateDir, rec);
      if (!st.tx) throw new Error("record ran before install opened the transaction");
      commit(st.tx);
    },
  };
}
