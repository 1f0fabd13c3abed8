import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { runBuild } from "../../toolkit/build/pipeline.js";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { createExec } from "../../toolkit/core/exec.js";
import { buildGuestInitramfs } from "../../toolkit/guest/initramfs.js";
import { bootGuest } from "../../toolkit/guest/qemu.js";
import { buildAndInstallKernel, type KernelBuildResult } from "../../toolkit/kernel/build-and-install.js";
import { ensureBuildSources } from "../../toolkit/kernel/sources.js";
import { parseRecipeText } from "../../toolkit/recipe/load.js";
import { kernelTestCache, linuxSource61 } from "../helpers/kernel-build.js";
import { standinDir } from "../helpers/kernel-sources.js";
import { repoRoot } from "../helpers/paths.js";

/**
 * Must hold: a small kernel from linux-source-6.1 with the guest-minimal fragment, built through
 * the toolkit (cached under .cache/kernel-test by its inputs, so reruns skip the compile), the
 * netmap stand-in built against it, and that kernel booted in the guest runner, where netmap.ko
 * and the patched e1000 load, say what netmap says, and unload.
 */

const catalog = loadDriverCatalog();
const knownDrivers = catalog.list().map((d) => d.token);
const exec = createExec();
const times: Record<string, number> = {};
let kernel: KernelBuildResult;
let stage = "";

const since = (t0: number): number => Math.round((performance.now() - t0) / 1000);

test.serial(
  "guest: the guest-minimal 6.1 kernel builds through the toolkit, e1000 as a module",
  async (t) => {
    t.timeout(40 * 60_000);
    const t0 = performance.now();
    const src = await ensureBuildSources(
      { kind: "distro", tarball: linuxSource61 },
      { cacheDir: kernelTestCache, exec },
    );
    times.sources = since(t0);
    const recipe = parseRecipeText(
      `name: kernel-guest
kernel:
  version: "${src.version}-np"
  build: true
  sources: { kind: local, path: ${src.dir} }
  config: { fragments: [guest-minimal] }
  localversion: np
netmap:
  source: { kind: local, path: ${standinDir} }
  apps: [pkt-gen]
drivers: [e1000]
`,
      "kernel-guest.yaml",
      { knownDrivers },
      repoRoot,
    );
    const t1 = performance.now();
    kernel = await buildAndInstallKernel({
      recipe,
      cacheDir: kernelTestCache,
      exec,
      driverCatalog: catalog,
      sources: { kind: "distro", tarball: linuxSource61 },
      base: { kind: "tiny" },
      jobs: 2,
    });
    times.kernelBuild = since(t1);
    t.is(kernel.release, `${src.version}-np`);
    t.true(existsSync(kernel.bootImage));
    const cfg = readFileSync(kernel.configPath, "utf8");
    t.regex(cfg, /^CONFIG_E1000=m$/m);
    t.regex(cfg, /^CONFIG_9P_FS=y$/m);
    t.regex(cfg, /^CONFIG_OVERLAY_FS=y$/m);
    t.deepEqual(kernel.warnings, []);

    // Modules into a staging root (modules_install runs depmod there); busybox beside them so the
    // initramfs builder reads everything from that one root.
    const t2 = performance.now();
    stage = join(kernelTestCache, "stage", kernel.key);
    const inst = await buildAndInstallKernel({
      recipe,
      cacheDir: kernelTestCache,
      exec,
      driverCatalog: catalog,
      sources: { kind: "distro", tarball: linuxSource61 },
      base: { kind: "tiny" },
      installRoot: stage,
    });
    times.install = since(t2);
    t.true(inst.cached, "the second call reuses the built tree");
    t.true(existsSync(join(stage, "lib/modules", kernel.release, "modules.dep")));
    t.true(existsSync(join(stage, "boot", `vmlinuz-${kernel.release}`)));
    t.log(
      `kernel ${kernel.release}: ${kernel.cached ? "cache hit" : `${kernel.compiled} objects compiled`} (${times.kernelBuild} s)`,
    );
  },
);

