import type { PlannedCommand, Step } from "../runner/step.js";
import { netmapModuleOf, running, type UpResolve, type UpRun } from "../up/context.js";
import { armDeadman } from "../up/deadman.js";
import { dmesgArgv, takeCursor } from "../verify/dmesg-cursor.js";
import { recordInterfaceArgvs, restoreArgvs } from "./iface-state.js";
import { modprobeArgv, rmmodArgv } from "./module-ops.js";
import { swapDrivers } from "./swap.js";

/**
 * up's "swap" step: a dmesg cursor (verify only counts what the kernel says after it), the
 * interfaces recorded, the stock drivers (and a netmap left loaded) unloaded, netmap then the
 * patched drivers loaded, the interfaces put back as they were (toolkit/swap/swap.ts).
 */

/** The commands the swap runs, in order, from what is loaded and configured now. */
export function swapCommands(u: UpResolve, netmapModule = u.netmapModule): PlannedCommand[] {
  const read = (argv: string[]): PlannedCommand => ({ argv, mutates: false });
  const change = (argv: string[]): PlannedCommand => ({ argv, mutates: true });
  const drivers = u.swapped.map((d) => d.module);
  const unload = [
    ...drivers.filter((d) => u.loaded.includes(d)),
    ...(u.loaded.includes(netmapModule) ? [netmapModule] : []),
  ];
  return [
    read(dmesgArgv()),
    ...recordInterfaceArgvs(u.affected).map(read),
    ...unload.map((m) => change(rmmodArgv(m))),
    change(modprobeArgv(netmapModule)),
    ...drivers.map((m) => change(modprobeArgv(m))),
    ...(u.interfaces ?? []).flatMap((s) => restoreArgvs(s).map(change)),
  ];
}

export function swapStep(u: UpResolve, r?: UpRun): Step {
  const drivers = u.swapped.map((d) => d.module);
  return {
    describe: () => ({
      id: "swap",
      title: `Swap drivers: unload ${drivers.join(", ") || "nothing"}, load ${u.netmapModule} then the patched drivers`,
      mutates: true,
      dependsOn: ["install"],
      commands: swapCommands(u),
      files: [],
      checks: [
        "nothing holds the modules or /dev/netmap before unloading",
        `interfaces brought back as they were: ${u.affected.join(", ") || "none"}`,
      ],
      notes: [
        ...(u.affected.length > 0 ? [`affects ${u.affected.join(", ")}`] : []),
        ...(u.interfaces === null && u.affected.length > 0
          ? [
              "the addresses and routes put back are the ones `ip -j` shows at the swap (not readable from a host tree)",
            ]
          : []),
        ...(u.management.length > 0
          ? [`a dead-man timer runs \`down\` unless \`netmap-provision confirm\` arrives in time`]
          : []),
      ],
    }),
    run: async () => {
      const run = running(r, "swap");
      const { exec, st, report } = run;
      const tx = st.tx;
      if (!tx) throw new Error("swap ran before install opened the transaction");
      if (u.management.length > 0) {
        const timeoutSec = run.confirmTimeoutSec ?? run.recipe.guard.confirmTimeoutSec;
        st.deadman = armDeadman({ stateDir: u.stateDir, root: u.root, txid: tx.txid, timeoutSec });
        report.deadman = { pid: st.deadman.pid, timeoutSec, deadline: st.deadman.deadline };
      }
      st.cursor = await takeCursor(exec);
      await swapDrivers({
        exec,
        root: u.root,
        kver: u.release,
        tx,
        netmapModule: netmapModuleOf(run),
        drivers,
        interfaces: u.affected,
        warn: run.warn,
      });
    },
  };
}
