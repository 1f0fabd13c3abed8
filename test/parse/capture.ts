import { readFileSync } from "node:fs";
import { fixture } from "../helpers/paths.js";

/** A real capture from test/fixtures/captures (see its README.md for where they come from). */
export const capture = (name: string): string => readFileSync(fixture("captures", name), "utf8");

/** The guest capture, split on its `### <title>` section markers. */
export function guestSections(): Map<string, string> {
  const out = new Map<string, string>();
  let title = "";
  let body: string[] = [];
  for (const line of capture("guest-swap-verify-rollback-6.1.192.log").split("\n")) {
    const m = /^### (.*)$/.exec(line);
    if (m) {
      if (title) out.set(title, body.join("\n"));
      title = m[1] ?? "";
      body = [];
    } else body.push(line);
  }
  if (title) out.set(title, body.join("\n"));
  return out;
}

/** A section of the guest capture; fails loudly if the capture changed shape. */
export function section(title: string): string {
  const s = guestSections().get(title);
  if (s === undefined) throw new Error(`no section "### ${title}" in the guest capture`);
  return s;
}

/** Split a section holding `--- tx.log` / `--- rx.log` parts. */
export function subLogs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let name = "";
  let body: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^--- (\S+)$/.exec(line);
    if (m) {
      if (name) out.set(name, body.join("\n"));
      name = m[1] ?? "";
      body = [];
    } else body.push(line);
  }
  if (name) out.set(name, body.join("\n"));
  return out;
}
