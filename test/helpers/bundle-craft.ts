import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { type CraftEntry, craftTar } from "./tar-craft.js";

/**
 * Build bundles as `build --out` lays them out (BUNDLE, manifest.json, recipe.resolved.json,
 * artifacts/...), taken apart so a test can make one thing hostile and put it back together:
 * the corpus starts from tiny ELF stand-ins, the guest tier from the real stand-in bundle.
 */

const FORMAT = "netmap-provision build bundle 1\n";
// biome-ignore lint/suspicious/noExplicitAny: a manifest is edited field by field in the cases
export type Json = any;

export interface BundleParts {
  manifest: Json;
  recipe: Json;
  /** Artifact path (relative to artifacts/) -> bytes and mode. */
  files: Map<string, { data: Buffer; mode: number }>;
}

export const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/**
 * The smallest ELF file the toolkit takes for a kernel module: a relocatable ELF64 object with a
 * `.modinfo` section of NUL-separated key=value strings (what modpost writes).
 */
export function fakeKo(info: Record<string, string>): Buffer {
  const modinfo = Buffer.from(
    `${Object.entries(info)
      .map(([k, v]) => `${k}=${v}\0`)
      .join("")}`,
    "latin1",
  );
  const shstrtab = Buffer.from("\0.modinfo\0.shstrtab\0", "latin1");
  const modinfoOff = 64;
  const strOff = modinfoOff + modinfo.length;
  const shoff = Math.ceil((strOff + shstrtab.length) / 8) * 8;
  const buf = Buffer.alloc(shoff + 3 * 64);
  buf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  buf.writeUInt16LE(1, 16); // ET_REL
  buf.writeUInt16LE(62, 18); // x86-64
  buf.writeUInt32LE(1, 20);
  buf.writeBigUInt64LE(BigInt(shoff), 40);
  buf.writeUInt16LE(64, 52);
  buf.writeUInt16LE(64, 58);
  buf.writeUInt16LE(3, 60);
  buf.writeUInt16LE(2, 62);
  modinfo.copy(buf, modinfoOff);
  shstrtab.copy(buf, strOff);
  const sh = (i: number, name: number, type: number, off: number, size: number) => {
    const o = shoff + i * 64;
    buf.writeUInt32LE(name, o);
    buf.writeUInt32LE(type, o + 4);
    buf.writeBigUInt64LE(BigInt(off), o + 24);
    buf.writeBigUInt64LE(BigInt(size), o + 32);
  };
  sh(1, 1, 1, modinfoOff, modinfo.length);
  sh(2, 10, 3, strOff, shstrtab.length);
  return buf;
}

export const vermagicOf = (release: string): string => `${release} SMP preempt mod_unload modversions`;

/** A bundle of ELF stand-ins for `release`: netmap, e1000 (depends on netmap) and pkt-gen. */
export function fakeBundleParts(release: string): BundleParts {
  const vermagic = vermagicOf(release);
  const netmap = fakeKo({ vermagic, name: "netmap", license: "GPL" });
  const e1000 = fakeKo({ vermagic, name: "e1000", depends: "netmap", license: "GPL" });
  const app = Buffer.from("\x7fELF fake pkt-gen\n", "latin1");
  const files = new Map([
    ["netmap.ko", { data: netmap, mode: 0o644 }],
    ["e1000/e1000.ko", { data: e1000, mode: 0o644 }],
    ["build-apps/pkt-gen/pkt-gen", { data: app, mode: 0o755 }],
  ]);
  const mod = (path: string, name: string, data: Buffer, depends: string[]) => ({
    path,
    name,
    sha256: sha256(data),
    size: data.length,
    vermagic,
    depends,
  });
  return {
    manifest: {
      schema: 1,
      kernelRelease: release,
      netmapId: `tree:${"ab".repeat(32)}`,
      netmapModule: "netmap",
      native: ["e1000"],
      emulated: [],
      modules: [
        mod("netmap.ko", "netmap", netmap, []),
        { ...mod("e1000/e1000.ko", "e1000", e1000, ["netmap"]), driver: "e1000" },
      ],
      apps: [{ name: "pkt-gen", path: "build-apps/pkt-gen/pkt-gen", sha256: sha256(app) }],
      createdAt: "2026-01-01T00:00:00.000Z",
    },
    recipe: { name: "default" },
    files,
  };
}

