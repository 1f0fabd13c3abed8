import { realpathSync } from "node:fs";
import { basename, posix, resolve } from "node:path";

/**
 * Where the paths of an installed.json may point. `down` puts files back, removes files and
 * directories, and may run an initramfs generator, all from this record, as root: a forged or
 * damaged record must not turn that into a write anywhere else. So every path must be one that
 * `up` itself would have written (toolkit/modules/install.ts, persist.ts, backup.ts):
 *
 *   modules, originals, `-bak` copies   /lib/modules/<kernelRelease>/…/*.ko[.xz|.zst|.gz]
 *   other files                         /etc/modules-load.d/*.conf, /etc/modprobe.d/*.conf,
 *                                       /boot/initrd.img-<kernelRelease>, /boot/initramfs-<kernelRelease>.img
 *   backups                             <stateDir>/backups/<kernelRelease>/<sha256><module suffix>
 *   created directories                 under /lib/modules/<kernelRelease>, or a parent of the above
 *
 * Record paths are host paths (no --root prefix), except backup copies (real paths).
 */
interface RecordPaths {
  kernelRelease: string;
  modules: Array<{
    module: string;
    path: string;
    replacedOriginal?: { path: string; backupPath: string; sha256: string; movedAside?: string };
    shadowed?: string;
  }>;
  files: Array<{
    path: string;
    previous?: { path: string; backupPath: string; sha256: string };
    kind?: "initramfs";
    regenerate?: string[];
  }>;
  createdDirs: string[];
}

const MODULE_FILE = /\.ko(\.xz|\.zst|\.gz)?$/;
const CONF_DIRS = ["/etc/modules-load.d", "/etc/modprobe.d"];
/** Parents `up` may have had to create on a sparse root (a sysroot without /etc/modules-load.d). */
const PARENT_DIRS = new Set(["/etc", "/lib", "/lib/modules", ...CONF_DIRS]);

const under = (p: string, dir: string): boolean => p.startsWith(`${dir}/`);

/** The initramfs images `up` regenerates and the argv it records for them (persist.ts initramfsToolFor). */
export function initramfsImages(kver: string): Map<string, string[]> {
  return new Map([
    [`/boot/initrd.img-${kver}`, ["update-initramfs", "-u", "-k", kver]],
    [`/boot/initramfs-${kver}.img`, ["dracut", "--force", `/boot/initramfs-${kver}.img`, kver]],
  ]);
}

function realOrResolved(p: string): string[] {
  const out = [resolve(p)];
  try {
    out.push(realpathSync(p));
  } catch {
    // not there (yet): the resolved form is all there is
  }
  return out;
}

/** Every way `path` fails the policy, as lines for a message; [] when the record is confined. */
export function installedPathProblems(rec: RecordPaths, stateDir: string): string[] {
  const kver = rec.kernelRelease;
  const modTree = `/lib/modules/${kver}`;
  const backupDirs = realOrResolved(stateDir).map((d) => posix.join(d, "backups", kver));
  const problems: string[] = [];
  const bad = (where: string, path: string, why: string) => problems.push(`${where} ${path}: ${why}`);

  const moduleFile = (where: string, p: string) => {
    if (!under(p, modTree)) bad(where, p, `not under ${modTree}`);
    else if (!MODULE_FILE.test(p)) bad(where, p, "not a kernel module file (.ko)");
  };
  const backup = (where: string, ref: { path: string; backupPath: string; sha256: string }) => {
    const suffix = MODULE_FILE.exec(ref.path)?.[0] ?? "";
    const name = `${ref.sha256}${suffix}`;
    const dirOk = backupDirs.some((d) => ref.backupPath === posix.join(d, name));
    const realOk =
      basename(ref.backupPath) === name &&
      realOrResolved(posix.dirname(ref.backupPath)).some((d) => backupDirs.includes(d));
    if (!dirOk && !realOk)
      bad(where, ref.backupPath, `not the backup of sha256 ${ref.sha256} in ${backupDirs[0]}`);
  };

  rec.modules.forEach((m, i) => {
    const at = `modules[${i}] (${m.module})`;
    moduleFile(`${at} path`, m.path);
    if (m.shadowed !== undefined) moduleFile(`${at} shadowed`, m.shadowed);
    const ro = m.replacedOriginal;
    if (ro) {
      moduleFile(`${at} replacedOriginal.path`, ro.path);
      backup(`${at} replacedOriginal.backupPath`, ro);
      if (ro.movedAside !== undefined && ro.movedAside !== `${ro.path}-bak`)
        bad(`${at} replacedOriginal.movedAside`, ro.movedAside, `not ${ro.path}-bak`);
    }
  });

  const images = initramfsImages(kver);
  rec.files.forEach((f, i) => {
    const at = `files[${i}]`;
    if (f.kind === "initramfs") {
      const argv = images.get(f.path);
      if (!argv) bad(`${at} path`, f.path, `not an initramfs image of ${kver}`);
      else if (f.regenerate !== undefined && JSON.stringify(f.regenerate) !== JSON.stringify(argv))
        bad(`${at} regenerate`, JSON.stringify(f.regenerate), `not the command that regenerates ${f.path}`);
    } else {
      const dir = posix.dirname(f.path);
      if (!CONF_DIRS.includes(dir) || !/^[A-Za-z0-9._-]+\.conf$/.test(basename(f.path)))
        bad(`${at} path`, f.path, `not a .conf file in ${CONF_DIRS.join(" or ")}`);
      if (f.regenerate !== undefined)
        bad(`${at} regenerate`, JSON.stringify(f.regenerate), "only an initramfs image is regenerated");
    }
    if (f.previous) {
      if (f.previous.path !== f.path) bad(`${at} previous.path`, f.previous.path, `not ${f.path}`);
      backup(`${at} previous.backupPath`, f.previous);
    }
  });

  rec.createdDirs.forEach((d, i) => {
    if (d !== modTree && !under(d, modTree) && !PARENT_DIRS.has(d))
      bad(
        `createdDirs[${i}]`,
        d,
        `not a directory up creates (under ${modTree}, or ${[...PARENT_DIRS].join(", ")})`,
      );
  });
  return problems;
}
