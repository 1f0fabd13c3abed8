import test from "ava";
import {
  compareKernelVersions,
  describeRange,
  kernelVersionParts,
  netmapVersionCode,
  parsePatchName,
  patchApplies,
  releaseInRange,
} from "../../toolkit/catalog/version-code.js";
import { UserError } from "../../toolkit/core/errors.js";

// Every example of the facts sheet, plus the Debian ABI form.
const codes: [string, string][] = [
  ["2.6.32", "20620"],
  ["3.18", "31200"],
  ["4.20", "41400"],
  ["6.1.192", "601c0"],
  ["6.19.3", "61303"],
  ["6.1.0-56-amd64", "60100"],
  ["2.6.32-358.el6.x86_64", "20620"],
  ["6.8.0-31-generic", "60800"],
  // The kernel caps the sublevel at 255 (4.9.256 onwards).
  ["4.9.337", "409ff"],
  ["10.0", "a0000"],
];
for (const [release, code] of codes) {
  test(`version code of ${release} is ${code}`, (t) => {
    t.is(netmapVersionCode(release), code);
  });
}

test("kernelVersionParts reads releases in every common form", (t) => {
  t.deepEqual(kernelVersionParts("6.1.192"), { major: 6, minor: 1, sublevel: 192 });
  t.deepEqual(kernelVersionParts("6.1.0-56-amd64"), { major: 6, minor: 1, sublevel: 0 });
  t.deepEqual(kernelVersionParts("3.18"), { major: 3, minor: 18, sublevel: 0 });
  t.deepEqual(kernelVersionParts("2.6.32.27"), { major: 2, minor: 6, sublevel: 32 });
  t.deepEqual(kernelVersionParts("6.15-rc1"), { major: 6, minor: 15, sublevel: 0 });
});

test("kernelVersionParts rejects what is not a version, saying what it expected", (t) => {
  for (const bad of ["", "six", "6", "v6.1", "6.x"]) {
    const err = t.throws(() => kernelVersionParts(bad), { instanceOf: UserError });
    t.regex(err?.hint ?? "", /6\.1\.192/);
  }
});

test("patchApplies is lo <= code < hi by string comparison, 99999 open", (t) => {
  t.true(patchApplies("601c0", "31200", "99999"));
  t.true(patchApplies("31200", "31200", "99999"), "lo is included");
  t.false(patchApplies("311ff", "31200", "99999"));
  t.false(patchApplies("60f00", "60c00", "60f00"), "hi is excluded");
  t.true(patchApplies("60eff", "60c00", "60f00"));
  // Hex digits compare as strings: 601c0 (6.1.192) is below 60200 (6.2).
  t.true(patchApplies("601c0", "50b00", "60500"));
  t.false(patchApplies("61200", "51300", "61200"));
  // A kernel 10.x code sorts above "99999" as a string; 99999 must still mean "open".
  t.true(patchApplies("a0000", "31200", "99999"));
});

test("parsePatchName splits vanilla and external patch names", (t) => {
  t.deepEqual(parsePatchName("vanilla--e1000--31200--99999"), {
    kind: "vanilla",
    driver: "e1000",
    lo: "31200",
    hi: "99999",
  });
  t.deepEqual(parsePatchName("vanilla--virtio_net.c--60c00--60f00"), {
    kind: "vanilla",
    driver: "virtio_net.c",
    lo: "60c00",
    hi: "60f00",
  });
  t.deepEqual(parsePatchName("intel--igb--5.10.2"), {
    kind: "intel",
    driver: "igb",
    driverVersion: "5.10.2",
  });
  t.deepEqual(parsePatchName("custom--virtio_net.c--4.9"), {
    kind: "custom",
    driver: "virtio_net.c",
    driverVersion: "4.9",
  });
  t.is(parsePatchName("README"), undefined);
  t.is(parsePatchName("vanilla--e1000--3.18--99999"), undefined);
  t.is(parsePatchName("vanilla--e1000--31200"), undefined);
});

test("releaseInRange is [from, to) with null as no upper bound", (t) => {
  const virtio = { from: "3.18", to: "6.15" };
  t.true(releaseInRange("6.14.11", virtio));
  t.false(releaseInRange("6.15", virtio));
  t.false(releaseInRange("3.17.8", virtio));
  t.true(releaseInRange("3.18", virtio));
  t.true(releaseInRange("10.2", { from: "3.18", to: null }), "no upper bound, also past 9.x");
  t.true(releaseInRange("6.1.0-56-amd64", { from: "6.1", to: "6.2" }));
});

test("compareKernelVersions orders numerically, not as text", (t) => {
  t.true(compareKernelVersions("6.10", "6.9") > 0);
  t.true(compareKernelVersions("2.6.37", "3.0") < 0);
  t.is(compareKernelVersions("6.1", "6.1.0-56-amd64"), 0);
});

test("describeRange reads well in messages", (t) => {
  t.is(describeRange({ from: "3.18", to: null }), "3.18 and newer");
  t.is(describeRange({ from: "4.9", to: "4.12" }), "4.9 up to (not including) 4.12");
});