/** A real bundle (a plain tar written by `build --out`) taken apart. */
export function readBundleParts(file: string): BundleParts {
  const dir = mkdtempSync(join(tmpdir(), "np-bundle-parts-"));
  try {
    execFileSync("tar", ["--force-local", "-xf", file, "-C", dir]);
    const files = new Map<string, { data: Buffer; mode: number }>();
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else
          files.set(relative(join(dir, "artifacts"), p), {
            data: readFileSync(p),
            mode: statSync(p).mode & 0o777,
          });
      }
    };
    walk(join(dir, "artifacts"));
    return {
      manifest: JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")),
      recipe: JSON.parse(readFileSync(join(dir, "recipe.resolved.json"), "utf8")),
      files,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A deep copy to edit. */
export function cloneParts(p: BundleParts): BundleParts {
  return {
    manifest: structuredClone(p.manifest),
    recipe: structuredClone(p.recipe),
    files: new Map([...p.files].map(([k, v]) => [k, { data: Buffer.from(v.data), mode: v.mode }])),
  };
}

/** The tar members of a bundle, in writeBundle's order (directories before their files). */
export function bundleEntries(
  p: BundleParts,
  o: { manifestText?: string; recipeText?: string; extra?: CraftEntry[] } = {},
): CraftEntry[] {
  const entries: CraftEntry[] = [
    { name: "BUNDLE", data: FORMAT },
    { name: "manifest.json", data: o.manifestText ?? `${JSON.stringify(p.manifest, null, 2)}\n` },
    { name: "recipe.resolved.json", data: o.recipeText ?? `${JSON.stringify(p.recipe)}\n` },
    { name: "artifacts/", type: "dir" },
  ];
  const dirs = new Set<string>();
  for (const [path, f] of [...p.files].sort(([a], [b]) => a.localeCompare(b))) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!dirs.has(d)) entries.push({ name: `artifacts/${d}/`, type: "dir" });
      dirs.add(d);
    }
    entries.push({ name: `artifacts/${path}`, data: f.data, mode: f.mode });
  }
  return [...entries, ...(o.extra ?? [])];
}

export const bundleTar = (p: BundleParts, o: Parameters<typeof bundleEntries>[1] = {}): Buffer =>
  craftTar(bundleEntries(p, o));

/** Replace one artifact's bytes and keep the manifest's sha256/size in step (so only the bytes are wrong). */
export function withArtifact(p: BundleParts, path: string, data: Buffer, mode?: number): BundleParts {
  const q = cloneParts(p);
  const prev = q.files.get(path);
  q.files.set(path, { data, mode: mode ?? prev?.mode ?? 0o644 });
  for (const a of [...q.manifest.modules, ...q.manifest.apps])
    if (a.path === path) {
      a.sha256 = sha256(data);
      if ("size" in a) a.size = data.length;
    }
  return q;
}

export interface HostileBundle {
  id: string;
  /** The archive's bytes. */
  bytes: Buffer;
  /** What the refusal must say. */
  message: RegExp;
}

/**
 * The crafted bundles every tier refuses (the guest tier runs the first four, the must-hold):
 * each is the base bundle with one thing made hostile.
 */
