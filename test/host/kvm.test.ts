import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { readKvmFacts } from "../../toolkit/host/kvm.js";
import { hostTree } from "../helpers/hosts.js";

test("absent /dev/kvm", (t) => {
  t.deepEqual(readKvmFacts(hostTree("debian12-e1000")), { present: false, readWrite: false });
});

test("present and read-write", (t) => {
  const root = mkdtempSync(join(tmpdir(), "np-kvm-"));
  mkdirSync(join(root, "dev"));
  writeFileSync(join(root, "dev/kvm"), "", { mode: 0o666 });
  t.deepEqual(readKvmFacts(root), { present: true, readWrite: true });
});
