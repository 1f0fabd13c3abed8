import { accessSync, constants } from "node:fs";
import { underRoot } from "../core/paths.js";
import { hostExists } from "./host-fs.js";

/**
 * Whether /dev/kvm is there and this user may open it read-write. That it actually works is
 * only known by booting a guest (toolkit/guest/kvm-probe.ts, used by `try`).
 */
export interface KvmFacts {
  present: boolean;
  readWrite: boolean;
}

export function readKvmFacts(root: string): KvmFacts {
  const present = hostExists(root, "/dev/kvm");
  let readWrite = false;
  if (present) {
    try {
      accessSync(underRoot(root, "/dev/kvm"), constants.R_OK | constants.W_OK);
      readWrite = true;
    } catch {
      readWrite = false;
    }
  }
  return { present, readWrite };
}
