import test from "ava";
import {
  kernelOrgUrl,
  kernelReleaseMatches,
  kernelSemver,
  parseKernelVersion,
} from "../../toolkit/recipe/kernel-version.js";

test("releases, ranges and running are told apart", (t) => {
  t.deepEqual(parseKernelVersion("running"), { kind: "running" });
  t.deepEqual(parseKernelVersion("6.1.0-56-amd64"), {
    kind: "exact",
    release: "6.1.0-56-amd64",
    version: "6.1.0",
  });
  t.deepEqual(parseKernelVersion("2.6.37"), { kind: "exact", release: "2.6.37", version: "2.6.37" });
  t.deepEqual(parseKernelVersion("2.6.32-358.el6.x86_64"), {
    kind: "exact",
    release: "2.6.32-358.el6.x86_64",
    version: "2.6.32",
  });
  t.deepEqual(parseKernelVersion(">=6.1 <6.2"), { kind: "range", range: ">=6.1.0 <6.2.0-0" });
  t.like(parseKernelVersion("6.8"), { kind: "range" });
});

test("impossible and malformed specs are errors with a hint", (t) => {
  for (const bad of [">=6.2 <6.1", "<0.0.0", ">7 <6"])
    t.regex((parseKernelVersion(bad) as { error: string }).error, /matches no kernel/);
  for (const bad of ["v6.1", "six", "6.1.0 amd64", ">=6.1 <"])
    t.true("error" in parseKernelVersion(bad), bad);
});

test("a distro release satisfies a range on its x.y.z, not as a semver pre-release", (t) => {
  const r = parseKernelVersion(">=6.1.0 <6.2.0");
  if ("error" in r) return t.fail();
  t.true(kernelReleaseMatches(r, "6.1.0-56-amd64"));
  t.false(kernelReleaseMatches(r, "6.8.0-45-generic"));
  t.true(kernelReleaseMatches({ kind: "exact", release: "2.6.37", version: "2.6.37" }, "2.6.37"));
  t.is(kernelSemver("2.6.32.27"), "2.6.32");
});

test("kernel.org URLs use v2.6/ for 2.6 and vN.x/ afterwards", (t) => {
  t.is(kernelOrgUrl("2.6.37"), "https://cdn.kernel.org/pub/linux/kernel/v2.6/linux-2.6.37.tar.xz");
  t.is(kernelOrgUrl("6.1"), "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.tar.xz");
});
