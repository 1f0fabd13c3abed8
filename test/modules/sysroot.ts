import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { createExec, type Exec } from "../../toolkit/core/exec.js";
import {
  type InstallResult,
  type InstallStrategy,
  installModules,
  type ModuleArtifact,
} from "../../toolkit/modules/install.js";
import { type PersistResult, persistModules } from "../../toolkit/modules/persist.js";
import { commit, openTransaction } from "../../toolkit/state/journal.js";
import { debianKernel } from "../helpers/debian-kernel.js";
import { fixture, repoRoot } from "../helpers/paths.js";

/**
 * Sysroot fixtures for the module tests: a fake /lib/modules/<kver> built from the host's REAL
 * module files (e1000 plus a few others), indexed by the real `depmod -b`, and "patched" modules
 * that are real .ko files too: two ten-line stand-ins (netmap exporting a symbol, e1000 using it)
 * built with the installed kernel's kbuild and cached under .cache/. A modified copy of a stock
 * .ko would not do: depmod/modinfo parse the ELF, and a renamed other module keeps its own name.
 */

export const e1000Rel: string = "kernel/drivers/net/ethernet/intel/e1000/e1000.ko";

/** The kernel release whose modules and build dir the tests use (the installed Debian kernel). */
export const kver: string = (() => {
  const k = debianKernel(); // throws naming the missing package
  if (!existsSync(join(k.moduleDir, e1000Rel))) {
    throw new Error(
      `sysroot tests need ${join(k.moduleDir, e1000Rel)}: reinstall linux-image-${k.release} (apt-get install --reinstall linux-image-${k.release})`,
    );
  }
  return k.release;
})();

/** A few more real modules so the tree is not trivial (virtio_net and its dependency chain). */
const extraRels = [
  "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko",
  "kernel/drivers/net/virtio_net.ko",
  "kernel/drivers/net/net_failover.ko",
  "kernel/net/core/failover.ko",
];
const indexFiles = ["modules.order", "modules.builtin", "modules.builtin.modinfo"];

export function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/**
 * Build (once, cached by source hash and module name) the stand-in netmap module and e1000.ko;
 * returns their paths. `netmapName` "netmap_lin" builds it as netmap's old layout names it (the
 * stand-in e1000 then depends on netmap_lin).
 */
export function standinModules(netmapName: StandinNetmapName = "netmap"): { netmap: string; e1000: string } {
  const src = fixture("sysroot-standins");
  const h = createHash("sha256").update(kver).update(`\0${netmapName}\0`);
  for (const f of readdirSync(src).sort()) h.update(f).update(readFileSync(join(src, f)));
  const dir = join(repoRoot, ".cache", "sysroot-standins", h.digest("hex").slice(0, 16));
  const out = { netmap: join(dir, `${netmapName}.ko`), e1000: join(dir, "e1000.ko") };
  if (existsSync(out.netmap) && existsSync(out.e1000)) return out;
  mkdirSync(dirname(dir), { recursive: true });
  const work = mkdtempSync(`${dir}.build-`);
  cpSync(src, work, { recursive: true });
  execFileSync(
    "make",
    ["-C", `/lib/modules/${kver}/build`, `M=${work}`, `NP_NETMAP_NAME=${netmapName}`, "modules"],
    { stdio: "pipe" },
  );
  try {
    renameSync(work, dir);
  } catch {
    rmSync(work, { recursive: true, force: true }); // another test process finished first
  }
  return out;
}

/** The netmap module's names: today's, and the old layout's (netmap v11.0, the seed recipe). */
export type StandinNetmapName = "netmap" | "netmap_lin";

export function standinArtifacts(netmapName: StandinNetmapName = "netmap"): ModuleArtifact[] {
  const m = standinModules(netmapName);
  return [
    { module: netmapName, file: m.netmap, sha256: sha256(m.netmap) },
    { module: "e1000", file: m.e1000, sha256: sha256(m.e1000) },
  ];
}

export interface Sysroot {
  root: string;
  stateDir: string;
  modDir: string;
  /** Relative path of the stock e1000 in this tree (.ko, .ko.xz or .ko.zst). */
  stockE1000: string;
}

/** A fresh sysroot with real modules, optionally with e1000 compressed as Debian may ship it. */
export function makeSysroot(opts: { compress?: "xz" | "zst" } = {}): Sysroot {
  const top = mkdtempSync(join(tmpdir(), "np-sysroot-"));
  const root = join(top, "root");
  const modDir = join(root, "lib", "modules", kver);
  const host = join("/lib/modules", kver);
  for (const rel of [e1000Rel, ...extraRels, ...indexFiles]) {
    if (!existsSync(join(host, rel))) continue;
    mkdirSync(dirname(join(modDir, rel)), { recursive: true });
    copyFileSync(join(host, rel), join(modDir, rel));
  }
  let stockE1000 = e1000Rel;
  if (opts.compress === "xz") {
    execFileSync("xz", ["--check=crc32", join(modDir, e1000Rel)]);
    stockE1000 = `${e1000Rel}.xz`;
  } else if (opts.compress === "zst") {
    execFileSync("zstd", ["-q", "--rm", join(modDir, e1000Rel)]);
    stockE1000 = `${e1000Rel}.zst`;
  }
  execFileSync("depmod", ["-b", root, kver]);
  return { root, stateDir: join(top, "state"), modDir, stockE1000 };
}

/** Every file and directory under lib/modules: path -> "dir" or "<mode>:<sha256>". */
export function snapshotTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      const rel = relative(root, p);
      if (st.isDirectory()) {
        out[rel] = "dir";
        walk(p);
      } else out[rel] = `${(st.mode & 0o7777).toString(8)}:${sha256(p)}`;
    }
  };
  walk(join(root, "lib", "modules"));
  return out;
}

/**
 * One committed "up" on a sysroot: the stand-ins installed with `strategy`, then (persist) the
 * modules-load.d entry. What the crash child and the persistence tests share.
 */
export async function upOnSysroot(
  sr: { root: string; stateDir: string },
  o: { strategy: InstallStrategy; persist?: boolean; exec?: Exec },
): Promise<{ install: InstallResult; persist?: PersistResult }> {
  const exec = o.exec ?? createExec();
  const tx = openTransaction(sr.stateDir, "up", { root: sr.root, command: "test up" });
  const install = await installModules({
    root: sr.root,
    kver,
    artifacts: standinArtifacts(),
    strategy: o.strategy,
    stateDir: sr.stateDir,
    exec,
    journal: tx,
    netmapModule: "netmap",
  });
  const persist = o.persist
    ? await persistModules({
        root: sr.root,
        kver,
        stateDir: sr.stateDir,
        exec,
        tx,
        record: install.record,
        load: ["netmap", "e1000"],
        artifacts: standinArtifacts(),
        initramfs: "auto",
      })
    : undefined;
  commit(tx);
  return persist ? { install, persist } : { install };
}
