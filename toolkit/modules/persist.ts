import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { StepError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { underRoot } from "../core/paths.js";
import { sha256File, sha256IfExists } from "../state/atomic-file.js";
import type { InstalledFile, InstalledRecord } from "../state/installed.js";
import type { Transaction } from "../state/journal.js";
import { type BackupRef, backupFile, restoreFromBackup } from "./backup.js";
import { makeDirs } from "./file-ops.js";
import type { ModuleArtifact } from "./install.js";
import { writeFileJournaled, writeInstalledJournaled } from "./write-file.js";

/**
 * Persistence across reboots (modules.persist): a modules-load.d entry so systemd loads netmap
 * and the patched drivers at boot, and the initramfs regenerated so the stock driver it carries
 * cannot win before the root filesystem is mounted (netmap #529, #419). The regenerated image is
 * checked to hold the patched driver, or no copy of it at all. `down` puts the old image back
 * byte for byte (it was backed up like every file this toolkit replaces).
 */

export const modulesLoadPath = "/etc/modules-load.d/netmap-provision.conf";

export type InitramfsChoice = "auto" | "update-initramfs" | "dracut" | "none";

export interface InitramfsTool {
  kind: "update-initramfs" | "dracut";
  /** Host path of the image this kernel boots with. */
  image: string;
  /** argv that rebuilds it for the kernel. */
  regenerate: string[];
}

const TOOL_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
const hasTool = (root: string, name: string): boolean =>
  TOOL_DIRS.some((d) => existsSync(underRoot(root, join(d, name))));

/** The image path and argv for each generator (Debian/Ubuntu and Fedora/RHEL naming). */
export function initramfsToolFor(kind: InitramfsTool["kind"], kver: string): InitramfsTool {
  if (kind === "update-initramfs")
    return { kind, image: `/boot/initrd.img-${kver}`, regenerate: ["update-initramfs", "-u", "-k", kver] };
  const image = `/boot/initramfs-${kver}.img`;
  return { kind, image, regenerate: ["dracut", "--force", image, kver] };
}

/**
 * Which generator applies. `auto` takes the one installed (update-initramfs first); the result is
 * undefined when the kernel has no initramfs image (nothing can carry a stock copy) or the recipe
 * says "none". A generator asked for by name but missing is an error, not a silent skip.
 */
export function detectInitramfs(
  root: string,
  kver: string,
  choice: InitramfsChoice,
): { tool?: InitramfsTool; note: string } {
  if (choice === "none") return { note: "modules.initramfs is none: the initramfs is left as it is" };
  const kinds: InitramfsTool["kind"][] = choice === "auto" ? ["update-initramfs", "dracut"] : [choice];
  const kind = kinds.find((k) => hasTool(root, k));
  if (!kind) {
    if (choice !== "auto")
      throw new StepError(
        "persist",
        `modules.initramfs is ${choice}, but ${choice} is not installed`,
        `install it (apt-get install initramfs-tools, dnf install dracut) or set modules.initramfs: auto`,
      );
    return { note: "no initramfs generator (update-initramfs, dracut) is installed: nothing to regenerate" };
  }
  const tool = initramfsToolFor(kind, kver);
  if (!existsSync(underRoot(root, tool.image)))
    return { note: `${tool.image} does not exist: this kernel boots without an initramfs to regenerate` };
  return { tool, note: `${tool.image} regenerated with ${kind}` };
}

/** What the regenerated image holds for one module. */
export interface InitramfsModule {
  module: string;
  /** Path inside the image (undefined: no copy at all, so the root filesystem's file is loaded). */
  path?: string;
  /** True when the copy's sha256 is the patched module's. */
  patched: boolean | null;
}

const moduleFileRe = (name: string) =>
  new RegExp(`(^|/)${name.replace(/[-_]/g, "[-_]")}\\.ko(\\.(xz|zst|gz))?$`);

function walk(dir: string, base = dir, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, base, out);
    else if (e.isFile()) out.push(relative(base, p));
  }
  return out;
}

/** The read-only command that looks inside the image (dracut lists it; initramfs-tools unpacks it into `dir`). */
export function inspectArgv(tool: InitramfsTool, image: string, dir: string): string[] {
  return tool.kind === "dracut" ? ["lsinitrd", image] : ["unmkinitramfs", image, dir];
}

/** Where the image is unpacked to be looked at (plan shows the prefix; the run adds a random part). */
export const inspectDirPrefix = (): string => join(tmpdir(), "np-initramfs-");

/**
 * Look inside the image for each module. initramfs-tools: `unmkinitramfs` unpacks every archive
 * (early microcode + main) and each copy is compared by sha256. dracut: `lsinitrd` lists paths;
 * a copy under updates/ counts as patched (dracut resolves through modprobe, which prefers it).
 */
