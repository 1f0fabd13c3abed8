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

/**
 * A git ref name that is safe to pass as one argv element: a subset of git check-ref-format
 * (letters, digits, `. _ / + -`; no `..`, `//`, `/.`, `@{`, no leading `.` `/` `-`, no trailing
 * `/` `.` or `.lock`), never starting with `-`.
 */
export function gitRefProblem(s: string): string | undefined {
  if (s.length === 0) return "is empty";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u001f\u007f]/.test(s)) return "contains a control character";
  if (s.startsWith("-")) return 'starts with "-" (it would be read as an option)';
  const meta = firstShellMeta(s);
  if (meta) return `contains ${meta}, a shell metacharacter`;
  if (/\s/.test(s)) return "contains whitespace";
  if (s.length > 255) return "is longer than 255 characters";
  if (
    s.includes("..") ||
    s.includes("//") ||
    s.includes("/.") ||
    s.includes("@{") ||
    s === "@" ||
    /[~^:?*[]/.test(s) ||
    /^[./]/.test(s) ||
    /[/.]$/.test(s) ||
    s.endsWith(".lock")
  )
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

/** The URL forms a git source may use ("scp": `[user@]host:path`). */
export const GIT_URL_SCHEMES = ["https", "http", "git", "ssh", "file", "scp"] as const;

/** `<transport>::<address>`: git hands the address to a remote helper (`ext::` runs a command). */
const TRANSPORT_HELPER = /^[A-Za-z0-9][A-Za-z0-9+.-]*::/;

/** scp-like `[user@]host:path` (no `://`, a colon before any slash), as git reads it. */
const SCP_LIKE = /^(?:([^@/]*)@)?(\[[^\]/]*\]|[^:/[]*):(.*)$/;

/**
 * Why a user name or host from a URL would reach ssh (or curl) as an option, or not be a host:
 * empty, starting with `-` (also once %-decoded: `%2d`), or holding characters no host has.
 */
function endpointProblem(what: "host" | "user name", raw: string): string | undefined {
  let v = raw;
  try {
    v = decodeURIComponent(raw);
  } catch {
    return `has a malformed %-escape in its ${what}`;
  }
  if (v.startsWith("-")) return `has a ${what} starting with "-" (ssh would read it as an option)`;
  if (what === "host" && !/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9._-]*)(:\d{1,5})?$/.test(v))
    return `has a host "${v}" that is not a host name or address`;
  return undefined;
}

/**
 * A URL for git or a download: https/http/git/ssh/file URLs, or (with "scp" allowed) scp-like
 * `[user@]host:path`. Refused: a leading `-` (git would read an option), `<transport>::` forms
 * (remote helpers such as `ext::` run programs), a user or host starting with `-` (ssh options
 * such as `-oProxyCommand=`), control characters, whitespace and shell metacharacters.
 * Credentials (`https://user:password@host`) are allowed; callers show the URL through redactUrl.
 */
export function urlProblem(s: string, allowed: readonly string[]): string | undefined {
  if (s.length === 0) return "is empty";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u001f\u007f]/.test(s)) return "contains a control character";
  if (s.startsWith("-")) return 'starts with "-" (git would read it as an option)';
  if (TRANSPORT_HELPER.test(s))
    return `uses git's "${s.slice(0, s.indexOf("::"))}::" remote-helper form, which runs a program; give a plain URL`;
  if (/\s/.test(s)) return "contains whitespace";
  const meta = firstShellMeta(s);
  if (meta) return `contains ${meta}, a shell metacharacter`;
  if (s.length > 2048) return "is longer than 2048 characters";
  if (!s.includes("://")) {
    const scp = allowed.includes("scp") ? SCP_LIKE.exec(s) : null;
    if (!scp) return "is not a URL";
    const [, user, host = "", path = ""] = scp;
    if (user !== undefined) {
      if (user === "") return "has an empty user name before @";
      const p = endpointProblem("user name", user);
      if (p) return p;
    }
    const hp = endpointProblem("host", host);
    if (hp) return hp;
    if (path === "") return "has no path after the colon";
    if (path.startsWith("-")) return 'has a path starting with "-"';
    return undefined;
  }
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return "is not a URL";
  }
  const scheme = u.protocol.replace(/:$/, "");
  if (!allowed.includes(scheme)) return `uses "${scheme}:"; expected one of ${allowed.join(", ")}`;
  // The authority as written (git parses the raw string, not WHATWG's normalised form).
  const authority = s.slice(s.indexOf("://") + 3).split(/[/?#]/, 1)[0] ?? "";
  const at = authority.lastIndexOf("@");
  const host = at < 0 ? authority : authority.slice(at + 1);
  if (at >= 0) {
    const user = authority.slice(0, at).split(":", 1)[0] ?? "";
    const p = endpointProblem("user name", user);
    if (p) return p;
  }
  if (scheme === "file") {
    if (host !== "" && host !== "localhost") return 'has a host; file URLs look like "file:///path/to/repo"';
    return undefined;
  }
  if (host === "") return "has no host";
  return endpointProblem("host", host);
}
