/**
 * Text from outside (a recipe string, an interface name, os-release, file contents quoted in an
 * error) can carry terminal control sequences: ESC ] 0 ; ... BEL retitles the window, ESC [ 2 J
 * clears the screen, others rewrite what the operator reads. Human output shows them as visible
 * escapes instead of sending them to the terminal; newlines and tabs keep their meaning.
 */

// C0 except \t and \n, DEL, C1 (U+0080..U+009F: 8-bit CSI and OSC), and the line/paragraph
// separators some terminals treat as newlines.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we escape
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;

const named: Record<string, string> = { "\r": "\\r", "\u001b": "\\x1b", "\u0007": "\\x07" };

function escapeOne(c: string): string {
  const code = c.charCodeAt(0);
  return named[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`);
}

/** `s` with every control character shown as a `\x1b`-style escape (\n and \t kept). */
export function escapeControl(s: string): string {
  return s.replace(CONTROL, escapeOne);
}

/** True when `s` holds a character escapeControl would escape. */
export function hasControl(s: string): boolean {
  CONTROL.lastIndex = 0;
  const found = CONTROL.test(s);
  CONTROL.lastIndex = 0;
  return found;
}
