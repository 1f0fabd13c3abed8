import { readdirSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { hostileCase, runCli, type Scratch, scratch } from "../helpers/hostile.js";
import { hostTree, removeKernelHeaders } from "../helpers/hosts.js";

/**
 * Hostile-input corpus, terminal control characters and wrong facts (issue 11, points 5 and 6):
 * an interface name, an os-release or a recipe carrying ESC/BEL sequences must reach the
 * terminal escaped; a Debian host without headers must not be taken for kernel 12.2.0 (gcc's
 * version in /proc/version); a garbage /proc/net/route must not pass the management guard; the
 * shipped recipes must not be blocked on every host by their unpinned external drivers.
 */

const ESC_IF = "eth\u001b]0;pwned\u0007";
const ESC_IF_SHOWN = "eth\\x1b]0;pwned\\x07";
const RAW = { test: (s: string): boolean => s.includes("\u001b") || s.includes("\u0007") };

const dirs = (s: Scratch) => ["--cache-dir", s.cache, "--state-dir", s.state];

/** Rename the scratch host's eth0 (sysfs and the route table) to `to`, as `ip link set name` would. */
function renameEth0(s: Scratch, to: string): void {
  const dev = join(s.host, "sys/devices/pci0000:00/0000:00:03.0/net");
  renameSync(join(dev, "eth0"), join(dev, to));
  unlinkSync(join(s.host, "sys/class/net/eth0"));
  symlinkSync(`../../devices/pci0000:00/0000:00:03.0/net/${to}`, join(s.host, "sys/class/net", to));
  const route = join(s.host, "proc/net/route");
  writeFileSync(route, readFileSync(route, "utf8").replaceAll("\neth0\t", `\n${to}\t`));
}

/** A human run's whole output holds no raw ESC or BEL. */
function noRawControl(t: ExecutionContext, r: { stdout: string; stderr: string }): void {
  t.false(RAW.test(r.stdout), `raw control character on stdout:\n${JSON.stringify(r.stdout.slice(0, 600))}`);
  t.false(RAW.test(r.stderr), `raw control character on stderr:\n${JSON.stringify(r.stderr.slice(0, 600))}`);
}

// --- control characters from outside -----------------------------------------------------------

test("an interface named with ESC/BEL and an os-release with ESC sequences: doctor and status escape them", async (t) => {
  const s = scratch(t);
  renameEth0(s, ESC_IF);
  writeFileSync(
    join(s.host, "etc/os-release"),
    'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian \u001b]0;owned\u0007GNU/Linux 12 \u001b[2J\u001b[8m"\n',
  );
  const doctor = await hostileCase(t, s, { args: ["doctor", "--root", s.host], exit: 0 });
  noRawControl(t, doctor);
  t.true(doctor.stdout.includes(`NIC ${ESC_IF_SHOWN}`), doctor.stdout);
  t.true(doctor.stdout.includes("Debian \\x1b]0;owned\\x07GNU/Linux 12 \\x1b[2J\\x1b[8m"), doctor.stdout);
  // The management guard still sees the renamed NIC as the default route's.
  t.regex(doctor.stdout, /WARN {4}Management link +eth\\x1b\]0;pwned\\x07 \(default route\) is on e1000/);
  const status = await hostileCase(t, s, {
    args: ["status", "--root", s.host, "--state-dir", s.state],
    exit: 0,
  });
  noRawControl(t, status);
  t.true(status.stdout.includes(ESC_IF_SHOWN), status.stdout);
  for (const cmd of [["doctor"], ["status", "--state-dir", s.state]]) {
    const j = await hostileCase(t, s, { args: [...cmd, "--json", "--root", s.host], exit: 0 });
    t.false(RAW.test(j.stdout), "JSON.stringify escapes control characters");
    t.true(JSON.stringify(j.json).includes(JSON.stringify(ESC_IF_SHOWN).slice(1, -1)));
  }
});

test("a recipe string with ESC/BEL: validate, show and plan print it escaped", async (t) => {
  const s = scratch(t);
  const bad = s.input("esc-driver.yaml");
  writeFileSync(
    bad,
    'name: t\nnetmap:\n  source: {kind: local, path: /tmp}\ndrivers: ["e1000\\e]0;pwned\\a\\e[2J"]\n',
  );
  for (const args of [
    ["recipe", "validate", bad],
    ["recipe", "show", bad],
    ["plan", "--recipe", bad, "--root", s.host, ...dirs(s)],
  ]) {
    const r = await hostileCase(t, s, {
      args,
      exit: 2,
      message: /esc-driver\.yaml:4:\d+: .*e1000\\x1b\]0;pwned\\x07/,
    });
    noRawControl(t, r);
  }
  const described = s.input("esc-description.yaml");
  writeFileSync(
    described,
    'name: t\ndescription: "pwn \\e]0;pwned\\a \\e[2J"\nnetmap:\n  source: {kind: local, path: /tmp}\n',
  );
  const show = await hostileCase(t, s, { args: ["recipe", "show", described], exit: 0 });
  noRawControl(t, show);
  t.regex(show.stdout, /^description: .*pwn .*\]0;pwned/m);
});

