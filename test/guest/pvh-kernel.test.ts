import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { createExec } from "../../toolkit/core/exec.js";
import { findGuestKernel } from "../../toolkit/guest/guest-kernel.js";
import { hasPvhEntry, pvhKernel } from "../../toolkit/guest/pvh-kernel.js";
import { debianKernelImage } from "../helpers/debian-kernel.js";

const cacheDir = mkdtempSync(join(tmpdir(), "np-pvh-"));
test.after.always(() => rmSync(cacheDir, { recursive: true, force: true }));

test("random bytes and a truncated ELF header have no PVH entry", (t) => {
  t.false(hasPvhEntry(Buffer.from("not an elf at all, not at all, not at all, not at all, not at all")));
  t.false(hasPvhEntry(Buffer.from([0x7f, 0x45, 0x4c, 0x46])));
});

test("guest: the distribution bzImage yields a cached PVH-bootable vmlinux", async (t) => {
  const { kernel } = findGuestKernel("/", debianKernelImage().release);
  t.false(hasPvhEntry(readFileSync(kernel)), "a bzImage is not an ELF");
  const exec = createExec();
  const vmlinux = await pvhKernel(exec, kernel, cacheDir);
  t.not(vmlinux, kernel);
  t.true(vmlinux.startsWith(cacheDir));
  t.true(hasPvhEntry(readFileSync(vmlinux)));
  const mtime = statSync(vmlinux).mtimeMs;
  t.is(await pvhKernel(exec, kernel, cacheDir), vmlinux, "second call reuses the copy");
  t.is(statSync(vmlinux).mtimeMs, mtime);
  t.is(await pvhKernel(exec, "/nonexistent/vmlinuz", cacheDir), "/nonexistent/vmlinuz");
});
