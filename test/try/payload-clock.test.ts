import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { repoRoot } from "../helpers/paths.js";
import { tempDirs } from "../helpers/temp.js";

const tempDir = tempDirs(test);

/** The payload's own now_ms, run by busybox's sh (the guest's shell) on a given /proc/uptime text. */
function nowMs(uptime: string): string {
  const script = readFileSync(join(repoRoot, "toolkit", "try", "guest-payload.sh"), "utf8");
  const fn = /^now_ms\(\) \{\n[\s\S]*?\n\}$/m.exec(script)?.[0];
  if (!fn) throw new Error("guest-payload.sh has no now_ms() function");
  const dir = tempDir("np-clock-");
  writeFileSync(join(dir, "uptime"), `${uptime} 1.00\n`);
  const body = `${fn.replaceAll("/proc/uptime", join(dir, "uptime"))}\nnow_ms\n`;
  return execFileSync("busybox", ["sh", "-c", body], { encoding: "utf8" }).trim();
}

test("the guest payload's clock reads uptimes whose fraction starts with 0 (not octal)", (t) => {
  t.is(nowMs("123.08"), "123080");
  t.is(nowMs("123.09"), "123090");
  t.is(nowMs("0.00"), "0");
  t.is(nowMs("7.50"), "7500");
  t.is(nowMs("986.99"), "986990");
});
