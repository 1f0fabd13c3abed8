import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { Plan } from "../../toolkit/plan/plan.js";
import { copyHostTree } from "../helpers/hosts.js";
import { cliPath, fixture, repoRoot } from "../helpers/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "np-plan-"));
const dirs = ["--cache-dir", join(scratch, "cache"), "--state-dir", join(scratch, "state")];

function plan(args: string[]): { code: number; plan: Plan; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, "plan", "--json", ...dirs, ...args], {
    encoding: "utf8",
    cwd: repoRoot,
  });
  return { code: r.status ?? -1, plan: JSON.parse(r.stdout) as Plan, stderr: r.stderr };
}
const treeHash = (dir: string) =>
  execFileSync(
    "sh",
    ["-c", "find . -type f -exec sha256sum {} + | sort; find . -type l -printf '%p -> %l\\n' | sort"],
    { cwd: dir, encoding: "utf8" },
  );
const ids = (p: Plan) => p.steps.map((s) => s.id);
const argvs = (p: Plan, id: string) =>
  (p.steps.find((s) => s.id === id)?.commands ?? []).map((c) => c.argv.join(" "));

test("seed recipe: the 2012 procedure, step by step", (t) => {
  const { plan: p, code } = plan([
    "--recipe",
    "recipes/seed-2.6.37-e1000.yaml",
    "--root",
    fixture("hosts", "debian12-e1000"),
  ]);
  t.is(p.targetRelease, "2.6.37");
  t.true(p.buildsKernel);
  t.deepEqual(ids(p).slice(0, 6), [
    "preflight",
    "kernel-fetch",
    "kernel-config",
    "kernel-build",
    "kernel-install",
    "reboot",
  ]);
  const fetch = p.steps.find((s) => s.id === "kernel-fetch");
  t.regex(JSON.stringify(fetch), /linux-2\.6\.37\.tar/);
  // The base config is written by the toolkit itself (no `cp` runs): a file copy in the plan.
  const base = p.steps.find((s) => s.id === "kernel-config")?.files[0];
  t.is(base?.action, "copy");
  t.is(base?.path, "/boot/config-6.1.0-56-amd64");
  t.regex(base?.to ?? "", /kernel-build\/2\.6\.37-[0-9a-f]{16}\/\.config$/);
  t.true(argvs(p, "kernel-config").some((a) => a.endsWith("--module E1000")));
  t.true(argvs(p, "kernel-build").some((a) => /^make -j\d+ O=\S+ bzImage modules$/.test(a)));
  t.deepEqual(
    argvs(p, "kernel-install")
      .slice(0, 2)
      .map((a) => a.replace(/O=\S+ /, "")),
    ["make INSTALL_MOD_PATH=/ INSTALL_MOD_STRIP=1 modules_install", "make INSTALL_PATH=/boot install"],
  );
  // netmap of that era: no configure, make KSRC=, netmap_lin.ko, apps.
  t.false(ids(p).includes("configure"));
  t.true(argvs(p, "netmap-build")[0]?.startsWith("make KSRC="));
  t.true(argvs(p, "netmap-build")[1]?.endsWith(" apps"));
  t.regex(JSON.stringify(p.steps.find((s) => s.id === "netmap-build")?.files), /netmap_lin\.ko/);
  // e1000 backed up, then moved aside to e1000.ko-bak, as the walkthrough did.
  const backup = p.steps.find((s) => s.id === "install")?.files.find((f) => f.action === "backup");
  t.is(backup?.path, "/lib/modules/2.6.37/kernel/drivers/net/e1000/e1000.ko");
  const moved = p.steps.find((s) => s.id === "install")?.files.find((f) => f.action === "move");
  t.is(moved?.to, "/lib/modules/2.6.37/kernel/drivers/net/e1000/e1000.ko-bak");
  t.deepEqual(
    argvs(p, "swap").filter((a) => /^(rmmod|modprobe) /.test(a)),
    ["rmmod e1000", "modprobe netmap_lin", "modprobe e1000"],
  );
  t.true(
    p.steps.find((s) => s.id === "verify")?.checks.some((c) => c.includes("run mknod /dev/netmap c 10")),
  );
  // gcc 12 cannot build 2.6.37: the plan is printed all the same, blocked, exit 4.
  t.true(p.blockers.some((b) => b.id === "compiler"));
  t.is(code, 4);
});

