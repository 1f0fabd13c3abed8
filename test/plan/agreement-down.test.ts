import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import test, { type ExecutionContext } from "ava";
import { type Exec, type ExecOptions, quoteArgv } from "../../toolkit/core/exec.js";
import type { InstallStrategy } from "../../toolkit/modules/install.js";
import type { StepDescription } from "../../toolkit/runner/step.js";
import { openTransaction, stopAtStepEnv } from "../../toolkit/state/journal.js";
import { runDown } from "../../toolkit/up/down.js";
import { type DownPlan, planDown } from "../../toolkit/up/down-steps.js";
import { agreement, pattern, type RanLike } from "../helpers/agreement.js";
import { cliPath, repoRoot } from "../helpers/paths.js";
import {
  kver,
  makeSysroot,
  type Sysroot,
  type SysrootKmod,
  sha256,
  sysrootKmod,
  upOnSysroot,
} from "../modules/sysroot.js";

/*
 * The agreement test for `down` (issue 12), on the sysroot tier: after an up with the swap (the
 * stand-in netmap and e1000 installed, the stock e1000 unloaded, the patched ones loaded into the
 * sysroot's /proc/modules), down's plan is made, then runDown runs with a recording exec around
 * sysrootKmod. Both ways: every command the run passes to exec.run/start is in the plan, and
 * every planned command runs; every file change the plan names happens, and every file the run
 * changed under the sysroot and the state dir is named by the plan. `down --plan` (the CLI)
 * changes nothing and prints the same steps.
 */

/**
 * Read-only probes the run may make that are not in the plan, each with its reason. Only one:
 * `modinfo --help` asks the tool which options it has (is there -b?); resolve.ts asks once per
 * process, so here the plan asked it and the run does not.
 */
const PROBES: Array<{ is: (argv: readonly string[]) => boolean; why: string }> = [
  {
    is: (a) => a[0] === "modinfo" && a[1] === "--help",
    why: "asks modinfo whether it has -b (once per process)",
  },
];

type Ran = RanLike;

/** Every command passed to exec.run and exec.start, in order, before it runs. */
function recording(base: Exec): { exec: Exec; ran: Ran[] } {
  const ran: Ran[] = [];
  const exec: Exec = {
    dryRun: base.dryRun,
    run: (argv, o?: ExecOptions) => {
      ran.push({ argv: [...argv], cwd: o?.cwd });
      return base.run(argv, o);
    },
    start: (argv, o) => {
      ran.push({ argv: [...argv], cwd: o?.cwd });
      return base.start(argv, o);
    },
  };
  return { exec, ran };
}

/** Every file (with its sha256) and directory under the given trees, by absolute path. */
function snapshot(...dirs: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.set(p, "dir");
        walk(p);
      } else out.set(p, st.isFile() ? sha256(p) : "other");
    }
  };
  for (const d of dirs) walk(d);
  return out;
}

/**
 * What the run changes by itself that no step names, because it is the run's bookkeeping, not a
 * change to the host: the lock the run holds (removed again), the sysroot kmod's own record of
 * what it loaded and its /proc/modules (the stand-in for the kernel, written by rmmod/modprobe).
 */
const bookkeeping = (path: string, root: string, stateDir: string) =>
  path === join(root, "proc", "modules") ||
  path === join(root, "proc") ||
  path === join(dirname(root), "kmod-loaded.json") ||
  relative(stateDir, path).startsWith("lock");

/**
 * Plan down (the CLI, which must change nothing, and planDown in process: the same steps), run it
 * through a recording exec, and check both ways: commands always (and in the same order), file
 * changes when `files` (an interrupted up's undo names its file changes only in notes).
 */