export function hostileBundles(base: BundleParts): HostileBundle[] {
  const netmap = base.manifest.modules.find((m: Json) => m.name === base.manifest.netmapModule);
  const netmapPath: string = netmap.path;
  const other = base.manifest.modules.find((m: Json) => m !== netmap);
  const release: string = base.manifest.kernelRelease;
  const traversing = cloneParts(base);
  traversing.manifest.modules.find((m: Json) => m.name === other.name).name = "../../../../tmp/x";
  const symlinked = bundleEntries(base).map((e) =>
    e.name === `artifacts/${netmapPath}`
      ? { name: e.name, type: "symlink" as const, linkname: "/etc/hostname" }
      : e,
  );
  // Any release but the bundle's (derived: no distro release named here).
  const otherRelease = `1.0.0-not-${release}`;
  const wrongKo = fakeKo({ vermagic: vermagicOf(otherRelease), name: netmap.name });
  const wv = withArtifact(base, netmapPath, wrongKo);
  const wrongRelease = withArtifact(base, netmapPath, wrongKo);
  for (const m of wrongRelease.manifest.modules)
    if (m.path === netmapPath) m.vermagic = vermagicOf(otherRelease);
  const hostPath = cloneParts(base);
  hostPath.manifest.modules[0].path = "/etc/hostname";
  const climbing = cloneParts(base);
  climbing.manifest.modules[0].path = "../../../../etc/hostname.ko";
  const setuid = cloneParts(base);
  const app = base.manifest.apps[0]?.path as string | undefined;
  if (app) setuid.files.set(app, { data: base.files.get(app)?.data ?? Buffer.alloc(1), mode: 0o4755 });
  const renamed = cloneParts(base);
  renamed.manifest.modules.find((m: Json) => m.name === other.name).name = "evil";
  const manifestText = `${JSON.stringify(base.manifest, null, 2)}\n`;
  const tar = (entries: CraftEntry[]) => craftTar(entries);
  const cases: HostileBundle[] = [
    {
      id: "traversing-module-name",
      bytes: bundleTar(traversing),
      message: /manifest\.json in .*: modules\.\d+\.name: a module name is letters, digits/,
    },
    {
      id: "symlink-to-host-file",
      bytes: tar(symlinked),
      message: new RegExp(
        `member "artifacts/${netmapPath}" is a symbolic link to "/etc/hostname", which a build bundle never holds`,
      ),
    },
    {
      id: "non-elf-module",
      bytes: bundleTar(withArtifact(base, netmapPath, Buffer.from("#!/bin/sh\necho not a module\n"))),
      message: new RegExp(`module ${netmap.name} \\(artifacts/${netmapPath}\\) is not an ELF file`),
    },
    {
      id: "device-node",
      bytes: tar(bundleEntries(base, { extra: [{ name: "artifacts/null", type: "char" }] })),
      message: /member "artifacts\/null" is a character device, which a build bundle never holds/,
    },
    {
      id: "traversing-member",
      bytes: tar(bundleEntries(base, { extra: [{ name: "../../../../tmp/np-hostile-x", data: "x" }] })),
      message: /member "\.\.\/\.\.\/\.\.\/\.\.\/tmp\/np-hostile-x" has a "\.\." segment/,
    },
    {
      id: "absolute-member",
      bytes: tar(bundleEntries(base, { extra: [{ name: "/tmp/np-hostile-x", data: "x" }] })),
      message: /member "\/tmp\/np-hostile-x" is an absolute path/,
    },
    {
      id: "symlink-out-then-file-through-it",
      bytes: tar(
        bundleEntries(base, {
          extra: [
            { name: "artifacts/out", type: "symlink", linkname: "../../outside" },
            { name: "artifacts/out/pwned", data: "x" },
          ],
        }),
      ),
      message:
        /member "artifacts\/out" is a symbolic link to "\.\.\/\.\.\/outside", which a build bundle never holds/,
    },
    {
      id: "hardlink-to-host-file",
      bytes: tar(
        bundleEntries(base, {
          extra: [{ name: "artifacts/h", type: "hardlink", linkname: "/etc/hostname" }],
        }),
      ),
      message: /member "artifacts\/h" is a hard link to "\/etc\/hostname"/,
    },
    {
      id: "fifo",
      bytes: tar(bundleEntries(base, { extra: [{ name: "artifacts/pipe", type: "fifo" }] })),
      message: /member "artifacts\/pipe" is a FIFO/,
    },
    ...(app
      ? [
          {
            id: "setuid-app",
            bytes: bundleTar(setuid),
            message: new RegExp(`member "artifacts/${app}" has the setuid bit set \\(mode 4755\\)`),
          },
        ]
      : []),
    {
      id: "wrong-vermagic",
      bytes: bundleTar(wv),
      message: new RegExp(
        `has vermagic "${reEsc(otherRelease)} SMP[^"]*", but the manifest says "${reEsc(netmap.vermagic.trim())}"`,
      ),
    },
    {
      id: "vermagic-of-another-release",
      bytes: bundleTar(wrongRelease),
      message: new RegExp(
        `was built for "${reEsc(otherRelease)}", but the manifest's kernel release is ${reEsc(release)}`,
      ),
    },
    {
      id: "module-calls-itself-otherwise",
      bytes: bundleTar(renamed),
      message: new RegExp(`calls itself "${other.name}", not "evil"`),
    },
    {
      id: "manifest-path-to-host-file",
      bytes: bundleTar(hostPath),
      message: /modules\.0\.path: path "\/etc\/hostname" is absolute/,
    },
    {
      id: "manifest-path-climbing",
      bytes: bundleTar(climbing),
      message: /modules\.0\.path: path "\.\.\/\.\.\/\.\.\/\.\.\/etc\/hostname\.ko" has a "\.\." segment/,
    },
    {
      id: "truncated-manifest",
      bytes: bundleTar(base, { manifestText: manifestText.slice(0, manifestText.length / 2) }),
      message: /manifest\.json in .* is not valid JSON \(truncated or damaged\?\)/,
    },
    {
      id: "malformed-recipe",
      bytes: bundleTar(base, { recipeText: "{not json" }),
      message: /recipe\.resolved\.json in .* is not valid JSON/,
    },
    {
      id: "not-in-layout",
      bytes: tar(bundleEntries(base, { extra: [{ name: "etc/cron.d/x", data: "x" }] })),
      message: /member "etc\/cron\.d\/x" is not part of a build bundle/,
    },
    {
      id: "sha256-mismatch",
      bytes: bundleTar(base, {
        manifestText: manifestText.replace(netmap.sha256, "0".repeat(64)),
      }),
      message: new RegExp(`artifacts/${netmapPath} has sha256 ${netmap.sha256}, the manifest says 0{64}`),
    },
  ];
  return cases;
}

const reEsc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