test("default recipe on a Debian 12 host: configure with --fail-on-driver-errors, install under updates/", (t) => {
  const { plan: p } = plan(["--root", fixture("hosts", "debian12-e1000"), "--allow-management"]);
  t.is(p.targetVersion, "6.1.192");
  const configure = p.steps.find((s) => s.id === "configure")?.commands[0]?.argv ?? [];
  t.true(configure.includes("--fail-on-driver-errors"));
  t.true(configure.includes("--drivers=e1000"));
  const install = p.steps.find((s) => s.id === "install");
  t.true(install?.files.some((f) => f.path === "/lib/modules/6.1.0-56-amd64/updates/netmap/e1000.ko"));
  t.true(p.warnings.some((w) => w.includes("dead-man timer")));
});

test("the management interface on the driver to swap blocks the plan unless allowed", (t) => {
  const root = fixture("hosts", "mgmt-on-swapped-driver");
  const refused = plan(["--root", root]);
  t.is(refused.code, 4);
  t.true(refused.plan.blockers.some((b) => b.id === "management" && b.message.includes("eth0")));
  const allowed = plan(["--root", root, "--allow-management"]);
  t.false(allowed.plan.blockers.some((b) => b.id === "management"));
});

test("Secure Boot and missing sources become blockers with a fix", (t) => {
  const sb = plan(["--root", fixture("hosts", "secure-boot"), "--allow-management"]).plan;
  t.true(sb.blockers.some((b) => /Secure Boot/.test(b.message) && /mokutil/.test(b.fix)));
  const nosrc = plan(["--root", fixture("hosts", "headers-no-sources"), "--allow-management"]).plan;
  t.true(nosrc.blockers.some((b) => b.id === "kernel-sources"));
});

test("a driver without native support blocks unless emulated mode is accepted", (t) => {
  const { plan: p, code } = plan([
    "--root",
    fixture("hosts", "debian12-e1000"),
    "--allow-management",
    "--drivers",
    "e1000,r8169.c",
  ]);
  t.is(p.drivers.find((d) => d.token === "r8169.c")?.mode, "unsupported");
  t.true(p.blockers.some((b) => b.id === "driver-r8169.c" && b.fix.includes("emulatedOk")));
  t.is(code, 4);
});

test("plan changes nothing on the host tree", (t) => {
  const root = fixture("hosts", "debian12-e1000");
  const before = treeHash(root);
  plan(["--root", root]);
  t.is(treeHash(root), before);
});

test("modules.persist: the plan regenerates the host's initramfs after verify, or blocks on a missing generator", (t) => {
  const host = copyHostTree("debian12-e1000");
  mkdirSync(join(host, "boot"), { recursive: true });
  writeFileSync(join(host, "boot", "initrd.img-6.1.0-56-amd64"), "");
  writeFileSync(join(host, "usr", "sbin", "update-initramfs"), "");
  const recipe = join(scratch, "persist.yaml");
  writeFileSync(
    recipe,
    `name: persist\nnetmap: {source: {kind: local, path: /nowhere}}\ndrivers: [e1000]\nmodules: {persist: true}\n`,
  );
  const { plan: p } = plan(["--recipe", recipe, "--root", host, "--allow-management"]);
  const order = ids(p);
  t.true(order.indexOf("persist") > order.indexOf("verify"), order.join(" "));
  t.deepEqual(argvs(p, "persist"), [
    "update-initramfs -u -k 6.1.0-56-amd64",
    `unmkinitramfs /boot/initrd.img-6.1.0-56-amd64 ${join(tmpdir(), "np-initramfs-<tmp>")}`,
  ]);
  t.deepEqual(
    p.steps.find((s) => s.id === "persist")?.files.map((f) => `${f.action} ${f.path}`),
    [
      "create /etc/modules-load.d/netmap-provision.conf",
      "backup /boot/initrd.img-6.1.0-56-amd64",
      "replace /boot/initrd.img-6.1.0-56-amd64",
    ],
  );
  writeFileSync(
    recipe,
    `name: persist\nnetmap: {source: {kind: local, path: /nowhere}}\ndrivers: [e1000]\nmodules: {persist: true, initramfs: dracut}\n`,
  );
  const blocked = plan(["--recipe", recipe, "--root", host, "--allow-management"]);
  t.is(blocked.code, 4);
  t.true(
    blocked.plan.blockers.some((b) => b.id === "initramfs" && /dracut is not installed/.test(b.message)),
  );
});

test("kernel.install deb: the plan packages the kernel with bindeb-pkg and installs it with dpkg -i", (t) => {
  const recipe = join(scratch, "seed-deb.yaml");
  writeFileSync(
    recipe,
    readFileSync(join(repoRoot, "recipes", "seed-2.6.37-e1000.yaml"), "utf8").replace(
      "  build: true\n",
      "  build: true\n  install: deb\n",
    ),
  );
  const { plan: p } = plan(["--recipe", recipe, "--root", fixture("hosts", "debian12-e1000")]);
  const cmds = argvs(p, "kernel-install").map((a) => a.replace(/O=\S+ /, ""));
  t.regex(cmds[0] ?? "", /^make -j\d+ bindeb-pkg$/);
  t.regex(cmds[1] ?? "", /^dpkg -i \S+\/debs\/linux-image-2\.6\.37_<version>_amd64\.deb$/);
  t.regex(cmds[2] ?? "", /^grub-reboot /);
  t.true(
    p.steps
      .find((s) => s.id === "kernel-install")
      ?.notes?.some((n) => /apt remove linux-image-2\.6\.37/.test(n)),
  );
});

