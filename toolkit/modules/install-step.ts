import { join } from "node:path";
import type { PlannedCommand, Step } from "../runner/step.js";
import { openTransaction, readJournal } from "../state/journal.js";
import { undoJournal } from "../state/undo.js";
import { running, type UpResolve, type UpRun } from "../up/context.js";
import { depmodArgv } from "./depmod.js";
import { installModules, updatesSubdir } from "./install.js";
import { resolveArgv } from "./resolve.js";

/**
 * up's "install" step: open the transaction, back up each stock module with its sha256, put the
 * patched ones in place (updates/netmap/, or over the stock file for "replace"), depmod, and
 * prove with modinfo that each module resolves to the patched file (toolkit/modules/install.ts).
 */

/** The commands install runs: depmod, then one modinfo per module (netmap first). */
export function installCommands(u: UpResolve): PlannedCommand[] {
  // up runs on the host itself ("/"): the argvs are the host's, whatever root the plan reads.
  return [
    { argv: depmodArgv("/", u.release), mutates: true },
    ...[u.netmapModule, ...u.swapped.map((d) => d.module)].map((m) => ({
      argv: resolveArgv("/", u.release, m, true) as string[],
      mutates: false,
    })),
  ];
}

export function installStep(u: UpResolve, r?: UpRun): Step {
  const moddir = `/lib/modules/${u.release}`;
  const updates = join(moddir, updatesSubdir);
  const backups = join(u.stateDir, "backups", u.release);
  const replace = u.strategy === "replace";
  return {
    describe: () => ({
      id: "install",
      title: replace
        ? "Back up the stock modules, move them aside (as the original procedure did) and put the patched ones in place"
        : `Back up the stock modules and install the patched ones under ${updates} (depmod prefers updates/)`,
      mutates: true,
      dependsOn: [u.after],
      commands: installCommands(u),
      files: [
        ...u.swapped.map((d) => ({
          action: "backup" as const,
          path: d.stockPath,
          to: join(backups, "<sha256>.ko"),
        })),
        { action: "create" as const, path: join(updates, `${u.netmapModule}.ko`) },
        ...u.swapped.flatMap((d) =>
          replace
            ? [
                { action: "move" as const, path: d.stockPath, to: `${d.stockPath}-bak` },
                { action: "create" as const, path: d.stockPath.replace(/\.ko(\.\w+)?$/, ".ko") },
              ]
            : [{ action: "create" as const, path: join(updates, `${d.module}.ko`) }],
        ),
        { action: "create" as const, path: join(u.stateDir, "installed.json") },
      ],
      checks: [
        ...u.swapped.map((d) => `backup of ${d.stockPath} has its sha256 before anything moves`),
        ...[u.netmapModule, ...u.swapped.map((d) => d.module)].map(
          (m) => `modinfo -n ${m} resolves to the patched file`,
        ),
      ],
      notes: [
        "every change is journaled first: a crash at any point is finished or undone by the next up or down",
      ],
    }),
    run: async () => {
      const { exec, st, report } = running(r, "install");
      const a = st.artifacts;
      if (!a) throw new Error("install ran before the build step");
      st.tx = openTransaction(u.stateDir, "up", {
        root: u.root,
        kver: u.release,
        netmapModule: a.manifest.netmapModule,
      });
      report.transaction = st.tx.txid;
      const res = await installModules({
        root: u.root,
        kver: u.release,
        artifacts: a.modules,
        strategy: u.strategy,
        stateDir: u.stateDir,
        exec,
        journal: st.tx,
        netmapModule: a.manifest.netmapModule,
        recipe: u.recipe,
        warn: r?.warn,
      });
      st.record = res.record;
    },
    // Undoes the whole transaction, swap included, in reverse journal order: the stock drivers can
    // only be reloaded once their files are back, which a per-step undo could not order.
    undo: async () => {
      const { exec, st } = running(r, "install");
      if (st.tx) await undoJournal(readJournal(st.tx.file), { exec, stateDir: u.stateDir, warn: r?.warn });
    },
  };
}
