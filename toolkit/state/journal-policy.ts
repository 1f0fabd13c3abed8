import { posix, resolve } from "node:path";
import { underRoot } from "../core/paths.js";
import { isKernelRelease } from "../host/release-name.js";
import { initramfsImages } from "./installed-policy.js";
import type { JournalState } from "./journal.js";
import { isUndoOp } from "./undo-table.js";

/**
 * What an interrupted `up` journal may ask recovery to undo. Undoing puts backups back over
 * files, removes files and directories, and runs depmod and rmmod/modprobe, all from the journal's
 * arguments, as root: like installed.json (installed-policy.ts), a forged or damaged journal must
 * not turn that into a change anywhere else. Every path must be one `up` writes; journal paths
 * are real paths (under the run's root).
 */
const MODULE_FILE = /\.ko(\.xz|\.zst|\.gz)?$/;
const MODULE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,14}$/;
const IP_ADDRESS = /^[0-9A-Fa-f][0-9A-Fa-f.:]{0,44}$/;

const clean = (p: unknown): p is string =>
  typeof p === "string" && p.startsWith("/") && !p.includes("\0") && posix.normalize(p) === p;

/** Every way the journal's steps leave the trees `up` writes to; [] when they do not. */
export function journalPathProblems(j: JournalState, stateDir: string, root: string): string[] {
  const problems: string[] = [];
  // The transaction's kernel (meta.kver); a journal without one may name any one kernel release.
  const kver = j.meta.kver;
  if (kver !== undefined && (typeof kver !== "string" || !isKernelRelease(kver))) {
    problems.push(`meta.kver ${JSON.stringify(kver)} is not a kernel release`);
    return problems;
  }
  const real = (host: string) => underRoot(root, host);
  const modules = real("/lib/modules");
  /** The kernel release a path under <root>/lib/modules/<release>/ belongs to, if it is one. */
  const releaseOf = (p: string, base: string): string | undefined => {
    if (!p.startsWith(`${base}/`)) return undefined;
    const rel = p.slice(base.length + 1).split("/")[0] ?? "";
    if (!isKernelRelease(rel) || (kver !== undefined && rel !== kver)) return undefined;
    return rel;
  };
  const inModTree = (p: string): boolean => releaseOf(p, modules) !== undefined;
  const modTree = kver !== undefined ? posix.join(modules, kver) : `${modules}/<kernel release>`;
  const parents = ["/etc", "/lib", "/lib/modules", "/etc/modules-load.d", "/etc/modprobe.d"].map(real);
  const confDirs = ["/etc/modules-load.d", "/etc/modprobe.d"].map(real);
  const images = (k: string) => [...initramfsImages(k).keys()].map(real);
  const backupsBase = posix.join(resolve(stateDir), "backups");
  const backups = kver !== undefined ? posix.join(backupsBase, kver) : `${backupsBase}/<kernel release>`;
  const installedJson = posix.join(resolve(stateDir), "installed.json");
  const isRelease = (k: unknown): boolean =>
    typeof k === "string" && isKernelRelease(k) && (kver === undefined || k === kver);
  /** The release of an initramfs image path up regenerates (<root>/boot/initrd.img-<release>...). */
  const imageRelease = (p: string): string | undefined => {
    const m = /^(?:initrd\.img-(.+)|initramfs-(.+)\.img)$/.exec(posix.basename(p));
    const k = m?.[1] ?? m?.[2];
    return k !== undefined && isRelease(k) && images(k).includes(p) ? k : undefined;
  };

  for (const s of j.steps) {
    const a = s.args;
    const bad = (what: string, why: string) => problems.push(`step #${s.seq} ${s.op} ${what}: ${why}`);
    const moduleFile = (key: string, p: unknown) => {
      if (!clean(p) || !inModTree(p) || !MODULE_FILE.test(p))
        bad(`${key} ${JSON.stringify(p)}`, `not a module file under ${modTree}`);
    };
    const backup = (key: string, ref: unknown, path: unknown) => {
      if (ref === undefined) return;
      const r = ref as { path?: unknown; backupPath?: unknown; sha256?: unknown };
      if (
        typeof r !== "object" ||
        r === null ||
        !clean(r.backupPath) ||
        releaseOf(posix.dirname(r.backupPath), backupsBase) === undefined ||
        posix.dirname(posix.dirname(r.backupPath)) !== backupsBase
      )
        bad(`${key}.backupPath ${JSON.stringify(r?.backupPath)}`, `not a backup in ${backups}`);
      else if (typeof r.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(r.sha256))
        bad(`${key}.sha256`, "not a sha256");
      if (typeof r === "object" && r !== null && r.path !== path)
        bad(`${key}.path ${JSON.stringify(r.path)}`, `not ${JSON.stringify(path)}`);
    };
    const sameRoot = (key: string, v: unknown) => {
      if (v !== undefined && (typeof v !== "string" || resolve(v) !== resolve(root)))
        bad(`${key} ${JSON.stringify(v)}`, `not this run's root ${root}`);
    };
    // The ops are the undo table's (checkJournalOps refuses any other before this runs).
    if (!isUndoOp(s.op)) {
      bad("", "not a step `up` journals");
      continue;
    }
    switch (s.op) {
      case "mkdir":
        if (!clean(a.path) || !(inModTree(a.path) || parents.includes(a.path)))
          bad(`path ${JSON.stringify(a.path)}`, `not a directory up creates (under ${modTree})`);
        break;
      case "install":
        moduleFile("dest", a.dest);
        backup("replaced", a.replaced, a.dest);
        break;
      case "move-aside":
        moduleFile("path", a.path);
        if (a.to !== `${String(a.path)}-bak`) bad(`to ${JSON.stringify(a.to)}`, `not ${String(a.path)}-bak`);
        break;
      case "write-file": {
        const p = a.path;
        const ok =
          clean(p) &&
          (p === installedJson ||
            (confDirs.includes(posix.dirname(p)) && /^[A-Za-z0-9._-]+\.conf$/.test(posix.basename(p))));
        if (!ok) bad(`path ${JSON.stringify(p)}`, "not installed.json or a .conf file up writes");
        backup("previous", a.previous, p);
        break;
      }
      case "regenerate-initramfs":
        if (!clean(a.path) || imageRelease(a.path) === undefined)
          bad(`path ${JSON.stringify(a.path)}`, "not an initramfs image of the transaction's kernel");
        if (a.previous === undefined) bad("previous", "missing");
        backup("previous", a.previous, a.path);
        break;
      case "depmod":
        sameRoot("root", a.root);
        if (!isRelease(a.kver)) bad(`kver ${JSON.stringify(a.kver)}`, "not the transaction's kernel release");
        break;
      case "load":
      case "unload": {
        if (typeof a.module !== "string" || !MODULE_NAME.test(a.module))
          bad(`module ${JSON.stringify(a.module)}`, "not a module name");
        sameRoot("root", a.root);
        if (s.op === "unload" && a.kver !== undefined && !isRelease(a.kver))
          bad(`kver ${JSON.stringify(a.kver)}`, "not the transaction's kernel release");
        const ifs = a.interfaces;
        if (ifs !== undefined && !Array.isArray(ifs)) bad("interfaces", "not a list");
        // Interface state goes back through `ip`: only names, addresses and numbers, never an option.
        for (const i of Array.isArray(ifs) ? ifs : []) {
          if (typeof i?.ifname !== "string" || !IFNAME.test(i.ifname))
            bad(`interface ${JSON.stringify(i?.ifname)}`, "not an interface name");
          const addrs: unknown[] = [
            ...(Array.isArray(i?.addresses) ? i.addresses.map((x: { local?: unknown }) => x?.local) : []),
            ...(Array.isArray(i?.defaultRoutes)
              ? i.defaultRoutes
                  .map((x: { gateway?: unknown }) => x?.gateway)
                  .filter((g: unknown) => g !== null)
              : []),
          ];
          for (const ad of addrs)
            if (typeof ad !== "string" || !IP_ADDRESS.test(ad))
              bad(`address ${JSON.stringify(ad)}`, "not an IP address");
          if (i?.mtu !== undefined && i.mtu !== null && !Number.isInteger(i.mtu)) bad("mtu", "not a number");
        }
        break;
      }
      case "backup":
        // Its undo changes nothing (the copy is kept); the backups other steps put back are checked there.
        break;
      default: {
        // Every op of the undo table has its rules here: a new op cannot be undone unchecked.
        const unchecked: never = s.op;
        bad("", `no path rules for op ${String(unchecked)}`);
      }
    }
  }
  return problems;
}
