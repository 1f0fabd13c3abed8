import {
  type Dirent,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import type { Exec } from "../core/exec.js";
import { createMakeProgress } from "../parse/make-progress.js";

/**
 * How many objects a netmap build will compile, known before make starts, so the progress bar
 * ends exactly where the build does. "Objects" means what the progress counter counts (see
 * MakeProgress.compiled): one per kbuild `CC` line that is not a `.mod.o` stub, plus one per
 * user-space compiler run that compiles a `.c` (libnetmap, apps, utils); links, MODPOST and BTF
 * are phases, not objects.
 *
 * - kbuild part: the Kbuild (or Makefile) configure wrote into the build dir, and the kernel
 *   Makefile of every driver directory it builds, evaluated by GNU make itself (netmap's Kbuild
 *   picks its objects with $(foreach ...$(eval ...)) and ifdef on the subsystems), then counted
 *   with kbuild's own rules: a module `m.o` in obj-m is made of $(m-objs) $(m-y) $(m-m) when any
 *   of them (or $(m-)) is set, else of m.o itself; every object is compiled once.
 *   A driver directory that make has not copied yet is read where drivers.mak copies it from
 *   (`<d>@src := cp -Rp <kernel tree>/drivers/.../<d> <d>`; netmap's vanilla patches do not
 *   touch those Makefiles); in the old layout, which has no drivers.mak, where its Makefile
 *   copies it from (legacyDriverSource). A driver named `x.c` is the single object x.o.
 * - user-space part: `make -n -k` of the same make command, with kbuild's external-module runs
 *   (`make ... M=...`) left out: make itself prints the compiler commands the build will run,
 *   and the progress counter counts them as it will count the real ones.
 *
 * Meant for a freshly configured build dir (the build step makes in a new one each time): in a dir
 * make has already built, kbuild objects still count though kbuild would not recompile them.
 * Not predicted (the count then reads "compiled N objects" once passed): drivers built from an
 * external archive by their own make (their sources appear only when make unpacks them), and
 * kbuild `AS` objects (assembler sources; netmap has none, and the counter does not count them).
 */

export interface ExpectedObjectsInput {
  /** Where make runs (the configure build dir). */
  dir: string;
  /** The kernel build dir (for include/config/auto.conf, as kbuild reads it). */
  kernelDir: string;
  /** The drivers configure kept (its report's native drivers); default: those in drivers.mak. */
  drivers?: readonly string[];
  exec: Exec;
  /** The arguments make will be given (legacy: KSRC=...). */
  makeArgs?: readonly string[];
}

export interface ExpectedObjects {
  /** kbuild objects plus user-space compiles: the progress bar's end. */
  total: number;
  /** Objects per kbuild module, keyed by the module's path relative to the build dir. */
  modules: Record<string, string[]>;
  /** User-space compiler runs (libnetmap, apps, utils). */
  userCompiles: number;
  /** Kbuild directories that could not be read (no Kbuild/Makefile, or an archive not unpacked yet). */
  unresolved: string[];
}

/** One drivers.mak entry: `<d>@conf := CONFIG_X`, `<d>@src := <command>`, `<d>@patch := ...`. */
export interface DriverMakEntry {
  conf?: string;
  src?: string;
  patch?: string;
}

/** Read drivers.mak (netmap's and the stand-in's): driver → its @conf, @src and @patch. */
export function parseDriversMak(text: string): Map<string, DriverMakEntry> {
  const out = new Map<string, DriverMakEntry>();
  for (const line of text.split("\n")) {
    const m = /^([^\s#@]+)@(conf|src|patch)\s*:?=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const [, driver = "", key, value = ""] = m;
    const e = out.get(driver) ?? {};
    if (key === "conf" || key === "src" || key === "patch") e[key] = value;
    out.set(driver, e);
  }
  return out;
}

/** The directory a `<d>@src` command copies the driver from: `cp -Rp <from> <d>`, else undefined. */
export function copiedFrom(src: string | undefined, driver: string): string | undefined {
  const m = /^cp\s+(?:-[A-Za-z]+\s+)*(\S+)\s+(\S+)$/.exec(src?.trim() ?? "");
  return m && m[2]?.replace(/\/$/, "") === driver ? m[1] : undefined;
}

/**
 * Where netmap's old layout (v11.0: no configure, so no drivers.mak) copies a driver directory
 * from: the kernel tree of the make arguments, `SRC=` else `KSRC=`, the first directory named
 * `driver` under its drivers/net (drivers/net/e1000 before 3.2, drivers/net/ethernet/intel/e1000
 * after). Undefined when there is none: the old make then leaves the driver out.
 */
export function legacyDriverSource(makeArgs: readonly string[], driver: string): string | undefined {
  const arg = (k: string) => makeArgs.find((a) => a.startsWith(`${k}=`))?.slice(k.length + 1);
  const tree = arg("SRC") ?? arg("KSRC");
  if (!tree || driver.endsWith(".c")) return undefined;
  let level = [join(tree, "drivers", "net")];
  for (let depth = 0; depth < 4 && level.length > 0; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      let entries: Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        if (!e.isDirectory()) continue;
        if (e.name === driver) return join(dir, e.name);
        next.push(join(dir, e.name));
      }
    }
    level = next;
  }
  return undefined;
}

const words = (s: string | undefined): string[] => (s ?? "").split(/\s+/).filter((w) => w !== "");

/** What one kbuild directory builds, from its evaluated variables (kbuild's Makefile.lib rules). */
export function kbuildDirObjects(vars: Record<string, string>): {
  modules: Record<string, string[]>;
  subdirs: string[];
} {
  const objY = words(vars["obj-y"]);
  const objM = words(vars["obj-m"]).filter((o) => !objY.includes(o));
  const subdirs = [
    ...new Set([
      ...[...objY, ...objM].filter((o) => o.endsWith("/")).map((o) => o.replace(/\/+$/, "")),
      ...words(vars["subdir-y"]),
      ...words(vars["subdir-m"]),
    ]),
  ];
  const modules: Record<string, string[]> = {};
  for (const m of objM) {
    if (!m.endsWith(".o")) continue;
    const base = m.slice(0, -2);
    const parts = ["-objs", "-y", "-m"].flatMap((s) => words(vars[base + s]));
    const composite = parts.length > 0 || words(vars[`${base}-`]).length > 0;
    modules[base] = [...new Set(composite ? parts.filter((p) => p.endsWith(".o")) : [m])];
  }
  return { modules, subdirs };
}

/** `np-var NAME=VALUE` lines printed by the evaluation below, back into a record. */
export function parseMakeVars(stdout: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^np-var ([^=\s]+)=(.*)$/.exec(line);
    if (m?.[1] && !m[1].startsWith("-")) vars[m[1]] = (m[2] ?? "").trim();
  }
  return vars;
}

