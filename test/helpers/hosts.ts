import { cpSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture } from "./paths.js";

/** A fixture host tree (test/fixtures/hosts/<name>), read through --root / underRoot. */
export const hostTree = (name: string): string => fixture("hosts", name);

/** A writable copy of a fixture host tree, for tests that remove or add a file. */
export function copyHostTree(name: string): string {
  const dest = join(mkdtempSync(join(tmpdir(), `np-host-${name}-`)), name);
  cpSync(hostTree(name), dest, { recursive: true, verbatimSymlinks: true });
  return dest;
}

/**
 * The kernel release every fixture host tree captures (debian12-e1000's /proc/sys/kernel/osrelease,
 * 6.1.0-56-amd64): a fixed recording, not the kernel installed here (for that, see debian-kernel.ts).
 * Tests that need some release for synthetic records use it too, so no test names one literally.
 */
export const FIXTURE_RELEASE: string = readFileSync(
  join(hostTree("debian12-e1000"), "proc/sys/kernel/osrelease"),
  "utf8",
).trim();