test.serial("guest: the stand-in builds against it and loads in that kernel booted in QEMU", async (t) => {
  t.timeout(25 * 60_000);
  if (!kernel) return t.fail("the kernel build failed");
  const t0 = performance.now();
  const recipe = parseRecipeText(
    `name: kernel-guest-netmap
kernel:
  version: "${kernel.release}"
  buildDir: ${kernel.buildDir}
  sources: { kind: local, path: ${kernel.srcDir} }
netmap:
  source: { kind: local, path: ${standinDir} }
  apps: [pkt-gen]
drivers: [e1000]
`,
    "kernel-guest-netmap.yaml",
    { knownDrivers },
    repoRoot,
  );
  const cacheDir = join(kernelTestCache, "netmap-builds");
  mkdirSync(cacheDir, { recursive: true });
  const built = await runBuild({ recipe, cacheDir, jobs: 2, offline: true }, { exec });
  if (!built.ok) throw built.error;
  times.netmapBuild = since(t0);
  const mods = built.manifest?.modules ?? [];
  const netmap = mods.find((m) => m.name === "netmap");
  const e1000 = mods.find((m) => m.name === "e1000");
  if (!netmap || !e1000 || !built.artifactsDir) return t.fail(`modules missing: ${JSON.stringify(mods)}`);
  t.true(netmap.vermagic.startsWith(`${kernel.release} `));

  const busybox = join(stage, "bin", "busybox");
  mkdirSync(join(stage, "bin"), { recursive: true });
  if (!existsSync(busybox)) copyFileSync("/bin/busybox", busybox);
  const work = mkdtempSync(join(tmpdir(), "np-kguest-"));
  const initrd = join(work, "initramfs.cpio");
  // 9p, virtio and overlay are built in: modules.builtin lists them, so the closure is empty.
  const ird = await buildGuestInitramfs(exec, { root: stage, kernelRelease: kernel.release });
  t.deepEqual(ird.modules, []);
  writeFileSync(initrd, ird.image);

  const modDir = join(stage, "lib", "modules", kernel.release);
  const ko = (m: { path: string }) => join(built.artifactsDir as string, m.path);
  // The host root has no modules for this kernel: copy them into the guest's writable overlay first.
  const script = `set -e
mkdir -p /lib/modules
cp -a ${modDir} /lib/modules/
uname -r
insmod ${ko(netmap)}
insmod ${ko(e1000)}
grep -E '^(netmap|e1000) ' /proc/modules
dmesg | grep -E 'netmap' || true
rmmod e1000
rmmod netmap
echo unloaded
`;
  const t1 = performance.now();
  const r = await bootGuest(exec, {
    kernel: kernel.bootImage,
    kernelRelease: kernel.release,
    initrd,
    nics: [{ model: "e1000", id: "n0" }],
    command: ["sh", "-c", script],
    bootTimeoutMs: 300_000,
    totalTimeoutMs: 900_000,
  });
  times.guest = since(t1);
  t.log(`guest (${r.accel}): boot ${Math.round((r.bootMs ?? 0) / 1000)} s, total ${times.guest} s`);
  t.log(`times (s): ${JSON.stringify(times)}`);
  if (r.exitCode !== 0)
    t.log(`stdout:\n${r.stdout}\nstderr:\n${r.stderr}\nserial:\n${r.serialTail.join("\n")}`);
  t.is(r.exitCode, 0);
  t.is(r.stdout.split("\n")[0], kernel.release);
  t.regex(r.stdout, /^netmap \d+ 1 e1000/m);
  t.regex(r.stdout, /run mknod \/dev\/netmap c 10 \d+ # (error|returned) 0/);
  t.regex(r.stdout, /netmap queues\/slots/);
  t.regex(r.stdout, /unloaded$/m);
});
