import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root: the folder holding package.json, found from this file (works from dist/ too). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "drivers"))) return dir;
    const up = dirname(dir);
    if (up === dir)
      throw new Error("cannot find the netmap-provision project root (package.json + drivers/)");
    dir = up;
  }
}

/** Where the catalogs and shipped recipes live. */
export const catalogDir = (name: "drivers" | "kernels" | "recipes"): string => join(projectRoot(), name);

/** Join a host path under a root prefix ("/" for the real host, a fixture tree in tests). */
export function underRoot(root: string, hostPath: string): string {
  if (root === "/" || root === "") return hostPath;
  return join(root, hostPath);
}
