/**
 * Secrets in URLs. A recipe may carry `https://user:password@host/...` (a private mirror); the toolkit
 * uses it as given but never prints the password: plan, errors, logs and JSON all go through here.
 */

/** `scheme://` then the authority (up to the last `@` before a path, query, fragment or delimiter). */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#"'<>\\]*)@/gi;

/** Shown in place of a password. */
export const REDACTED = "***";

function redactUserinfo(_m: string, scheme: string, userinfo: string): string {
  const colon = userinfo.indexOf(":");
  // No colon: a user name only (kept, as agreed); with one: everything after it is the secret.
  if (colon < 0) return `${scheme}${userinfo}@`;
  return `${scheme}${userinfo.slice(0, colon)}:${REDACTED}@`;
}

/** Replace the password of every `scheme://user:password@host` in `text` with `***` (user kept). */
export function redactSecrets(text: string): string {
  if (!text.includes("://")) return text;
  return text.replace(URL_USERINFO, redactUserinfo);
}

/** One URL as it may be shown: the password (if any) replaced with `***`. */
export function redactUrl(url: string): string {
  return redactSecrets(url);
}

/** Every string of an argv made showable (for plans, logs and error messages). */
export function redactArgv(argv: readonly string[]): string[] {
  return argv.map(redactSecrets);
}

/** A copy of `v` with redactSecrets applied to every string in it (plans, files a bundle carries). */
export function redactDeep<T>(v: T): T {
  if (typeof v === "string") return redactSecrets(v) as T;
  if (Array.isArray(v)) return v.map(redactDeep) as T;
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactDeep(x)])) as T;
  return v;
}