// --- wrong facts ---------------------------------------------------------------------------------

test("a Debian host without headers: kernel 6.1.192 (not gcc's 12.2.0) and linux-source-6.1 (not 12.2)", async (t) => {
  const s = scratch(t);
  removeKernelHeaders(s.host);
  t.regex(readFileSync(join(s.host, "proc/version"), "utf8"), /\(gcc-12 \(Debian 12\.2\.0/);
  const r = await hostileCase(t, s, {
    args: ["doctor", "--json", "--root", s.host],
    exit: 4,
    message: /`up` would refuse: Kernel headers \(build dir\)/,
  });
  const checks = (r.json as { checks: Array<{ id: string; found: string; fix?: string }> }).checks;
  const byId = (id: string) => checks.find((c) => c.id === id);
  t.regex(byId("kernel")?.found ?? "", /version 6\.1\.192 \(from proc-version\)/);
  t.regex(byId("sources")?.fix ?? "", /^apt-get install linux-source-6\.1 /);
  t.false(JSON.stringify(checks).includes("12.2"), "nothing names gcc's version as the kernel's");
});

test("a garbage /proc/net/route: the management guard refuses (plan exit 4) and doctor warns", async (t) => {
  for (const garbage of ["garbage\n\u001b[2J\n", "", "Iface\tDestination\tGateway \tFlags\neth0 zz yy\n"]) {
    const s = scratch(t);
    writeFileSync(join(s.host, "proc/net/route"), garbage);
    const plan = await hostileCase(t, s, {
      args: ["plan", "--json", "--root", s.host, ...dirs(s)],
      exit: 4,
      message: /cannot tell which NIC carries the management link: \/proc\/net\/route .*eth0 may carry it/,
    });
    t.true(
      (plan.json as { blockers: Array<{ id: string }> }).blockers.some((b) => b.id === "management"),
      plan.stdout,
    );
    const doctor = await hostileCase(t, s, { args: ["doctor", "--root", s.host], exit: 0 });
    noRawControl(t, doctor);
    t.regex(doctor.stdout, /WARN {4}Management link +cannot tell which NIC carries the management link/);
    // With --allow-management the plan goes on, under the dead-man timer.
    await hostileCase(t, s, {
      args: ["plan", "--json", "--allow-management", "--root", s.host, ...dirs(s)],
      exit: 0,
    });
  }
});

const hosts = readdirSync(join(hostTree("debian12-e1000"), ".."), { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== "README.md")
  .map((d) => d.name);

for (const recipe of ["debian-12", "ubuntu-24.04"])
  test(`shipped ${recipe}.yaml: no fixture host is blocked by its unpinned external drivers`, async (t) => {
    const file = join("recipes", `${recipe}.yaml`);
    for (const host of hosts) {
      const s = scratch(t, { host });
      // Each host may have blockers of its own (Secure Boot, the management link...), never ext-*.
      const r = await hostileCase(t, s, {
        args: ["plan", "--json", "--recipe", file, "--root", s.host, ...dirs(s)],
        exit: 4,
      });
      const plan = r.json as {
        blockers: Array<{ id: string; message: string }>;
        warnings: string[];
        drivers: Array<{ token: string; mode: string }>;
      };
      t.deepEqual(
        plan.blockers.filter((b) => /^ext-|external driver/.test(`${b.id} ${b.message}`)),
        [],
        `${recipe} on ${host}`,
      );
      for (const token of ["e1000e", "igb", "ixgbe"]) {
        t.is(plan.drivers.find((d) => d.token === token)?.mode, "emulated", `${token} on ${host}`);
        t.true(
          plan.warnings.some(
            (w) => w.includes(`netmap.extDrivers.${token}.sha256`) && w.includes("`sha256sum`"),
          ),
          `${recipe} on ${host}: a warning says how to pin ${token}`,
        );
      }
      // doctor judges the host against the recipe's drivers: exit 0 or 4 by the host, never for an archive.
      const doctor = await runCli(s, ["doctor", "--json", "--recipe", file, "--root", s.host]);
      t.true(doctor.exitCode === 0 || doctor.exitCode === 4, `${host}: exit ${doctor.exitCode}`);
      t.like(doctor.json, { ok: doctor.exitCode === 0, command: "doctor" });
      t.notRegex(JSON.stringify(doctor.json), /pinned sha256|extDrivers/, `${recipe} on ${host}: doctor`);
    }
  });
