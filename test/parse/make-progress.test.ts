import test from "ava";
import {
  classifyBuildFailure,
  createMakeProgress,
  primaryBuildFailure,
} from "../../toolkit/parse/make-progress.js";
import { capture } from "./capture.js";

const makeLog = () => capture("netmap-make-debian12-6.1.192.log");

test("real make log: counts 9 kbuild objects, 6 `cc -c` and 10 one-step app builds, 3 links", (t) => {
  const p = createMakeProgress();
  const phases: string[] = [];
  for (const line of makeLog().split("\n")) {
    const s = p.feed(line);
    if (phases.at(-1) !== s.phase) phases.push(s.phase);
  }
  const end = p.snapshot();
  t.is(end.compiled, 9 + 6 + 10);
  t.is(end.linked, 3); // netmap.o, netmap.ko, e1000/e1000.ko
  t.is(end.phase, "btf");
  t.deepEqual(phases, ["starting", "compile", "link", "modpost", "btf"], "the phase never goes back");
  t.is(end.current, "/src/netmap/LINUX/e1000/e1000.ko");
  t.is(end.expected, undefined);
});

test("the .mod.o stubs after MODPOST do not count as compiled sources nor pull the phase back", (t) => {
  const p = createMakeProgress(2);
  p.feed("  CC [M]  /b/netmap.o");
  p.feed("  MODPOST /b/Module.symvers");
  const s = p.feed("  CC [M]  /b/netmap.mod.o");
  t.is(s.compiled, 1);
  t.is(s.phase, "modpost");
  t.is(s.fraction, 0.5);
});

test("fraction is compiled/expected, capped at 1; linking and archiving lines are not compiles", (t) => {
  const p = createMakeProgress(2);
  t.is(p.snapshot().expected, 2);
  p.feed("cc -O2 -c -o a.o a.c");
  p.feed("ar r libnetmap.a a.o");
  p.feed("cc   dedup.o dedup-main.o  -lpthread -lrt\t -o dedup");
  t.is(p.snapshot().compiled, 1);
  p.feed("x86_64-linux-gnu-gcc-12 -c b.c -o b.o");
  p.feed("  CC      /b/extra.o");
  t.is(p.snapshot().compiled, 3);
  t.is(p.snapshot().fraction, 1);
});

test("real make log: only harmless findings (BTF skipped), no failure", (t) => {
  const f = classifyBuildFailure(makeLog());
  t.deepEqual(
    f.map((x) => [x.kind, x.harmless]),
    [
      ["btf-skipped", true],
      ["btf-skipped", true],
    ],
  );
  t.regex(f[0]?.line ?? "", /^Skipping BTF generation for \/src\/netmap\/LINUX\/netmap\.ko/);
  t.is(primaryBuildFailure(f), undefined);
  t.false(
    f.some((x) => x.kind === "werror"),
    "-Werror in command lines is not a diagnostic",
  );
});

// Failure lines as gcc and kbuild print them (netmap issues #961, #184, #615).
const FAILED = [
  "  CC [M]  /src/netmap/LINUX/virtio_net.c/virtio_net.o",
  "/src/netmap/LINUX/virtio_net.c/virtio_net.c:2885:17: error: too many arguments to function ‘netif_napi_add’",
  "/src/netmap/LINUX/netmap_linux.c:100:12: error: 'struct page' has no member named '_count'",
  "/src/netmap/LINUX/e1000/e1000_main.c:5:1: error: ‘foo’ offset 1 in ‘struct x’ isn’t aligned to 4 [-Werror=packed-not-aligned]",
  "/src/netmap/LINUX/x.c:3:2: error: implicit declaration of function 'skb_frag_size'",
  "sign-file: certs/signing_key.pem: No such file or directory",
  "make[2]: *** [scripts/Makefile.build:250: /src/netmap/LINUX/virtio_net.c/virtio_net.o] Error 1",
  "make[1]: *** No rule to make target 'modules_prepare'.  Stop.",
].join("\n");

test("known failure lines map to kinds and hints", (t) => {
  const f = classifyBuildFailure(FAILED);
  t.deepEqual(
    f.map((x) => [x.kind, x.lineNo]),
    [
      ["api-drift", 2],
      ["header-mismatch", 3],
      ["werror", 4],
      ["api-drift", 5],
      ["sign-file-missing-key", 6],
      ["make-error", 7],
      ["kernel-not-prepared", 8],
    ],
  );
  t.regex(f[0]?.hint ?? "", /#961/);
  t.regex(f[0]?.hint ?? "", /virtio_net\.c/);
  t.regex(f[1]?.hint ?? "", /_count/);
  t.regex(f[1]?.hint ?? "", /different releases/);
  t.regex(f[2]?.hint ?? "", /packed-not-aligned/);
  t.regex(f[3]?.hint ?? "", /skb_frag_size/);
  t.true(f[4]?.harmless);
  t.is(primaryBuildFailure(f)?.lineNo, 2, "the cause, not make's summary nor noise");
});

test("configure's 'kernel not configured' and a missing libelf header", (t) => {
  const f = classifyBuildFailure(
    "kernel not configured.\nfoo.c:1:10: fatal error: gelf.h: No such file or directory",
  );
  t.deepEqual(
    f.map((x) => x.kind),
    ["kernel-not-prepared", "missing-header"],
  );
  t.regex(f[1]?.hint ?? "", /libelf-dev/);
});