async function agree(
  t: ExecutionContext,
  sr: Sysroot,
  kmod: SysrootKmod,
  name: string,
  o: { files: boolean },
): Promise<DownPlan> {
  // The plan, from the CLI (which must change nothing) and in process (the same document).
  const before = snapshot(sr.root, sr.stateDir);
  const json = execFileSync(
    process.execPath,
    [cliPath, "down", "--plan", "--json", "--root", sr.root, "--state-dir", sr.stateDir],
    { encoding: "utf8" },
  );
  const text = execFileSync(
    process.execPath,
    [cliPath, "down", "--plan", "--root", sr.root, "--state-dir", sr.stateDir],
    { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
  );
  t.deepEqual(
    snapshot(sr.root, sr.stateDir),
    before,
    "down --plan changed nothing (no lock, no journal, no state)",
  );
  const plan: DownPlan = await planDown({ root: sr.root, stateDir: sr.stateDir, exec: kmod });
  const fromCli = JSON.parse(json) as DownPlan & { ok: boolean; command: string };
  t.true(fromCli.ok);
  t.deepEqual(fromCli.steps, plan.steps, "the CLI's --plan --json is planDown");
  for (const s of plan.steps) t.true(text.includes(`[${s.id}] ${s.title}`), `--plan prints ${s.id}`);
  t.deepEqual(
    plan.steps.map((s) => s.id),
    ["recover", "unload", "restore", "reload", "check"],
  );
  if (o.files) t.log(text);

  // The run, recorded.
  const { exec, ran } = recording(kmod);
  const down = await runDown({ root: sr.root, stateDir: sr.stateDir, exec, renderer: "silent" });
  t.true(down.ok, JSON.stringify(down.error));
  const after = snapshot(sr.root, sr.stateDir);
  t.deepEqual(kmod.loaded(), { e1000: join(sr.modDir, sr.stockE1000) }, "the stock e1000 is loaded again");

  // Commands, both ways.
  const planned = plan.steps.flatMap((s) => s.commands);
  const commands = ran.filter((e) => !PROBES.some((p) => p.is(e.argv)));
  const { notPlanned, notRun } = agreement(planned, commands);
  for (const m of [...notPlanned, ...notRun]) t.fail(m);
  // Same order too: the plan lists them as the run makes them.
  t.deepEqual(
    commands.map((e) => quoteArgv(e.argv)),
    planned.map((p) => quoteArgv(p.argv)),
  );

  if (!o.files) {
    t.log(`${name}: ${commands.length} commands run, ${planned.length} planned`);
    return plan;
  }
  // Files, both ways: each planned change happened; each change under root and state is planned.
  const files = plan.steps.flatMap((s) => s.files);
  const resolveIn = (p: string) => [...after.keys(), ...before.keys()].find((k) => pattern(p).test(k));
  for (const f of files) {
    const what = `${f.action} ${f.path}${f.to ? ` -> ${f.to}` : ""}`;
    if (f.action === "delete") {
      t.true(before.has(f.path), `${what}: was there`);
      t.false(after.has(f.path), `${what}: is gone`);
    } else if (f.action === "move" && f.to) {
      t.false(after.has(f.path), `${what}: the source is gone`);
      t.is(after.get(f.to), before.get(f.path), `${what}: the very bytes are at the destination`);
    } else if (f.action === "copy" && f.to) {
      t.is(after.get(f.to), before.get(f.path), `${what}: the backup's bytes are at the destination`);
    } else if (f.action === "create") t.truthy(resolveIn(f.path), `${what}: exists after`);
    else if (f.action === "replace")
      t.true(
        [...after.keys()].some(
          (k) => pattern(f.path).test(k) && before.has(k) && before.get(k) !== after.get(k),
        ),
        `${what}: a file there has new bytes`,
      );
    else t.fail(`unexpected ${what}`);
  }
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter(
    (p) => before.get(p) !== after.get(p) && !bookkeeping(p, sr.root, sr.stateDir),
  );
  const named = (p: string) =>
    files.some((f) => pattern(f.path).test(p) || (f.to !== undefined && pattern(f.to).test(p))) ||
    (p === join(sr.stateDir, "journal") && files.some((f) => f.path.startsWith(`${p}/`)));
  for (const p of changed)
    t.true(named(p), `changed but not planned: ${p} (${before.get(p)} -> ${after.get(p)})`);
  t.log(
    `${name}: ${commands.length} commands run, ${planned.length} planned, ${ran.length - commands.length} probes; ${changed.length} paths changed, ${files.length} file changes planned`,
  );
  return plan;
}

const CASES: Array<{ strategy: InstallStrategy; compress?: "zst"; persist?: boolean; name: string }> = [
  { strategy: "updates", name: 'shadow ("updates")' },
  { strategy: "replace", name: "replace" },
  { strategy: "replace", compress: "zst", persist: true, name: "replace, stock .ko.zst, persisted" },
];

for (const c of CASES)
  test(`down after an up with the swap (${c.name}): what runs is what down --plan prints, both ways`, async (t) => {
    const sr = makeSysroot(c.compress ? { compress: c.compress } : {});
    t.teardown(() => rmSync(dirname(sr.root), { recursive: true, force: true }));
    const kmod = sysrootKmod(sr.root);
    await upOnSysroot(sr, {
      strategy: c.strategy,
      swap: true,
      exec: kmod,
      ...(c.persist ? { persist: true } : {}),
    });
    t.deepEqual(
      Object.keys(kmod.loaded()).sort(),
      ["e1000", "netmap"],
      "the up left the patched modules loaded",
    );
    const plan = await agree(t, sr, kmod, c.name, { files: true });
    const step = (id: string) => plan.steps.find((s) => s.id === id) as StepDescription;
    t.deepEqual(
      step("unload").commands.map((x) => x.argv),
      [
        ["rmmod", "e1000"],
        ["rmmod", "netmap"],
      ],
      "the patched driver, then netmap",
    );
    t.deepEqual(
      step("reload").commands.map((x) => x.argv),
      [["modprobe", "e1000"]],
    );
  });

test("an interrupted down (its journal open, nothing done yet): recover finishes the restore, as planned, both ways", async (t) => {
  const sr = makeSysroot();
  t.teardown(() => rmSync(dirname(sr.root), { recursive: true, force: true }));
  const kmod = sysrootKmod(sr.root);
  await upOnSysroot(sr, { strategy: "replace", swap: true, exec: kmod });
  openTransaction(sr.stateDir, "down", { root: sr.root, kver }); // killed right after it opened
  const plan = await agree(t, sr, kmod, "interrupted down", { files: true });
  const step = (id: string) => plan.steps.find((s) => s.id === id) as StepDescription;
  t.true(
    step("recover").commands.some((c) => c.argv[0] === "depmod"),
    "recover runs the restore",
  );
  t.deepEqual(step("restore").commands, [], "and restore finds nothing left to do");
});

/*
 * An up with the swap killed at every journaled step (the crash child of test/modules), then down:
 * the recover step undoes the interrupted up (rmmod what it loaded, depmod, modprobe what it
 * unloaded). Commands both ways; the undo's file changes are named only in notes (the undo table
 * decides them when it runs), so files are not compared here.
 */
const child = join(repoRoot, "dist", "test", "modules", "crash-child.js");
for (const strategy of ["updates", "replace"] as const)
  test(`an up with the swap (${strategy}) killed at every journaled step, then down: what runs is what down --plan prints`, async (t) => {
    const sr0 = makeSysroot();
    t.teardown(() => rmSync(dirname(sr0.root), { recursive: true, force: true }));
    const kmod = sysrootKmod(sr0.root);
    await kmod.run(["modprobe", "e1000"]); // the host as it boots: the stock driver loaded
    let crashed = 0;
    for (let step = 1; step < 100; step++) {
      const sr = { ...sr0, stateDir: `${sr0.stateDir}-${step}` };
      const env = { ...process.env, [stopAtStepEnv]: String(step) };
      const r = spawnSync(
        process.execPath,
        [child, JSON.stringify({ mode: "up-swap", root: sr.root, stateDir: sr.stateDir, strategy })],
        { env, encoding: "utf8" },
      );
      if (r.signal !== "SIGKILL") {
        t.is(r.status, 0, r.stderr);
        await agree(t, sr, kmod, `${strategy}, not killed (${step - 1} steps)`, { files: true });
        break;
      }
      crashed++;
      const plan = await agree(t, sr, kmod, `${strategy}, killed at step ${step}`, { files: false });
      t.is(plan.pending?.kind, "up");
    }
    t.true(crashed >= 5, `only ${crashed} journaled steps`);
  });