test("plan --from <bundle> (what up --from plans): no fetch, configure or make, no sources blocker", (t) => {
  const host = fixture("hosts", "headers-no-sources");
  const recipe = join(scratch, "from.yaml");
  writeFileSync(
    recipe,
    `name: from\nnetmap:\n  source: {kind: git, url: "https://github.com/luigirizzo/netmap", commit: 89607e1406c1fa5ac2106bd2ff33417f090c0d60}\ndrivers: [e1000]\n`,
  );
  const bundle = join(scratch, "bundle.tar");
  writeFileSync(bundle, "");
  const built = plan(["--recipe", recipe, "--root", host, "--allow-management"]);
  t.true(built.plan.blockers.some((b) => b.id === "kernel-sources"));
  const from = plan(["--recipe", recipe, "--root", host, "--allow-management", "--from", bundle]);
  t.is(from.code, 0, from.stderr);
  t.deepEqual(from.plan.blockers, []);
  const order = ids(from.plan);
  for (const gone of ["netmap-source", "kernel-sources", "configure", "make", "manifest"])
    t.false(order.includes(gone), order.join(" "));
  t.deepEqual(order.slice(0, 3), ["preflight", "bundle", "install"]);
  t.deepEqual(from.plan.steps.find((s) => s.id === "install")?.dependsOn, ["bundle"]);
  t.true(argvs(from.plan, "swap").includes("modprobe e1000"));
});

test("plan shows git and tar as they run: URL after --, a checked-out resolved commit, tar --force-local", (t) => {
  const recipe = join(scratch, "git.yaml");
  writeFileSync(
    recipe,
    `name: git\nnetmap:\n  source: {kind: git, url: "https://user:s3cret@example.org/netmap.git", commit: 89607e1406c1fa5ac2106bd2ff33417f090c0d60}\n`,
  );
  const { plan: p } = plan([
    "--recipe",
    recipe,
    "--root",
    fixture("hosts", "secure-boot"),
    "--allow-management",
  ]);
  const git = argvs(p, "netmap-source");
  t.true(
    git.includes(
      "git fetch --quiet --depth 1 -- https://user:***@example.org/netmap.git 89607e1406c1fa5ac2106bd2ff33417f090c0d60",
    ),
    git.join("\n"),
  );
  t.true(git.includes("git checkout --quiet --detach <commit> --"), git.join("\n"));
  t.false(JSON.stringify(p).includes("s3cret"));
  const tar = argvs(p, "kernel-sources")[0] ?? "";
  t.regex(
    tar,
    /^tar --force-local -xf \S+linux-source-6\.1\.tar\.xz --strip-components=1 -C \S+\/kernel-sources\/6\.1\.\d+$/,
  );
});

test("a kernel-building recipe with localversion: plan names the release the build produces (np and -np alike)", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "np-plan-lv-"));
  for (const lv of ["np", "-np"]) {
    const file = join(dir, `lv${lv}.yaml`);
    writeFileSync(
      file,
      [
        "name: lv",
        "kernel:",
        '  version: "6.1.192"',
        "  build: true",
        `  localversion: "${lv}"`,
        `  sources: {kind: kernelorg, version: "6.1.192", sha256: "${"0".repeat(64)}"}`,
        "netmap:",
        "  source: {kind: git, url: https://github.com/luigirizzo/netmap, commit: 89607e1406c1fa5ac2106bd2ff33417f090c0d60}",
        "drivers: [e1000]",
      ].join("\n"),
    );
    const { plan: p } = plan(["--recipe", file, "--root", fixture("hosts", "debian12-e1000")]);
    // kernel/config.ts sets CONFIG_LOCALVERSION to localversionSuffix(): one "-", LOCALVERSION_AUTO off.
    t.is(p.targetRelease, "6.1.192-np", lv);
    t.true(
      argvs(p, "kernel-config").some((a) =>
        a.endsWith("--set-str LOCALVERSION -np --disable LOCALVERSION_AUTO"),
      ),
      argvs(p, "kernel-config").join("\n"),
    );
    t.true(argvs(p, "kernel-install").some((a) => a.endsWith("Debian GNU/Linux, with Linux 6.1.192-np")));
  }
});
