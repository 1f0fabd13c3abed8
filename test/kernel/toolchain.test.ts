import test from "ava";
import { loadKernelCatalog } from "../../toolkit/catalog/kernels.js";
import { BlockedError } from "../../toolkit/core/errors.js";
import { fullVersion } from "../../toolkit/kernel/build-sources.js";
import { assertCompilerFits } from "../../toolkit/kernel/toolchain.js";

const kernels = loadKernelCatalog();

test("gcc 12 is refused for 2.6.37, naming the compiler it needs", (t) => {
  const e = t.throws(() => assertCompilerFits(kernels, "2.6.37", "12.2.0"), { instanceOf: BlockedError });
  t.regex(e?.message ?? "", /gcc 12\.2\.0 cannot build Linux 2\.6\.37: this series needs gcc 3\.2 to 4\.9/);
  t.regex(e?.hint ?? "", /gcc 3\.2 to 4\.9/);
});

test("gcc 4.9.4 builds 2.6.37; gcc 12 builds 6.1; gcc 4.9 does not build 6.1", (t) => {
  t.notThrows(() => assertCompilerFits(kernels, "2.6.37", "4.9.4"));
  t.notThrows(() => assertCompilerFits(kernels, "6.1.192", "12.2.0"));
  t.throws(() => assertCompilerFits(kernels, "6.1.192", "4.9"), { message: /needs gcc 5\.1 or newer/ });
});

test("no compiler at all is refused", (t) => {
  t.throws(() => assertCompilerFits(kernels, "6.1.192", null), {
    instanceOf: BlockedError,
    message: /no C compiler/,
  });
});

test("a kernel.org x.y version is x.y.0 in Makefile terms", (t) => {
  t.is(fullVersion("6.1"), "6.1.0");
  t.is(fullVersion("2.6.37"), "2.6.37");
});
