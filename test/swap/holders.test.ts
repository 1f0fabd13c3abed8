import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { devNetmapHolders, findHolders, holderProblems } from "../../toolkit/swap/holders.js";

/** A host tree with /proc/modules, /dev/netmap and one process holding it open. */
function hostTree(procModules: string, holder: boolean): string {
  const root = mkdtempSync(join(tmpdir(), "np-holders-"));
  mkdirSync(join(root, "proc", "4242", "fd"), { recursive: true });
  mkdirSync(join(root, "proc", "77", "fd"), { recursive: true });
  mkdirSync(join(root, "dev"), { recursive: true });
  writeFileSync(join(root, "proc", "modules"), procModules);
  writeFileSync(join(root, "dev", "netmap"), "");
  writeFileSync(join(root, "proc", "4242", "comm"), "pkt-gen\n");
  symlinkSync("/dev/null", join(root, "proc", "4242", "fd", "0"));
  if (holder) symlinkSync("/dev/netmap", join(root, "proc", "4242", "fd", "3"));
  symlinkSync("socket:[123]", join(root, "proc", "77", "fd", "3"));
  return root;
}

// The /proc/modules lines captured in the guest (../shared/captures/guest-swap-verify-rollback).
const loaded = `e1000 167936 0 - Live 0xffffffffc0406000 (OE)
netmap 253952 1 e1000, Live 0xffffffffc03c7000 (OE)
`;

test("netmap used only by the patched driver we unload too, and no /dev/netmap user: the way is clear", (t) => {
  const root = hostTree(loaded, false);
  t.teardown(() => rmSync(root, { recursive: true }));
  const h = findHolders(root, ["e1000", "netmap"]);
  t.deepEqual(h.devNetmap, []);
  t.deepEqual(holderProblems(h, ["e1000", "netmap"]), []);
});

test("a process with /dev/netmap open is named with its pid and command", (t) => {
  const root = hostTree(loaded, true);
  t.teardown(() => rmSync(root, { recursive: true }));
  t.deepEqual(devNetmapHolders(root), [{ pid: 4242, comm: "pkt-gen" }]);
  t.deepEqual(holderProblems(findHolders(root, ["e1000", "netmap"]), ["e1000", "netmap"]), [
    "process 4242 (pkt-gen) holds /dev/netmap open",
  ]);
});

test("a dependant we do not unload, or open users beyond the dependants, block the unload", (t) => {
  const root = hostTree(
    `ixgbe 300000 0 - Live 0xffffffffc0500000 (OE)
netmap 253952 3 e1000,ixgbe, Live 0xffffffffc03c7000 (OE)
e1000 167936 0 - Live 0xffffffffc0406000 (OE)
`,
    false,
  );
  t.teardown(() => rmSync(root, { recursive: true }));
  t.deepEqual(holderProblems(findHolders(root, ["e1000", "netmap"]), ["e1000", "netmap"]), [
    "netmap is used by ixgbe",
  ]);
  t.deepEqual(holderProblems(findHolders(root, ["e1000", "ixgbe", "netmap"]), ["e1000", "ixgbe", "netmap"]), [
    "netmap has 1 open user(s) besides its dependants",
  ]);
});
