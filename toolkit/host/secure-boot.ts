import type { Exec } from "../core/exec.js";
import { hostIsDir, readHostBytes, readHostLine } from "./host-fs.js";

/** The EFI global variable GUID under which firmware publishes SecureBoot. */
const secureBootVar = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

export type LockdownMode = "none" | "integrity" | "confidentiality";

/**
 * What decides whether the kernel accepts an unsigned module (field notes #7: `Key was rejected
 * by service`, `Lockdown: unsigned module loading is restricted`).
 */
export interface SecureBootFacts {
  /** Booted through EFI (/sys/firmware/efi exists). */
  efi: boolean;
  /** true/false from the efivar; null when it cannot be read (BIOS boot, efivarfs not mounted). */
  secureBoot: boolean | null;
  /** The active lockdown mode (the bracketed word), or null when the LSM is not there. */
  lockdown: LockdownMode | null;
  /** module.sig_enforce=Y refuses unsigned modules even without Secure Boot. */
  sigEnforce: boolean | null;
  /** True when any of the above makes the kernel refuse unsigned modules. */
  refusesUnsignedModules: boolean;
}

/** efivarfs files are 4 attribute bytes followed by the value; SecureBoot is one byte, 1 = on. */
export function parseSecureBootVar(bytes: Buffer | null): boolean | null {
  if (bytes === null || bytes.length < 5) return null;
  return bytes[4] === 1;
}

/** "none [integrity] confidentiality" -> "integrity". */
export function parseLockdown(text: string | null): LockdownMode | null {
  const m = text?.match(/\[(none|integrity|confidentiality)\]/);
  return m ? (m[1] as LockdownMode) : null;
}

export function readSecureBootFacts(root: string): SecureBootFacts {
  const efi = hostIsDir(root, "/sys/firmware/efi");
  const secureBoot = parseSecureBootVar(readHostBytes(root, secureBootVar));
  const lockdown = parseLockdown(readHostLine(root, "/sys/kernel/security/lockdown"));
  const sig = readHostLine(root, "/sys/module/module/parameters/sig_enforce");
  const sigEnforce = sig === null ? null : sig === "Y" || sig === "1";
  return {
    efi,
    secureBoot,
    lockdown,
    sigEnforce,
    refusesUnsignedModules:
      secureBoot === true || (lockdown !== null && lockdown !== "none") || sigEnforce === true,
  };
}

/**
 * `mokutil --sb-state`, only for an EFI host whose efivars cannot be read (efivarfs not mounted):
 * the one case where a file read cannot answer. Missing mokutil or odd output gives null.
 */
export async function probeSecureBootWithMokutil(exec: Exec): Promise<boolean | null> {
  try {
    const r = await exec.run(["mokutil", "--sb-state"], { reject: false, timeoutMs: 5000 });
    const out = `${r.stdout}\n${r.stderr}`;
    if (/SecureBoot enabled/i.test(out)) return true;
    if (/SecureBoot disabled/i.test(out)) return false;
    return null;
  } catch {
    return null;
  }
}