// Printed from a recipe, so after every makefile has been read; names as kbuild looks them up.
const PRINT_VARS =
  "np-print-vars: ; @: $(foreach v,$(sort $(filter obj-% subdir-% %-objs %-y %-m %-,$(.VARIABLES))),$(info np-var $(v)=$($(v))))";

/** Evaluate one kbuild makefile with GNU make, as kbuild would include it, and return its variables. */
async function evaluateKbuild(
  exec: Exec,
  dir: string,
  file: string,
  autoConf: string | undefined,
  vars: Record<string, string>,
): Promise<Record<string, string> | undefined> {
  const argv = [
    "make",
    "-s",
    "--no-print-directory",
    "-C",
    dir,
    ...(autoConf ? ["-f", autoConf] : []),
    "-f",
    file,
    `--eval=${PRINT_VARS}`,
    `src=${dir}`,
    `obj=${dir}`,
    ...Object.entries(vars).map(([k, v]) => `${k}=${v}`),
    "np-print-vars",
  ];
  const r = await exec.run(argv, { cwd: dir, reject: false });
  return r.exitCode === 0 ? parseMakeVars(r.stdout) : undefined;
}

/** The file kbuild reads in a directory: Kbuild when present, else Makefile. */
function kbuildFile(dir: string): string | undefined {
  for (const f of ["Kbuild", "Makefile"]) if (existsSync(join(dir, f))) return join(dir, f);
  return undefined;
}

// Stands in for $(MAKE) in the dry run: kbuild's external-module make is left out (it needs the
// driver copies make has not made yet, and its objects are counted from the Kbuild files).
const MAKE_WRAPPER = `#!/bin/sh
for a in "$@"; do case $a in M=*) exit 0 ;; esac; done
exec make "$@"
`;

