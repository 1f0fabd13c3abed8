import {
  cpSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fixture } from "./paths.js";

/** A fixture host tree (test/fixtures/hosts/<name>), read through --root / underRoot. */
export const hostTree = (name: string): string => fixture("hosts", name);

/** A writable copy of a fixture host tree, for tests that remove or add a file. */
export function copyHostTree(name: string): string {
  const dest = join(mkdtempSync(join(tmpdir(), `np-host-${name}-`)), name);
  copyHostTreeTo(name, dest);
  return dest;
}

/**
 * Copy a fixture host tree, links inside it kept as links (sysfs is made of them). Some fixture
 * trees share another tree's files through a link that climbs out (`usr/sbin ->
 * ../../debian12-e1000/usr/sbin`); in the copy that link would dangle, so its target is copied in.
 */
export function copyHostTreeTo(name: string, to: string): void {
  const from = hostTree(name);
  cpSync(from, to, { recursive: true, verbatimSymlinks: true });
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(to, rel))) {
      const r = join(rel, name);
      const st = lstatSync(join(to, r));
      if (st.isDirectory()) walk(r);
      else if (st.isSymbolicLink()) {
        const link = readlinkSync(join(to, r));
        const target = resolve(dirname(join(from, r)), link);
        // Absolute links (a kernel's build link) are the host's own business: kept as they are.
        if (!isAbsolute(link) && relative(from, target).startsWith("..") && existsSync(target)) {
          rmSync(join(to, r));
          cpSync(target, join(to, r), { recursive: true, dereference: true });
        }
      }
    }
  };
  walk("");
}

/**
 * The kernel release every fixture host tree captures (debian12-e1000's /proc/sys/kernel/osrelease,
 * 6.1.0-56-amd64): a fixed recording, not the kernel installed here (for that, see debian-kernel.ts).
 * Tests that need some release for synthetic records use it too, so no test names one literally.
 */
export const FIXTURE_RELEASE: string = readFileSync(
  join(hostTree("debian12-e1000"), "proc/sys/kernel/osrelease"),
  "utf8",
).trim();

/**
 * Make a copy of a Debian fixture host headerless: its kernel's build/source links and the
 * linux-headers dirs gone (and linux-source-6.1 too unless `keepSources`), as on a host where
 * only the kernel image is installed.
 */
export function removeKernelHeaders(root: string, o: { keepSources?: boolean } = {}): void {
  const paths = [
    `lib/modules/${FIXTURE_RELEASE}/build`,
    `lib/modules/${FIXTURE_RELEASE}/source`,
    `usr/src/linux-headers-${FIXTURE_RELEASE}`,
    `usr/src/linux-headers-${FIXTURE_RELEASE.replace(/-[^-]+$/, "-common")}`,
    ...(o.keepSources ? [] : ["usr/src/linux-source-6.1"]),
  ];
  for (const p of paths) rmSync(join(root, p), { recursive: true, force: true });
}

/**
 * netmap-loaded as netmap's old layout leaves a host (the seed recipe, netmap v11.0): the module
 * is netmap_lin (in /proc/modules, used by the patched e1000, with /sys/module/netmap_lin), while
 * the misc device it registers is still "netmap" (/proc/misc, /dev/netmap). installed.json
 * records netmap_lin as netmap's module. A writable copy: remove dirname(root) when done.
 */
export function legacyNetmapHost(): string {
  const root = copyHostTree("netmap-loaded");
  const modules = join(root, "proc/modules");
  writeFileSync(modules, readFileSync(modules, "utf8").replace(/^netmap /m, "netmap_lin "));
  renameSync(join(root, "sys/module/netmap"), join(root, "sys/module/netmap_lin"));
  const installed = join(root, "var/lib/netmap-provision/installed.json");
  const rec = JSON.parse(readFileSync(installed, "utf8"));
  rec.netmapModule = "netmap_lin";
  rec.modules[0].module = "netmap_lin";
  rec.modules[0].path = rec.modules[0].path.replace(/netmap\.ko$/, "netmap_lin.ko");
  writeFileSync(installed, `${JSON.stringify(rec, null, 2)}\n`);
  return root;
}
