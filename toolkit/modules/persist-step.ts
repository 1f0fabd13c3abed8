import type { PlannedCommand, Step } from "../runner/step.js";
import { netmapModuleOf, running, type UpResolve, type UpRun } from "../up/context.js";
import { inspectArgv, inspectDirPrefix, modulesLoadPath, persistModules } from "./persist.js";

/**
 * up's "persist" step (modules.persist), after verify so only a load proven to work survives a
 * reboot: the modules-load.d entry, the initramfs backed up, regenerated and looked inside
 * (toolkit/modules/persist.ts).
 */

/** The commands persist runs: regenerate the image, then look inside it. */
export function persistCommands(u: UpResolve): PlannedCommand[] {
  const t = u.initramfs.tool;
  if (!t) return [];
  return [
    { argv: t.regenerate, mutates: true },
    // The image is read under the host root; unmkinitramfs unpacks into a fresh temporary dir.
    { argv: inspectArgv(t, t.image, `${inspectDirPrefix()}<tmp>`), mutates: false },
  ];
}

export function persistStep(u: UpResolve, r?: UpRun): Step {
  const t = u.initramfs.tool;
  const drivers = u.swapped.map((d) => d.module);
  return {
    describe: () => ({
      id: "persist",
      title: `Keep netmap across reboots (modules-load.d${t ? `, ${t.image} regenerated` : ""})`,
      mutates: true,
      dependsOn: ["verify"],
      commands: persistCommands(u),
      files: [
        { action: "create", path: modulesLoadPath },
        ...(t
          ? [
              { action: "backup" as const, path: t.image },
              { action: "replace" as const, path: t.image },
            ]
          : []),
      ],
      checks: [
        t
          ? `${t.image} holds the patched ${drivers.join(", ") || "drivers"} or no copy of them`
          : u.initramfs.note,
      ],
    }),
    run: async () => {
      const run = running(r, "persist");
      const { st } = run;
      if (!st.tx || !st.record || !st.artifacts) throw new Error("persist ran before install");
      run.report.persist = await persistModules({
        root: u.root,
        kver: u.release,
        stateDir: u.stateDir,
        exec: run.exec,
        tx: st.tx,
        record: st.record,
        load: [netmapModuleOf(run), ...drivers],
        artifacts: st.artifacts.modules,
        initramfs: run.recipe.modules.initramfs,
      });
    },
  };
}
