import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeBundle } from "../build/bundle.js";
import { runBuild } from "../build/pipeline.js";
import { BlockedError, UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { projectRoot } from "../core/paths.js";
import { bootGuest, type GuestNic, type GuestResult, GuestTimeoutError } from "../guest/qemu.js";
import type { RecipeRunFlags, RunRecipe } from "../recipe/run-recipe.js";
import { readPayloadResults } from "./guest-results.js";
import { chooseTryKernel } from "./try-kernel.js";
import { assembleReport, type TryReport } from "./try-report.js";

export interface TryOptions {
  run: RunRecipe;
  /** The recipe flags as given, passed on to `up` in the guest (which sees the host's files). */
  recipeFlags?: RecipeRunFlags;
  exec: Exec;
  /** A bzImage to boot instead of the host's kernel for the recipe's release. */
  kernelFile?: string;
  /** QEMU NIC models; default: each recipe driver's catalog qemuNic. */
  nics?: string[];
  memoryMb?: number;
  /** The whole guest run, QEMU start to power-off. */
  timeoutMs: number;
  /** Keep the guest's files (bundle, JSON documents, serial log) even when everything passed. */
  keep?: boolean;
  /** Build progress on the terminal ("auto") or nothing ("silent", for --json). */
  renderer?: "auto" | "silent";
  /** Progress lines for a human (stderr); not called in --json mode. */
  progress?: (line: string) => void;
  /** Test-only: the guest payload hangs instead of running, to exercise the timeout path. */
  testHang?: boolean;
  /** Keep the guest's whole module tree for depmod (minutes under TCG) instead of trimming it. */
  fullModuleTree?: boolean;
}

/** The payload script: product code shipped with the toolkit, copied into the shared directory. */
const payloadScript = (): string => join(projectRoot(), "toolkit", "try", "guest-payload.sh");
/** This toolkit's CLI entry, which the guest runs from the host root it sees read-only. */
const cliEntry = (): string => join(dirname(fileURLToPath(import.meta.url)), "..", "cli", "main.js");

/** The drivers to rehearse and the NICs that exercise them. */
function driversAndNics(o: TryOptions): { drivers: string[]; nics: string[]; notes: string[] } {
  const { recipe, catalog } = o.run;
  const notes: string[] = [];
  let drivers: string[];
  if (recipe.drivers === "auto") {
    // "auto" means the NICs of the host `up` runs on; in the guest those are the NICs we give it.
    if (o.nics && o.nics.length > 0) {
      drivers = catalog
        .list()
        .filter((d) => d.qemuNic !== null && o.nics?.includes(d.qemuNic))
        .map((d) => d.token);
    } else {
      drivers = ["e1000"];
      notes.push(
        "the recipe says drivers: auto; rehearsing e1000 (QEMU's e1000 NIC): pass --drivers or --nic",
      );
    }
  } else drivers = [...recipe.drivers];
  let nics = o.nics ?? [];
  if (nics.length === 0) {
    for (const d of drivers) {
      const model = catalog.get(d).qemuNic;
      if (model) nics.push(model);
      else notes.push(`no QEMU NIC model drives ${d}: it is built and loaded, but no interface uses it`);
    }
    nics = [...new Set(nics)];
  }
  if (nics.length === 0) {
    throw new UserError(
      `no QEMU NIC exercises any of the drivers ${drivers.join(", ")}`,
      "pass --nic <model> (e1000, e1000e, virtio-net-pci, ...) to give the guest a NIC",
    );
  }
  return { drivers, nics, notes };
}

/** `up` arguments that make the guest plan the same run the host built: same recipe, same drivers. */
function upArgs(flags: RecipeRunFlags | undefined, drivers: string[]): string[] {
  const args = ["--drivers", drivers.join(",")];
  if (flags?.recipe) args.push("--recipe", resolve(flags.recipe));
  if (flags?.netmapSource) args.push("--netmap-source", resolve(flags.netmapSource));
  if (flags?.kernelDir) args.push("--kernel-dir", resolve(flags.kernelDir));
  if (flags?.kernelSources) args.push("--kernel-sources", resolve(flags.kernelSources));
  return args;
}

/**
 * Rehearse `up`, `status` and `down` in a throwaway guest: build on the host (or hit the cache)
 * for the guest kernel's release, bundle it, boot one guest with the chosen NICs, run the
 * payload, and assemble the report. The host is never changed beyond the build cache.
 */
export async function runTry(o: TryOptions): Promise<TryReport> {
  const { run } = o;
  const kernel = chooseTryKernel({
    root: run.root,
    recipe: run.recipe,
    ...(o.kernelFile ? { kernelFile: o.kernelFile } : {}),
  });
  const { drivers, nics, notes } = driversAndNics(o);
  const recipe = { ...run.recipe, drivers };
  const cli = cliEntry();
  // The guest mounts a fresh tmpfs on /run: a toolkit living there is invisible inside.
  if (/^\/run(\/|$)/.test(cli)) {
    throw new BlockedError(
      `the toolkit at ${cli} is under /run, which the guest replaces with an empty tmpfs`,
      "install or check out netmap-provision elsewhere (e.g. /opt or your home directory)",
    );
  }

  o.progress?.(`building for ${kernel.release} (or reusing the cache)`);
  const buildStarted = performance.now();
  const built = await runBuild(
    { recipe, cacheDir: run.cacheDir, release: kernel.release, root: run.root, catalog: run.catalog },
    { exec: o.exec, renderer: o.renderer ?? "silent" },
  );
  if (!built.ok || !built.manifest || !built.artifactsDir) throw built.error;
  const buildMs = Math.round(performance.now() - buildStarted);

  const work = mkdtempSync(join(tmpdir(), "np-try-"));
  const xferDir = join(work, "xfer");
  const serialLog = join(work, "serial.log");
  mkdirSync(xferDir, { recursive: true });
  let keep = o.keep === true;
  try {
    await writeBundle({
      file: join(xferDir, "bundle.tar"),
      artifactsDir: built.artifactsDir,
      manifest: built.manifest,
      recipe,
      exec: o.exec,
    });
    copyFileSync(payloadScript(), join(xferDir, "payload.sh"));
    const guestNics: GuestNic[] = nics.map((model, i) => ({ model, id: `n${i}` }));
    o.progress?.(
      `booting ${kernel.release} with ${nics.join(", ")} (under TCG a run takes a minute or so; limit ${Math.round(o.timeoutMs / 1000)} s)`,
    );
    let guest: GuestResult;
    try {
      guest = await bootGuest(o.exec, {
        command: [
          "sh",
          "/xfer/payload.sh",
          process.execPath,
          cli,
          "/xfer/bundle.tar",
          ...upArgs(o.recipeFlags, drivers),
        ],
        kernel: kernel.image,
        kernelRelease: kernel.release,
        nics: guestNics,
        memoryMb: o.memoryMb ?? 1024,
        accel: "auto",
        bootTimeoutMs: Math.min(180_000, o.timeoutMs),
        totalTimeoutMs: o.timeoutMs,
        xferDir,
        serialLog,
        root: run.root,
        env: {
          ...(o.testHang ? { NP_TRY_TEST_HANG: "1" } : {}),
          ...(o.fullModuleTree ? { NP_TRY_FULL_MODULES: "1" } : {}),
        },
      });
    } catch (e) {
      if (!(e instanceof GuestTimeoutError)) {
        keep = true;
        throw e;
      }
      guest = e.result;
    }
    const report = assembleReport({
      kernel,
      accel: { accel: guest.accel, reason: guest.accelReason },
      nics,
      build: { cacheHit: built.cacheHit, key: built.key, durationMs: buildMs },
      guest: {
        bootMs: guest.bootMs ?? null,
        durationMs: guest.durationMs,
        timedOut: guest.timedOut,
        serialTail: guest.timedOut ? guest.serialTail : [],
        serialLog: guest.timedOut || keep ? serialLog : null,
      },
      results: readPayloadResults(xferDir),
      kept: null,
      notes,
    });
    if (!report.ok) keep = true;
    if (keep) {
      report.kept = work;
      report.guest.serialLog = serialLog;
    }
    return report;
  } finally {
    if (!keep) rmSync(work, { recursive: true, force: true });
  }
}