/** User-space compiler runs of `make [args]` in dir, counted from make's own dry run. */
async function dryRunUserCompiles(exec: Exec, dir: string, args: readonly string[]): Promise<number> {
  const tmp = mkdtempSync(join(tmpdir(), "np-make-n-"));
  try {
    const wrapper = join(tmp, "make");
    writeFileSync(wrapper, MAKE_WRAPPER, { mode: 0o755 });
    const counter = createMakeProgress();
    await exec.run(["make", "-n", "-k", `MAKE=${wrapper}`, ...args], {
      cwd: dir,
      reject: false,
      onLine: (line, stream) => {
        if (stream === "stdout") counter.feed(line);
      },
    });
    return counter.snapshot().compiled;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The objects `make` in i.dir will compile (see the top of this file for what counts). */
export async function expectedObjects(i: ExpectedObjectsInput): Promise<ExpectedObjects> {
  const driversMakPath = join(i.dir, "drivers.mak");
  const driversMak = parseDriversMak(existsSync(driversMakPath) ? readFileSync(driversMakPath, "utf8") : "");
  const drivers = i.drivers ?? [...driversMak.keys()];
  const autoConfPath = join(i.kernelDir, "include", "config", "auto.conf");
  const autoConf = existsSync(autoConfPath) ? autoConfPath : undefined;
  // What netmap's make passes to kbuild: the module, each driver's CONFIG_X=m, the driver list.
  const vars: Record<string, string> = { CONFIG_NETMAP: "m" };
  for (const d of drivers) {
    const conf = driversMak.get(d)?.conf;
    if (conf && /^\w+$/.test(conf)) vars[conf] = "m";
  }
  vars.O_DRIVERS = drivers.map((d) => (d.endsWith(".c") ? `${d.slice(0, -2)}.o` : `${d}/`)).join(" ");

  const modules: Record<string, string[]> = {};
  const unresolved: string[] = [];
  const seen = new Set<string>();
  const visit = async (rel: string, readFrom: string | undefined): Promise<void> => {
    const file = readFrom ? kbuildFile(readFrom) : undefined;
    if (!readFrom || !file) {
      unresolved.push(rel || ".");
      return;
    }
    const v = await evaluateKbuild(i.exec, readFrom, file, autoConf, vars);
    if (!v) {
      unresolved.push(rel || ".");
      return;
    }
    const found = kbuildDirObjects(v);
    for (const [m, objs] of Object.entries(found.modules)) modules[rel ? `${rel}/${m}` : m] = objs;
    for (const sub of found.subdirs) {
      const subRel = rel ? `${rel}/${sub}` : sub;
      if (seen.has(subRel)) continue;
      seen.add(subRel);
      const inBuild = join(i.dir, subRel);
      let from: string | undefined;
      if (existsSync(inBuild)) from = inBuild;
      else if (!rel) {
        const src = copiedFrom(driversMak.get(sub)?.src, sub);
        if (src) from = isAbsolute(src) ? src : resolve(i.dir, src);
        else if (!driversMak.has(sub)) from = legacyDriverSource(i.makeArgs ?? [], sub);
      } else from = join(readFrom, sub);
      await visit(subRel, from);
    }
  };
  await visit("", i.dir);

  const kbuildObjects = new Set(
    Object.entries(modules).flatMap(([m, objs]) => {
      const dir = m.includes("/") ? m.slice(0, m.lastIndexOf("/") + 1) : "";
      return objs.map((o) => dir + o);
    }),
  );
  const userCompiles = await dryRunUserCompiles(i.exec, i.dir, i.makeArgs ?? []);
  return { total: kbuildObjects.size + userCompiles, modules, userCompiles, unresolved };
}

/** "netmap 14, e1000/e1000 4, 21 user-space": what the expected count is made of. */
export function describeExpected(e: ExpectedObjects): string {
  const parts = Object.entries(e.modules).map(([m, objs]) => `${m} ${objs.length}`);
  parts.push(`${e.userCompiles} user-space`);
  const missing = e.unresolved.length > 0 ? `; not counted: ${e.unresolved.join(" ")}` : "";
  return `expecting ${e.total} objects (${parts.join(", ")}${missing})`;
}
