import test from "ava";
import type { Exec } from "../../toolkit/core/exec.js";
import {
  parseLockdown,
  parseSecureBootVar,
  probeSecureBootWithMokutil,
  readSecureBootFacts,
} from "../../toolkit/host/secure-boot.js";
import { hostTree } from "../helpers/hosts.js";

test("secure-boot tree: SecureBoot=1 and lockdown integrity refuse unsigned modules", (t) => {
  t.deepEqual(readSecureBootFacts(hostTree("secure-boot")), {
    efi: true,
    secureBoot: true,
    lockdown: "integrity",
    sigEnforce: false,
    refusesUnsignedModules: true,
  });
});

test("debian12-e1000: BIOS boot, no lockdown LSM, sig_enforce off -> unsigned modules load", (t) => {
  const sb = readSecureBootFacts(hostTree("debian12-e1000"));
  t.false(sb.efi);
  t.is(sb.secureBoot, null);
  t.is(sb.lockdown, null);
  t.false(sb.refusesUnsignedModules);
});

test("efivar bytes: 4 attribute bytes then the value", (t) => {
  t.true(parseSecureBootVar(Buffer.from([6, 0, 0, 0, 1])));
  t.false(parseSecureBootVar(Buffer.from([6, 0, 0, 0, 0])));
  t.is(parseSecureBootVar(Buffer.from([6, 0, 0, 0])), null);
  t.is(parseSecureBootVar(null), null);
});

test("lockdown: the bracketed word", (t) => {
  t.is(parseLockdown("[none] integrity confidentiality"), "none");
  t.is(parseLockdown("none integrity [confidentiality]"), "confidentiality");
  t.is(parseLockdown("garbage"), null);
});

const execAnswering = (stdout: string, exitCode = 0): Exec => ({
  dryRun: false,
  run: async (argv) => ({
    argv,
    exitCode,
    stdout,
    stderr: "",
    durationMs: 1,
    timedOut: false,
    skipped: false,
  }),
  start: () => {
    throw new Error("not used: mokutil runs to completion");
  },
});

test("mokutil fallback reads its answer and degrades to null", async (t) => {
  t.true(await probeSecureBootWithMokutil(execAnswering("SecureBoot enabled")));
  t.false(await probeSecureBootWithMokutil(execAnswering("SecureBoot disabled")));
  t.is(await probeSecureBootWithMokutil(execAnswering("", 127)), null);
  const throwing: Exec = {
    dryRun: false,
    run: async () => {
      throw new Error("spawn failed");
    },
    start: () => {
      throw new Error("spawn failed");
    },
  };
  t.is(await probeSecureBootWithMokutil(throwing), null);
});
