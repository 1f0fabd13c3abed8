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
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { createExec, type Exec, ExecFailure, type ExecResult } from "../../toolkit/core/exec.js";
import {
  type InstallResult,
  type InstallStrategy,
  installModules,
  type ModuleArtifact,
} from "../../toolkit/modules/install.js";
import { type PersistResult, persistModules } from "../../toolkit/modules/persist.js";
import { parseProcModules } from "../../toolkit/parse/proc.js";
import { commit, openTransaction } from "../../toolkit/state/journal.js";
import type { SwapResult } from "../../toolkit/swap/swap.js";
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
 * The kernel's module loader, for a sysroot: `modprobe M`, `rmmod M` and `modinfo` without -b act on
 * `<root>/proc/modules` and resolve through the sysroot's own modules.dep (the real `modinfo -b`,
 * read-only), so the swap, its undo and down's unload and reload run against the tree. What each
 * module was loaded from (real path) is kept beside the root in kmod-loaded.json, on disk, so the
 * crash children share it. Any other argv goes to the real exec; a module or depmod command that
 * would act on the host itself is refused.
 */
export interface SysrootKmod extends Exec {
  /** module -> the real path it was loaded from. */
  loaded(): Record<string, string>;
}

export function sysrootKmod(root: string, base: Exec = createExec()): SysrootKmod {
  const procModules = join(root, "proc", "modules");
  const loadedFile = join(dirname(root), "kmod-loaded.json");
  const loaded = (): Record<string, string> =>
    existsSync(loadedFile) ? (JSON.parse(readFileSync(loadedFile, "utf8")) as Record<string, string>) : {};
  const mods = () => (existsSync(procModules) ? parseProcModules(readFileSync(procModules, "utf8")) : []);
  const save = (list: ReturnType<typeof mods>, from: Record<string, string>) => {
    mkdirSync(dirname(procModules), { recursive: true });
    const line = (m: (typeof list)[number]) =>
      `${m.name} 16384 ${m.deps.length} ${m.deps.length > 0 ? `${m.deps.join(",")},` : "-"} Live 0xffffffffc0400000`;
    writeFileSync(procModules, list.map((m) => `${line(m)}\n`).join(""));
    writeFileSync(loadedFile, `${JSON.stringify(from, null, 2)}\n`);
  };
  const result = (argv: readonly string[], exitCode: number, stderr = ""): ExecResult => ({
    argv,
    exitCode,
    stdout: "",
    stderr,
    durationMs: 0,
    timedOut: false,
    skipped: false,
  });
  const modinfo = (args: string[]) =>
    base.run(["modinfo", "-b", root, "-k", kver, ...args], { reject: false });
  const modprobe = async (argv: readonly string[], module: string): Promise<ExecResult> => {
    if (mods().some((m) => m.name === module)) return result(argv, 0);
    const path = (await modinfo(["-n", module])).stdout.trim();
    if (!path.startsWith(`${root}/`))
      return result(
        argv,
        1,
        `modprobe: FATAL: Module ${module} not found in directory ${root}/lib/modules/${kver}`,
      );
    const depends = (await modinfo(["-F", "depends", module])).stdout.trim().split(",").filter(Boolean);
    for (const d of depends) {
      const r = await modprobe(argv, d);
      if (r.exitCode !== 0) return r;
    }
    const list = mods();
    for (const d of depends) list.find((m) => m.name === d)?.deps.push(module);
    list.push({ name: module, size: 16384, refcount: 0, deps: [], taints: "" });
    save(list, { ...loaded(), [module]: path });
    return result(argv, 0);
  };
  const rmmod = (argv: readonly string[], module: string): ExecResult => {
    const list = mods();
    const m = list.find((x) => x.name === module);
    if (!m) return result(argv, 1, `rmmod: ERROR: Module ${module} is not currently loaded`);
    if (m.deps.length > 0)
      return result(argv, 1, `rmmod: ERROR: Module ${module} is in use by: ${m.deps.join(" ")}`);
    for (const x of list) x.deps = x.deps.filter((d) => d !== module);
    const from = loaded();
    delete from[module];
    save(
      list.filter((x) => x !== m),
      from,
    );
    return result(argv, 0);
  };
  const run = async (argv: readonly string[], o: Parameters<Exec["run"]>[1] = {}): Promise<ExecResult> => {
    const [cmd, ...args] = argv;
    const one = args.length === 1 && /^[A-Za-z0-9_-]+$/.test(args[0] ?? "") ? args[0] : undefined;
    let r: ExecResult;
    if (cmd === "modprobe" && one) r = await modprobe(argv, one);
    else if (cmd === "rmmod" && one) r = rmmod(argv, one);
    else if (cmd === "modinfo" && !args.includes("-b") && (args.includes("-n") || args.includes("-F"))) {
      const rest = [...args];
      const k = rest.indexOf("-k");
      if (k !== -1) rest.splice(k, 2);
      return modinfo(rest);
    } else if (
      ["modprobe", "rmmod", "insmod", "ip"].includes(cmd ?? "") ||
      (cmd === "depmod" && !args.includes("-b"))
    )
      throw new Error(
        `sysrootKmod: refusing \`${argv.join(" ")}\`: it would act on this machine, not the sysroot`,
      );
    else return base.run(argv, o);
    if (r.exitCode !== 0 && (o.reject ?? true)) throw new ExecFailure(r);
    return r;
  };
  return { dryRun: false, start: base.start, run, loaded };
}

/**
 * One committed "up" on a sysroot: the stand-ins installed with `strategy`, then (persist) the
 * modules-load.d entry, then (swap, with a sysrootKmod exec) the stock e1000 swapped for the
 * patched one as `up` does it. What the crash child and the persistence tests share.
 */
export async function upOnSysroot(
  sr: { root: string; stateDir: string },
  o: { strategy: InstallStrategy; persist?: boolean; swap?: boolean; exec?: Exec },
): Promise<{ install: InstallResult; persist?: PersistResult; swap?: SwapResult }> {
  const exec = o.exec ?? createExec();
  const tx = openTransaction(sr.stateDir, "up", { root: sr.root, kver, command: "test up" });
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
  // Loaded here, as `up` loads its transaction's modules only once recovery is over (up.ts): a
  // recovery run in this process before it sees the import graph `up`'s recovery sees.
  const swap = o.swap
    ? await (await import("../../toolkit/swap/swap.js")).swapDrivers({
        exec,
        root: sr.root,
        kver,
        tx,
        netmapModule: "netmap",
        drivers: ["e1000"],
        interfaces: [],
      })
    : undefined;
  commit(tx);
  return { install, ...(persist ? { persist } : {}), ...(swap ? { swap } : {}) };
}
