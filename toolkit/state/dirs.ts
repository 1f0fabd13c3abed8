import { realpathSync, statfsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { UserError } from "../core/errors.js";

/**
 * Validate a --state-dir or --cache-dir value before anything is created in it. The toolkit writes
 * journals, locks and backups there, so it must be (or be creatable as) a directory on a real
 * filesystem: an empty value, a file, or a kernel pseudo filesystem (/proc, /sys, /dev...) is
 * refused up front. Beyond the bad messages, Node's recursive mkdir loops forever on /proc/x
 * (mkdir gives ENOENT although the parent exists), which is how `--state-dir /proc/x` hung.
 */

/** statfs magic numbers of filesystems that are not storage (linux/magic.h). */
const PSEUDO_FS = new Map<number, string>([
  [0x9fa0, "proc"],
  [0x62656572, "sysfs"],
  [0x1cd1, "devpts"],
  [0x64626720, "debugfs"],
  [0x74726163, "tracefs"],
  [0x73636673, "securityfs"],
  [0x27e0eb, "cgroup"],
  [0x63677270, "cgroup2"],
  [0xcafe4a11, "bpf"],
  [0x62656570, "configfs"],
  [0x6165676c, "pstore"],
  [0xde5e81e4, "efivarfs"],
  [0x42494e4d, "binfmt_misc"],
  [0x19800202, "mqueue"],
  [0x65735543, "fusectl"],
]);

/** Prefixes refused whatever statfs says (devtmpfs reports tmpfs's magic). */
const PSEUDO_PREFIXES = ["/proc", "/sys", "/dev"];

const under = (p: string, prefix: string): boolean => p === prefix || p.startsWith(`${prefix}/`);

export type DirKind = "state" | "cache";

const PURPOSE: Record<DirKind, string> = {
  state: "the journal, lock, backups and installed.json",
  cache: "downloads, sources and builds",
};

/**
 * Check `value` of `flag` (e.g. "--state-dir") and return it as an absolute path. The directory
 * may not exist yet (it is created on first use), but its nearest existing ancestor must be a
 * directory on a storage filesystem.
 */
export function checkDirOption(flag: string, value: string, kind: DirKind): string {
  const what = `${flag} ${JSON.stringify(value)}`;
  const fix = `pass a directory on a real filesystem for ${PURPOSE[kind]}${kind === "state" ? " (default /var/lib/netmap-provision)" : ""}`;
  if (value.trim() === "") throw new UserError(`${flag} is empty`, fix);
  if (value.includes("\0")) throw new UserError(`${what} contains a NUL byte`, fix);
  const abs = resolve(value);
  // The nearest existing path: the dir itself, or the ancestor it would be created in.
  let existing = abs;
  for (;;) {
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(existing);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOTDIR")
        throw new UserError(`${what}: a part of the path is a file, not a directory`, fix);
      if (code !== "ENOENT") throw new UserError(`${what}: cannot use it: ${(e as Error).message}`, fix, e);
    }
    if (st) {
      if (!st.isDirectory())
        throw new UserError(
          existing === abs ? `${what} is not a directory` : `${what}: ${existing} is not a directory`,
          fix,
        );
      break;
    }
    const up = dirname(existing);
    if (up === existing) break;
    existing = up;
  }
  let real = existing;
  try {
    real = realpathSync(existing);
  } catch {
    // keep the unresolved path; the prefix and statfs checks still apply
  }
  const prefix = PSEUDO_PREFIXES.find((p) => under(real, p) || under(abs, p));
  let fs: string | undefined;
  try {
    fs = PSEUDO_FS.get(Number(statfsSync(real).type));
  } catch {
    fs = undefined;
  }
  if (prefix || fs)
    throw new UserError(
      `${what} is on ${fs ? `a ${fs} filesystem` : prefix}, which holds kernel or device state, not files`,
      fix,
    );
  return abs;
}

/** checkDirOption when the flag was given; undefined stays undefined (the default applies). */
export function checkDirFlag(flag: string, value: string | undefined, kind: DirKind): string | undefined {
  return value === undefined ? undefined : checkDirOption(flag, value, kind);
}
