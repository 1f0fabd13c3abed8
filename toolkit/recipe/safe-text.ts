/**
 * Checks for the strings a recipe hands to commands. Commands always run as argv arrays, but
 * recipes are shared between people and hosts: refusing shell metacharacters, option-looking
 * values and `..` segments up front keeps a recipe from ever meaning more than it says.
 */

/** Characters that mean something to a shell: `; | & $ \` < > ( ) { }`, backslash, quotes, newlines. */
export const SHELL_META = /[;|&$`<>(){}\\'"\n\r]/;

/** Name the first shell metacharacter in `s`, for the error message ("`;`", "newline"). */
export function firstShellMeta(s: string): string | undefined {
  const m = SHELL_META.exec(s);
  if (!m) return undefined;
  const c = m[0];
  if (c === "\n" || c === "\r") return "a newline";
  return `"${c}"`;
}

/** A recipe or fragment name: lower-case letters, digits, `.`, `_`, `-`; not starting with `.` or `-`. */
export const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;

/**
 * A Linux interface name as the kernel accepts it (dev_valid_name): 1..15 bytes, not "." or
 * "..", no `/`, `:` or whitespace. We also refuse a leading `-` (it would read as an option).
 */
export function ifnameProblem(s: string): string | undefined {
  if (s.length === 0) return "is empty";
  if (s.length > 15) return `is ${s.length} characters; Linux interface names are at most 15`;
  if (s === "." || s === "..") return `"${s}" is not a valid interface name`;
  const meta = firstShellMeta(s);
  if (meta) return `contains ${meta}, a shell metacharacter`;
  if (/\s/.test(s)) return "contains whitespace";
  if (s.includes("/")) return 'contains "/"';
  if (s.includes(":")) return 'contains ":" (alias labels are not interfaces)';
  if (s.startsWith("-")) return 'starts with "-"';
  return undefined;
}

/** A git ref name that is safe to pass as one argv element (a subset of git check-ref-format). */
export function gitRefProblem(s: string): string | undefined {
  const meta = firstShellMeta(s);
  if (meta) return `contains ${meta}, a shell metacharacter`;
  if (/\s/.test(s)) return "contains whitespace";
  if (s.startsWith("-")) return 'starts with "-" (it would be read as an option)';
  if (s.includes("..") || /[~^:?*[]/.test(s) || s.endsWith(".lock") || s.endsWith("/"))
    return "is not a valid git ref name";
  if (!/^[A-Za-z0-9._/+-]+$/.test(s)) return "is not a valid git ref name";
  return undefined;
}

/**
 * A path field: absolute or relative to the recipe file. No `..` segment (a shared recipe must not
 * reach out of the tree it names), no `~` (no shell expands it here), no control characters.
 */
export function pathProblem(s: string): string | undefined {
  if (s.length === 0) return "is empty";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u001f]/.test(s)) return "contains a control character (newline, tab, NUL)";
  if (s.split("/").includes("..")) return 'contains a ".." segment (path traversal)';
  if (s.startsWith("~")) return 'starts with "~", which nothing expands here';
  return undefined;
}

/** A URL for git or a download: https/http/git/ssh/file URLs, or scp-like `user@host:path`. */
export function urlProblem(s: string, allowed: readonly string[]): string | undefined {
  const meta = firstShellMeta(s);
  if (meta) return `contains ${meta}, a shell metacharacter`;
  if (/\s/.test(s)) return "contains whitespace";
  if (allowed.includes("scp") && /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~+-]+$/.test(s))
    return undefined;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return "is not a URL";
  }
  const scheme = u.protocol.replace(/:$/, "");
  if (!allowed.includes(scheme)) return `uses "${scheme}:"; expected one of ${allowed.join(", ")}`;
  return undefined;
}
