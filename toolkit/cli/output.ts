/**
 * Output conventions shared by every command: --json prints one JSON document on stdout and
 * nothing else there; human output is plain text, coloured only on a terminal without NO_COLOR.
 */
export const useColor = (): boolean =>
  Boolean(process.stdout.isTTY) && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb";

const paint = (code: string) => (s: string) => (useColor() ? `\u001b[${code}m${s}\u001b[0m` : s);
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

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
