import { UserError } from "../core/errors.js";
import { redactUrl } from "../core/redact.js";
import { GIT_URL_SCHEMES, gitRefProblem, urlProblem } from "../recipe/safe-text.js";

/**
 * The last check before a URL or ref reaches git's argv. The recipe schema refuses the same
 * values with file:line:col; this guards every other way in (catalogs, state, callers), so a value
 * that would read as an option (`-u...`, `--upload-pack=`) or run a remote helper (`ext::`) never
 * reaches git. The argv builders also put URLs after `--`.
 */
export function checkedGitUrl(url: string, what: string): string {
  const p = urlProblem(url, GIT_URL_SCHEMES);
  if (p)
    throw new UserError(
      `${what} "${redactUrl(url)}" ${p}`,
      "give an https://, http://, git://, ssh:// or file:// URL, or user@host:path",
    );
  return url;
}

export function checkedGitRef(ref: string, what: string): string {
  const p = gitRefProblem(ref);
  if (p) throw new UserError(`${what} "${ref}" ${p}`, "give a tag, branch or commit id as git names it");
  return ref;
}

/**
 * Environment for every git run: never prompt (a root tool would hang on a password prompt), and
 * only the transports a recipe may name (git refuses ext::, fd:: and other helpers outright).
 */
export const GIT_ENV: Record<string, string> = {
  GIT_TERMINAL_PROMPT: "0",
  GIT_ALLOW_PROTOCOL: "https:http:git:ssh:file",
};
