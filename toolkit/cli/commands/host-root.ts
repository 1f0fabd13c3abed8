import { statSync } from "node:fs";
import { resolve } from "node:path";
import { UserError } from "../../core/errors.js";

/** Validate --root: "/" for the real host, or an existing directory holding a host tree (tests, sysroots). */
export function hostRootOption(value: string | undefined): string {
  if (value === undefined || value === "/") return "/";
  const abs = resolve(value);
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir)
    throw new UserError(
      `--root ${value}: not a directory`,
      "pass the directory holding the host tree (etc/, proc/, sys/, lib/modules/), or omit --root for this host",
    );
  return abs;
}
