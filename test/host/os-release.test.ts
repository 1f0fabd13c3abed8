import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { distroFamily, parseOsRelease, readOsRelease } from "../../toolkit/host/os-release.js";
import { hostTree } from "../helpers/hosts.js";

test("reads the fixture's Debian 12 os-release", (t) => {
  t.deepEqual(readOsRelease(hostTree("debian12-e1000")), {
    id: "debian",
    versionId: "12",
    prettyName: "Debian GNU/Linux 12 (bookworm)",
    family: "debian",
    source: "/etc/os-release",
  });
});

test("parses quoting and escapes; comments and junk are skipped", (t) => {
  const kv = parseOsRelease(
    '# c\nID=ubuntu\nPRETTY_NAME="Ubuntu \\"24.04\\" LTS"\nNAME=\'x y\'\nnot a line\n',
  );
  t.is(kv.ID, "ubuntu");
  t.is(kv.PRETTY_NAME, 'Ubuntu "24.04" LTS');
  t.is(kv.NAME, "x y");
});

test("family comes from ID, then ID_LIKE", (t) => {
  t.is(distroFamily("ubuntu", "debian"), "debian");
  t.is(distroFamily("rocky", "rhel centos fedora"), "rhel");
  t.is(distroFamily("garuda", "arch"), "arch");
  t.is(distroFamily("opensuse-leap", "suse opensuse"), "suse");
  t.is(distroFamily("nixos", ""), "other");
});

test("falls back to /usr/lib/os-release, then to a placeholder", (t) => {
  const root = mkdtempSync(join(tmpdir(), "np-os-"));
  t.is(readOsRelease(root).source, null);
  mkdirSync(join(root, "usr/lib"), { recursive: true });
  writeFileSync(join(root, "usr/lib/os-release"), "ID=fedora\nVERSION_ID=40\n");
  const os = readOsRelease(root);
  t.is(os.source, "/usr/lib/os-release");
  t.is(os.family, "rhel");
  t.is(os.prettyName, "fedora");
});

test("os-release values with terminal control sequences come back escaped", (t) => {
  const root = mkdtempSync(join(tmpdir(), "np-osrel-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "etc"));
  writeFileSync(
    join(root, "etc/os-release"),
    'ID=debian\nPRETTY_NAME="Debian \u001b]0;owned\u0007GNU/Linux \u001b[2J12"\nVERSION_ID="12\u001b[8m"\n',
  );
  const os = readOsRelease(root);
  t.is(os.prettyName, "Debian \\x1b]0;owned\\x07GNU/Linux \\x1b[2J12");
  t.is(os.versionId, "12\\x1b[8m");
  t.is(os.family, "debian");
});
