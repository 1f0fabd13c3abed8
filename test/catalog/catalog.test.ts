/** Loads every catalog entry (drivers/ and kernels/) and checks what must hold across entries. */
import { readdirSync } from "node:fs";
import test from "ava";
import { loadDriverCatalog } from "../../toolkit/catalog/drivers.js";
import { loadKernelCatalog, loadNetmapUpstream } from "../../toolkit/catalog/kernels.js";
import { kernelVersionNumber } from "../../toolkit/catalog/version-code.js";
import { catalogDir } from "../../toolkit/core/paths.js";

const drivers = loadDriverCatalog();
const kernels = loadKernelCatalog();

test("every drivers/*.yaml file loads", (t) => {
  const files = readdirSync(catalogDir("drivers")).filter((f) => f.endsWith(".yaml"));
  t.is(drivers.list().length, files.length);
  t.true(files.length >= 15);
});

test("every kernels/<series>.yaml file loads, and the required series are there", (t) => {
  const files = readdirSync(catalogDir("kernels")).filter((f) => /^\d+\.\d+\.yaml$/.test(f));
  t.is(kernels.list().length, files.length);
  t.deepEqual(
    kernels.list().map((s) => s.series),
    ["2.6", "4.19", "5.10", "6.1", "6.8", "6.12", "6.15+"],
  );
});

test("driver tokens, modules and CONFIG symbols are unique", (t) => {
  for (const key of ["token", "module", "config"] as const) {
    const values = drivers.list().map((d) => d[key]);
    t.is(new Set(values).size, values.length, `duplicate ${key}`);
  }
});

test("native ranges are well-formed, sorted and disjoint", (t) => {
  for (const d of drivers.list()) {
    let prevEnd = 0;
    d.nativeRanges.forEach((r, i) => {
      const from = kernelVersionNumber(r.from);
      t.true(from >= prevEnd, `${d.token}: range ${i} starts before the previous one ends`);
      t.true(i === d.nativeRanges.length - 1 || r.to !== null, `${d.token}: only the last range may be open`);
      prevEnd = r.to === null ? Number.POSITIVE_INFINITY : kernelVersionNumber(r.to);
      t.true(prevEnd > from, `${d.token}: empty range ${i}`);
    });
  }
});

test("external drivers carry archive, version and url; internal ones none", (t) => {
  for (const d of drivers.list()) {
    if (d.kind === "external") {
      t.truthy(d.external?.archive, d.token);
      t.truthy(d.external?.version, d.token);
      t.regex(d.external?.url ?? "", /^https:\/\//, d.token);
      // An unpinned checksum must say so, so that the recipe or cache pins it before use.
      if (d.external?.sha256 === null) t.regex(d.external.note ?? "", /sha256/, d.token);
      // The archive name is what configure looks for: it must appear in the URL's file name.
      const leaf = d.external?.archive.split("/").at(-1) ?? "";
      t.true(d.external?.url.endsWith(leaf), `${d.token}: url does not end in ${leaf}`);
    } else {
      t.falsy(d.external, d.token);
    }
  }
});

test("outputs are relative .ko paths with a {suffix}, unique per driver", (t) => {
  const outs = drivers.list().flatMap((d) => (d.output === null ? [] : [d.output]));
  for (const o of outs) {
    t.false(o.startsWith("/"), o);
    t.regex(o, /\{suffix\}\.ko$/);
  }
  t.is(new Set(outs).size, outs.length);
});

test("QEMU NICs: the 7.2 baseline ones have no minQemu, igb needs 8.0", (t) => {
  const nics = Object.fromEntries(drivers.list().map((d) => [d.token, d.qemuNic]));
  t.is(nics.e1000, "e1000");
  t.is(nics.e1000e, "e1000e");
  t.is(nics["virtio_net.c"], "virtio-net-pci");
  t.is(nics.igb, "igb");
  t.is(drivers.get("igb").minQemu, "8.0");
  t.is(drivers.get("e1000").minQemu, undefined);
});

test("kernel series: sources, compilers and knownBad entries refer to real things", (t) => {
  const pin = loadNetmapUpstream().commit;
  for (const s of kernels.list()) {
    t.true(s.sources.length > 0, s.series);
    const { min, max } = s.compilers.gcc;
    if (max !== null) t.true(Number.parseFloat(min) <= Number.parseFloat(max), `${s.series}: gcc min > max`);
    for (const bad of s.netmap.knownBad) {
      for (const d of bad.drivers) t.true(d === "all" || drivers.has(d), `${s.series}: unknown driver ${d}`);
      t.true(bad.commit === "any" || bad.commit.length >= 12, `${s.series}: commit too short`);
    }
    for (const good of s.netmap.knownGood) {
      for (const d of good.drivers ?? []) t.true(drivers.has(d), `${s.series}: unknown driver ${d}`);
      t.is(good.commit, pin, `${s.series}: knownGood commit is not the pin (update the pin or this test)`);
    }
    if (s.seed !== undefined) t.is(kernels.seriesFor(s.seed), s, `${s.series}: seed outside the series`);
  }
  t.is(kernels.seriesFor("2.6.37")?.seed, "2.6.37");
});

test("series ranges follow each other without gaps inside the catalogued span", (t) => {
  const list = kernels.list();
  for (const s of list) t.true(kernels.seriesFor(s.versions.from) === s, s.series);
  t.is(list.at(-1)?.versions.to, null, "the newest series is open-ended");
});
