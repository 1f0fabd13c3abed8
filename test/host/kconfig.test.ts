import { rmSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { BlockedError } from "../../toolkit/core/errors.js";
import { configValue, loadKernelConfig, parseKernelConfig } from "../../toolkit/host/kconfig.js";
import { readKernelFacts } from "../../toolkit/host/kernel-facts.js";
import { copyHostTree, hostTree } from "../helpers/hosts.js";

const load = (root: string) => loadKernelConfig(root, readKernelFacts(root));

test("/boot/config-<release> comes first", (t) => {
  const cfg = load(hostTree("debian12-e1000"));
  t.is(cfg.source, "/boot/config-6.1.0-56-amd64");
  t.is(cfg.kind, "boot");
  t.is(configValue(cfg, "E1000"), "m");
  t.is(configValue(cfg, "CONFIG_MODULES"), "y");
  t.is(configValue(cfg, "MODULE_SIG_HASH"), "sha256");
  t.is(configValue(cfg, "R8169"), undefined, '"is not set" reads as unset');
});

test("without /boot config, /proc/config.gz is gunzipped (and wins over the headers' .config)", (t) => {
  const cfg = load(hostTree("proc-config-only"));
  t.is(cfg.source, "/proc/config.gz");
  t.is(cfg.kind, "proc");
  // The fixture's proc config says HZ=1000, the headers' .config HZ=250.
  t.is(configValue(cfg, "HZ"), "1000");
});

test("then the build dir's .config, through the build link", (t) => {
  const root = copyHostTree("proc-config-only");
  rmSync(join(root, "proc/config.gz"));
  const cfg = load(root);
  t.is(cfg.source, "/usr/src/linux-headers-6.1.0-56-amd64/.config");
  t.is(cfg.kind, "build");
  t.is(configValue(cfg, "HZ"), "250");
});

test("none anywhere: BlockedError naming the three places and what to install", (t) => {
  const root = copyHostTree("proc-config-only");
  rmSync(join(root, "proc/config.gz"));
  rmSync(join(root, "usr/src/linux-headers-6.1.0-56-amd64/.config"));
  const err = t.throws(() => load(root), { instanceOf: BlockedError });
  t.regex(err.message, /\/boot\/config-6\.1\.0-56-amd64/);
  t.regex(err.message, /\/proc\/config\.gz/);
  t.regex(err.message, /\/usr\/src\/linux-headers-6\.1\.0-56-amd64\/\.config/);
  t.regex(err.hint ?? "", /linux-headers-6\.1\.0-56-amd64/);
  t.regex(err.hint ?? "", /IKCONFIG_PROC/);
  t.is(err.exitCode, 4);
});

test("parser: quoted strings unescaped, comments skipped", (t) => {
  const v = parseKernelConfig('# CONFIG_A is not set\nCONFIG_B="x \\"y\\""\nCONFIG_C=0x10\nnoise\n');
  t.deepEqual(
    [...v],
    [
      ["CONFIG_B", 'x "y"'],
      ["CONFIG_C", "0x10"],
    ],
  );
});
