import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import {
  handlesKernel,
  loadKernelCatalog,
  loadNetmapUpstream,
  sameCommit,
} from "../../toolkit/catalog/kernels.js";
import { RecipeError } from "../../toolkit/core/errors.js";
import { catalogDir } from "../../toolkit/core/paths.js";

const kernels = loadKernelCatalog();
const pin = "89607e1406c1fa5ac2106bd2ff33417f090c0d60";

test("seriesFor maps releases to their series file", (t) => {
  t.is(kernels.seriesFor("2.6.37")?.series, "2.6");
  t.is(kernels.seriesFor("4.19.300")?.series, "4.19");
  t.is(kernels.seriesFor("6.1.0-56-amd64")?.series, "6.1");
  t.is(kernels.seriesFor("6.1.192")?.series, "6.1");
  t.is(kernels.seriesFor("6.8.0-31-generic")?.series, "6.8");
  t.is(kernels.seriesFor("6.12.48")?.series, "6.12");
  t.is(kernels.seriesFor("6.16")?.series, "6.15+");
  t.is(kernels.seriesFor("7.0")?.series, "6.15+");
  t.is(kernels.seriesFor("5.4"), undefined);
});

test("knownBad on Debian 12 at the pin: veth.c and virtio_net.c (#961)", (t) => {
  const bad = kernels.knownBad("6.1.192", pin.slice(0, 12));
  t.deepEqual(bad.flatMap((b) => b.drivers).sort(), ["veth.c", "virtio_net.c"]);
  t.is(bad.find((b) => b.drivers.includes("virtio_net.c"))?.issue, 961);
  // #961 is recorded for any commit; the veth failure only for the commit it was seen with.
  t.deepEqual(
    kernels.knownBad("6.1.192", "0123456789ab").map((b) => b.drivers),
    [["virtio_net.c"]],
  );
  t.deepEqual(kernels.knownBad("5.10.200", pin), []);
});

test("knownBad honours a narrower version range inside a series", (t) => {
  t.deepEqual(
    kernels.knownBad("6.16", pin).map((b) => b.drivers),
    [["virtio_net.c"]],
  );
  t.deepEqual(
    kernels
      .knownBad("7.0", pin)
      .map((b) => b.drivers)
      .sort(),
    [["all"], ["virtio_net.c"]],
  );
});

test("knownGood: e1000 on 6.1 at the pin", (t) => {
  t.deepEqual(kernels.knownGood("6.1.0-56-amd64", pin)[0]?.drivers, ["e1000"]);
  t.deepEqual(kernels.knownGood("6.1.0-56-amd64", "0123456789ab"), []);
});

test("compilerOk: 2.6 needs gcc 4.x, 6.1 takes modern gcc", (t) => {
  t.deepEqual(kernels.compilerOk("2.6.37", "12.2.0"), { ok: false, need: "gcc 3.2 to 4.9" });
  t.true(kernels.compilerOk("2.6.37", "4.9.4").ok, "4.9.4 is within max 4.9");
  t.true(kernels.compilerOk("2.6.37", "4.4").ok);
  t.false(kernels.compilerOk("2.6.37", "5.1").ok);
  t.deepEqual(kernels.compilerOk("6.1.192", "12.2.0"), { ok: true, need: "gcc 5.1 or newer" });
  t.false(kernels.compilerOk("6.1.192", "4.9").ok);
  t.false(kernels.compilerOk("6.16", "7.5").ok);
  const unknown = kernels.compilerOk("5.4", "9");
  t.true(unknown.ok);
  t.regex(unknown.need, /no series/);
});

test("sameCommit matches prefixes of at least 7 digits", (t) => {
  t.true(sameCommit(pin, "89607e1406c1"));
  t.true(sameCommit("89607E1", pin));
  t.false(sameCommit(pin, "89607e"));
  t.false(sameCommit(pin, "3c7a7e55cb02"));
});

test("the netmap pin is a full sha and handles 3.18 to 6.19", (t) => {
  const up = loadNetmapUpstream();
  t.is(up.url, "https://github.com/luigirizzo/netmap");
  t.is(up.commit, pin);
  t.true(handlesKernel(up.handles, "6.19.3"));
  t.true(handlesKernel(up.handles, "3.18"));
  t.false(handlesKernel(up.handles, "6.20"));
  t.false(handlesKernel(up.handles, "3.17.8"));
  t.deepEqual(
    up.tags.map((x) => x.tag),
    ["v11.0", "v11.1", "v11.2", "v11.3", "v11.4", "v13.0"],
  );
  const v110 = up.tags[0];
  t.is(v110?.module, "netmap_lin.ko");
  t.false(v110?.configure);
  t.true(up.tags.slice(1).every((x) => x.module === "netmap.ko" && x.configure));
  t.true(handlesKernel(up.tags.at(-1)?.handles ?? { min: "0.0", max: "0.0" }, "4.20.17"));
});

test("overlapping series files are refused", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "np-kernels-"));
  cpSync(join(catalogDir("kernels"), "6.1.yaml"), join(dir, "6.1.yaml"));
  writeFileSync(
    join(dir, "6.0.yaml"),
    `series: "6.0"
versions: { from: "6.0", to: "6.2" }
sources: [{ kind: kernelorg, urlPattern: "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-{version}.tar.xz" }]
compilers: { gcc: { min: "5.1", max: null } }
moduleCompression: []
netmap: { knownGood: [], knownBad: [] }
`,
  );
  const err = t.throws(() => loadKernelCatalog(dir), { instanceOf: RecipeError });
  t.regex(err?.message ?? "", /6\.1\.yaml:1:1: versions 6\.1 up to .* overlap 6\.0\.yaml/);
});

test("a knownBad entry without an issue field is reported at its line", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "np-kernels-"));
  writeFileSync(
    join(dir, "6.0.yaml"),
    `series: "6.0"
versions: { from: "6.0", to: "6.1" }
sources: [{ kind: git, url: "https://example.org/linux.git", tagPattern: "v{version}" }]
compilers: { gcc: { min: "5.1", max: null } }
moduleCompression: [{ distro: x, format: lz4 }]
netmap:
  knownGood: []
  knownBad:
    - { commit: any, drivers: [e1000], note: broken }
`,
  );
  const err = t.throws(() => loadKernelCatalog(dir), { instanceOf: RecipeError });
  const msgs = err?.issues.map((i) => `${i.line}: ${i.message}`) ?? [];
  t.true(
    msgs.some((m) => /^5: moduleCompression\.0\.format/.test(m)),
    msgs.join("\n"),
  );
  t.true(
    msgs.some((m) => /^9: netmap\.knownBad\.0\.issue/.test(m)),
    msgs.join("\n"),
  );
});
