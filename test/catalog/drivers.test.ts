import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { RecipeError, UserError } from "../../toolkit/core/errors.js";

const catalog = loadDriverCatalog();

// The configure tokens of upstream netmap (LINUX/configure driver_avail).
const tokens = [
  "e1000",
  "e1000e",
  "igb",
  "igc",
  "ixgbe",
  "ixgbevf",
  "i40e",
  "ice",
  "vmxnet3",
  "mlx5",
  "stmmac",
  "r8169.c",
  "virtio_net.c",
  "forcedeth.c",
  "veth.c",
];

test("the catalog has exactly netmap's configure tokens", (t) => {
  t.deepEqual(
    catalog
      .list()
      .map((d) => d.token)
      .sort(),
    [...tokens].sort(),
  );
});

const native: [string, string, boolean][] = [
  ["e1000", "6.1.192", true],
  ["e1000", "6.1.0-56-amd64", true],
  ["e1000", "3.17", false],
  ["virtio_net.c", "6.15", false],
  ["virtio_net.c", "6.14", true],
  ["virtio_net.c", "6.14.11", true],
  ["r8169.c", "6.1", false],
  ["r8169.c", "3.3", true],
  ["r8169.c", "3.4", false],
  ["r8169.c", "2.6.32", true],
  ["ice", "5.18.19", false],
  ["ice", "5.18", false],
  ["ice", "5.17", true],
  ["ice", "5.19", true],
  ["ice", "5.4", false],
  ["igc", "4.19", false],
  ["igc", "4.20", true],
  ["stmmac", "4.11.12", true],
  ["stmmac", "4.12", false],
  ["mlx5", "6.1", false],
  ["veth.c", "6.19.3", true],
];
for (const [token, kernel, expected] of native) {
  test(`nativeOn(${token}, ${kernel}) is ${expected}`, (t) => {
    t.is(catalog.nativeOn(token, kernel), expected);
  });
}

test("get accepts single-file tokens without .c", (t) => {
  t.is(catalog.get("r8169").token, "r8169.c");
  t.is(catalog.get("virtio_net").token, "virtio_net.c");
  t.true(catalog.has("veth"));
  t.true(catalog.has("veth.c"));
  t.false(catalog.has("e1000.c"));
  t.true(catalog.nativeOn("r8169", "3.3"));
});

test("an unknown driver names the known ones and suggests the closest", (t) => {
  const err = t.throws(() => catalog.get("e1001"), { instanceOf: UserError });
  t.regex(err?.message ?? "", /^unknown driver "e1001" \(did you mean "e1000"\?\); known: e1000, e1000e, /);
  t.regex(err?.message ?? "", /virtio_net\.c/);
  const alias = t.throws(() => catalog.get("virtionet"), { instanceOf: UserError });
  t.regex(alias?.message ?? "", /did you mean "virtio_net\.c"/);
  const far = t.throws(() => catalog.get("wireguard"), { instanceOf: UserError });
  t.notRegex(far?.message ?? "", /did you mean/);
  t.is(far?.exitCode, 2);
});

test("byModule finds a driver by its kernel module", (t) => {
  t.is(catalog.byModule("mlx5_core")?.token, "mlx5");
  t.is(catalog.byModule("virtio_net")?.token, "virtio_net.c");
  t.is(catalog.byModule("8139too"), undefined);
});

test("a facts-sheet sample of each entry", (t) => {
  const e1000 = catalog.get("e1000");
  t.is(e1000.kind, "internal");
  t.is(e1000.config, "CONFIG_E1000");
  t.is(e1000.output, "e1000/e1000{suffix}.ko");
  t.is(e1000.qemuNic, "e1000");
  const igb = catalog.get("igb");
  t.is(igb.external?.archive, "igb/v5.10.2.zip");
  t.is(igb.minQemu, "8.0");
  t.is(catalog.get("stmmac").config, "CONFIG_STMMAC_ETH");
  t.is(catalog.get("mlx5").config, "CONFIG_MLX5_CORE_EN");
  t.is(catalog.get("veth.c").output, "veth{suffix}.ko");
  t.is(catalog.get("virtio_net.c").output, "virtio_net.c/virtio_net{suffix}.ko");
});

function tempCatalog(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "np-drivers-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const good = `token: e1000
module: e1000
config: CONFIG_E1000
inTreePath: drivers/net/ethernet/intel/e1000
kind: internal
nativeRanges:
  - { from: "3.18", to: null }
output: e1000/e1000{suffix}.ko
qemuNic: e1000
`;

test("a bad entry is reported with file, line and column", (t) => {
  const dir = tempCatalog({ "e1000.yaml": good.replace('from: "3.18", to: null', 'from: "6.2", to: "6.1"') });
  const err = t.throws(() => loadDriverCatalog(dir), { instanceOf: RecipeError });
  const issue = err?.issues[0];
  t.true(issue?.file.endsWith("e1000.yaml"));
  t.is(issue?.line, 7);
  t.regex(issue?.message ?? "", /nativeRanges\.0: empty range/);
});

test("an external driver without its archive is refused", (t) => {
  const dir = tempCatalog({ "e1000.yaml": good.replace("kind: internal", "kind: external") });
  const err = t.throws(() => loadDriverCatalog(dir), { instanceOf: RecipeError });
  t.regex(err?.message ?? "", /e1000\.yaml:\d+:\d+: external: an external driver needs `external:`/);
});

test("unknown fields and misnamed files are refused", (t) => {
  const typo = t.throws(() => loadDriverCatalog(tempCatalog({ "e1000.yaml": `${good}qemu_nic: e1000\n` })), {
    instanceOf: RecipeError,
  });
  t.regex(typo?.message ?? "", /e1000\.yaml:10:1: unknown field "qemu_nic"/);
  const misnamed = t.throws(() => loadDriverCatalog(tempCatalog({ "igb.yaml": good })), {
    instanceOf: RecipeError,
  });
  t.regex(misnamed?.message ?? "", /belongs in e1000\.yaml, not igb\.yaml/);
});

test("broken YAML is reported with its location", (t) => {
  const err = t.throws(() => loadDriverCatalog(tempCatalog({ "e1000.yaml": "token: [e1000\n" })), {
    instanceOf: RecipeError,
  });
  t.regex(err?.message ?? "", /e1000\.yaml:\d+:\d+: YAML: /);
});
