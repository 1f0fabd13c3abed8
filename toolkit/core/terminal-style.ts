/**
 * Colour for human output: only on a terminal, without NO_COLOR, and not for TERM=dumb. Used by
 * every renderer (plan, try, the CLI); the CLI's output.ts makes the rest of the text safe.
 */
export const useColor = (): boolean =>
  Boolean(process.stdout.isTTY) && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb";

// The SGR codes paint emits: the only escape sequences the human writers let through.
export const SGR = ["0", "1", "2", "31", "32", "33"] as const;
const paint = (code: (typeof SGR)[number]) => (s: string) =>
  useColor() ? `\u001b[${code}m${s}\u001b[0m` : s;
export const color = {
  red: paint("31"),
  green: paint("32"),
  yellow: paint("33"),
  dim: paint("2"),
  bold: paint("1"),
};

/** A one-word status, coloured when allowed: "ok", "warn", "fail", "skip", "info". */
export function badge(status: "ok" | "warn" | "fail" | "skip" | "info" | "blocked"): string {
  const word = status.toUpperCase().padEnd(7);
  if (status === "ok") return color.green(word);
  if (status === "warn") return color.yellow(word);
  if (status === "fail" || status === "blocked") return color.red(word);
  return color.dim(word);
}