export async function inspectInitramfs(
  exec: Exec,
  tool: InitramfsTool,
  imageReal: string,
  artifacts: readonly ModuleArtifact[],
): Promise<InitramfsModule[]> {
  if (tool.kind === "dracut") {
    const listing = (await exec.run(inspectArgv(tool, imageReal, ""))).stdout.split("\n");
    return artifacts.map((a) => {
      const line = listing.find((l) => moduleFileRe(a.module).test(l.trim().split(/\s+/).at(-1) ?? ""));
      const path = line?.trim().split(/\s+/).at(-1);
      return path
        ? { module: a.module, path, patched: /\/updates\//.test(path) }
        : { module: a.module, patched: null };
    });
  }
  const dir = mkdtempSync(inspectDirPrefix());
  try {
    await exec.run(inspectArgv(tool, imageReal, dir));
    const files = walk(dir);
    return artifacts.map((a) => {
      const hits = files.filter((f) => moduleFileRe(a.module).test(f));
      if (hits.length === 0) return { module: a.module, patched: null };
      // More than one copy (stock and patched) means the stock one may still load first.
      const stock = hits.find((f) => sha256File(join(dir, f)) !== a.sha256);
      const path = stock ?? (hits[0] as string);
      return { module: a.module, path, patched: stock === undefined };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface PersistResult {
  modulesLoad: string;
  initramfs: { image: string; tool: InitramfsTool["kind"]; modules: InitramfsModule[] } | null;
  note: string;
}

/**
 * Make the load survive a reboot, inside the open `up` transaction: modules-load.d entry (netmap
 * first, so the drivers' symbols resolve), initramfs backed up then regenerated and inspected,
 * and installed.json updated so `down` undoes both.
 */
export async function persistModules(o: {
  root: string;
  kver: string;
  stateDir: string;
  exec: Exec;
  tx: Transaction;
  record: InstalledRecord;
  /** Module names in load order. */
  load: readonly string[];
  artifacts: readonly ModuleArtifact[];
  initramfs: InitramfsChoice;
}): Promise<PersistResult> {
  const { root, kver, stateDir, exec, tx } = o;
  const files: InstalledFile[] = o.record.files.filter(
    (f) => f.path !== modulesLoadPath && f.kind !== "initramfs",
  );
  const conf = [
    "# Written by netmap-provision; `netmap-provision down` removes it.",
    "# netmap first: the patched drivers need its symbols.",
    ...o.load,
    "",
  ].join("\n");
  const createdDirs = [...o.record.createdDirs];
  for (const d of await makeDirs(tx, dirname(underRoot(root, modulesLoadPath))))
    createdDirs.push(hostPath(root, d));
  const w = await writeFileJournaled({
    tx,
    stateDir,
    kver,
    path: underRoot(root, modulesLoadPath),
    content: conf,
  });
  files.push(
    w.previous
      ? { path: modulesLoadPath, sha256: w.sha256, previous: hostRef(root, w.previous) }
      : { path: modulesLoadPath, sha256: w.sha256 },
  );

  const { tool, note } = detectInitramfs(root, kver, o.initramfs);
  let initramfs: PersistResult["initramfs"] = null;
  if (tool) {
    const real = underRoot(root, tool.image);
    const previous = await backupFile({ stateDir, kver, path: real, tx });
    await tx.step("regenerate-initramfs", { path: real, argv: tool.regenerate, previous }, async () => {
      await exec.run(tool.regenerate, { mutates: true });
    });
    const modules = await inspectInitramfs(exec, tool, real, o.artifacts);
    const stock = modules.filter((m) => m.patched === false);
    if (stock.length > 0)
      throw new StepError(
        "persist",
        `the regenerated ${tool.image} still holds a stock copy of ${stock.map((m) => `${m.module} (${m.path})`).join(", ")}, which would load before the patched one at boot`,
        "check /etc/initramfs-tools/modules, dracut.conf.d and depmod.d for entries naming that driver",
      );
    files.push({
      path: tool.image,
      sha256: sha256File(real),
      previous: hostRef(root, previous),
      kind: "initramfs",
      regenerate: tool.regenerate,
    });
    initramfs = { image: tool.image, tool: tool.kind, modules };
  }
  const record: InstalledRecord = { ...o.record, files, createdDirs };
  await writeInstalledJournaled(tx, stateDir, kver, record);
  return { modulesLoad: modulesLoadPath, initramfs, note };
}

const hostPath = (root: string, real: string): string =>
  root === "/" || root === "" ? real : `/${relative(root, real)}`;
const hostRef = (root: string, ref: BackupRef): BackupRef => ({ ...ref, path: hostPath(root, ref.path) });

/** True when installed.json's persistence files are all in place with the recorded bytes. */
export function persistenceInPlace(root: string, rec: InstalledRecord): boolean {
  const conf = rec.files.find((f) => f.path === modulesLoadPath);
  return (
    conf !== undefined &&
    rec.files.every((f) =>
      f.path === modulesLoadPath || f.kind === "initramfs"
        ? sha256IfExists(underRoot(root, f.path)) === f.sha256
        : true,
    )
  );
}

/**
 * Undo of "regenerate-initramfs" (undo-table.ts), after a crash during or after the regeneration:
 * the backup taken just before is the old image.
 */
export function undoRegenerateInitramfs(args: Record<string, unknown>): void {
  const path = String(args.path);
  const previous = args.previous as BackupRef;
  if (sha256IfExists(path) === previous.sha256) return;
  restoreFromBackup(previous, path);
}
