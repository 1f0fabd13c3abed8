import { StepError } from "../core/errors.js";
import type { PlannedCommand, Step } from "../runner/step.js";
import { netmapModuleOf, running, type UpResolve, type UpRun } from "../up/context.js";
import { type DmesgCursor, dmesgArgv } from "./dmesg-cursor.js";
import { smokeArgvs } from "./pktgen-smoke.js";
import { pktgenOptions, type VerifyOptions, verifyLoad } from "./verify.js";

/**
 * up's "verify" step: evidence from this load only (dmesg since the swap's cursor, /proc/misc
 * against /dev/netmap, each patched driver depending on netmap, each interface's mode), then the
 * recipe's pkt-gen smoke test (toolkit/verify/verify.ts).
 */

/** The commands verify runs: the kernel log, then each pkt-gen of the smoke test. */
export function verifyCommands(u: UpResolve, pktgen = u.pktgen): PlannedCommand[] {
  const cmds: PlannedCommand[] = [{ argv: dmesgArgv(), mutates: false }];
  const spec = pktgen ? pktgenOptions(u.verify.pktgen, pktgen) : undefined;
  if (spec) {
    const s = smokeArgvs(spec.path, spec);
    for (const argv of [s.valeRx, s.valeTx, ...s.nicTx.map((n) => n.argv)])
      if (argv) cmds.push({ argv, mutates: false });
  }
  return cmds;
}

/** What verifyLoad needs in a running up (also for the no-change path, from the saved cursor). */
export function verifyOptionsFor(r: UpRun, cursor: DmesgCursor): VerifyOptions {
  const { u } = r;
  const v: VerifyOptions = {
    exec: r.exec,
    root: u.root,
    cursor,
    netmapModule: netmapModuleOf(r),
    drivers: u.expected,
    dmesgExpect: u.verify.dmesg.expect,
  };
  const pktgen = pktgenOptions(u.verify.pktgen, r.st.artifacts?.pktgen);
  if (pktgen) v.pktgen = pktgen;
  return v;
}

export function verifyStep(u: UpResolve, r?: UpRun): Step {
  const smoke = verifyCommands(u).length > 1;
  return {
    describe: () => ({
      id: "verify",
      title: "Verify with evidence from this load",
      mutates: false,
      dependsOn: ["swap"],
      commands: verifyCommands(u),
      files: [],
      checks: [
        ...u.verify.dmesg.expect.map((re) => `dmesg since the load matches /${re}/`),
        `/proc/misc minor of ${u.netmapModule} = /dev/netmap's minor`,
        ...u.swapped.map((d) => `/proc/modules: ${d.module} depends on ${u.netmapModule}`),
        ...u.affected.map((i) => `${i}: native (netmap queues/slots) or emulated as the recipe expects`),
        ...(smoke
          ? [
              `pkt-gen: each sender runs ${u.verify.pktgen.seconds} s once its port is ready (the VALE receiver first), then SIGINT; tx and rx figures and the loss from pkt-gen's summaries; fails only when a side moved nothing`,
            ]
          : []),
      ],
    }),
    run: async () => {
      const run = running(r, "verify");
      const v = await verifyLoad(verifyOptionsFor(run, run.st.cursor ?? { ts: null }));
      run.st.verify = v;
      run.report.verify = v;
      if (!v.ok)
        throw new StepError(
          "verify",
          `verify found no proof that netmap works:\n  ${v.failures.join("\n  ")}`,
          "everything was rolled back; the dmesg excerpt in `up --json` shows what the kernel said",
        );
    },
  };
}
