/**
 * The kernel catalog: one YAML file per kernel series in kernels/ (named <major>.<minor>.yaml),
 * plus kernels/netmap-upstream.yaml, the netmap commit built by default. Other files in kernels/
 * (e.g. build-tools.yaml) belong to other readers and are left alone.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { RecipeError } from "../core/errors.js";
import { catalogDir } from "../core/paths.js";
import { redactUrl } from "../core/redact.js";
import { GIT_URL_SCHEMES, gitRefProblem, urlProblem } from "../recipe/safe-text.js";
import { kernelRangeSchema } from "./drivers.js";
import { describeRange, kernelVersionNumber, kernelVersionParts, releaseInRange } from "./version-code.js";
import { displayPath, loadYamlFile } from "./yaml-file.js";

const kernelVersion = z
  .string()
  .regex(/^\d+\.\d+(\.\d+)?$/, 'expected a kernel version like "6.1" or "2.6.37"');
const gccVersion = z.string().regex(/^\d+(\.\d+){0,2}$/, 'expected a gcc version like "4.9" or "12"');
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits");
const commitSha = z.string().regex(/^[0-9a-f]{7,40}$/, "expected a commit sha (7 to 40 hex digits)");
const withVersion = z.string().includes("{version}", { message: "must contain {version}" });
/** A git URL as recipes may give it: never one git or ssh would read as an option, nor `ext::`. */
const gitUrl = z.string().superRefine((s, ctx) => {
  const p = urlProblem(s, GIT_URL_SCHEMES);
  if (p) ctx.addIssue({ code: "custom", message: `git URL "${redactUrl(s)}" ${p}` });
});
/** A tag pattern whose tags (with {version} filled in) are sane git refs. */
const tagPattern = withVersion.superRefine((s, ctx) => {
  const p = gitRefProblem(s.replaceAll("{version}", "6.1"));
  if (p) ctx.addIssue({ code: "custom", message: `tag pattern "${s}" ${p}` });
});

/** Where a series' sources can come from. */
const sourceSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("distro-package"),
    distro: z.string().min(1),
    package: z.string().min(1),
    /** Where the package puts the source tarball. */
    file: z.string().startsWith("/").optional(),
    /** Measured checksums of that tarball, per package version. */
    checksums: z.array(z.strictObject({ version: z.string().min(1), sha256 })).optional(),
  }),
  z.strictObject({
    kind: z.literal("kernelorg"),
    urlPattern: withVersion.pipe(z.url()),
    /** kernel.org's signed list of tarball checksums for that directory. */
    checksumsUrl: z.url().optional(),
  }),
  z.strictObject({ kind: z.literal("git"), url: gitUrl, tagPattern }),
]);

const knownGoodSchema = z.strictObject({
  commit: commitSha,
  drivers: z.array(z.string().min(1)).optional(),
  note: z.string().min(1),
});

const knownBadSchema = z.strictObject({
  /** The netmap commit seen failing, or "any" when it fails whatever the commit. */
  commit: z.union([commitSha, z.literal("any")]),
  /** Driver tokens affected; "all" means netmap itself. */
  drivers: z.array(z.string().min(1)).min(1),
  /** Narrower kernel range inside the series, when only some releases are affected. */
  versions: kernelRangeSchema.optional(),
  note: z.string().min(1),
  /** The upstream netmap issue number, when there is one. */
  issue: z.number().int().positive().nullable(),
});

const seriesSchema = z.strictObject({
  /** "6.1", or "6.15+" for an open-ended file. */
  series: z.string().regex(/^\d+\.\d+\+?$/),
  /** The kernel versions this file covers: [from, to). */
  versions: kernelRangeSchema,
  /** The exact release a recipe for this series started from, if any. */
  seed: kernelVersion.optional(),
  distros: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        release: z.string().min(1),
        codename: z.string().optional(),
        /** `uname -r` of the kernel seen there, and its full version. */
        abi: z.string().optional(),
        version: kernelVersion.optional(),
      }),
    )
    .optional(),
  sources: z.array(sourceSchema).min(1),
  compilers: z.strictObject({
    gcc: z.strictObject({ min: gccVersion, max: gccVersion.nullable() }),
    note: z.string().optional(),
  }),
  moduleCompression: z.array(
    z.strictObject({ distro: z.string().min(1), format: z.enum(["none", "xz", "zstd", "gzip"]) }),
  ),
  netmap: z.strictObject({
    knownGood: z.array(knownGoodSchema),
    knownBad: z.array(knownBadSchema),
    note: z.string().optional(),
  }),
  /** .config lines a trimmed kernel build for netmap needs. */
  configFragment: z
    .array(
      z.string().regex(/^(CONFIG_[A-Z0-9_]+=.*|# CONFIG_[A-Z0-9_]+ is not set)$/, "expected a .config line"),
    )
    .optional(),
});

/** One kernel series as the catalog describes it. */
export type KernelSeries = z.output<typeof seriesSchema>;
export type KernelSource = z.output<typeof sourceSchema>;
export type KnownBad = z.output<typeof knownBadSchema>;
export type KnownGood = z.output<typeof knownGoodSchema>;

/** The answer of compilerOk: whether this gcc fits, and what the series needs, for messages. */
export interface CompilerCheck {
  ok: boolean;
  /** "gcc 3.2 to 4.9", "gcc 5.1 or newer", or why nothing is known. */
  need: string;
}

/** The loaded kernel catalog. */
export interface KernelCatalog {
  /** Every series, oldest first. */
  list(): KernelSeries[];
  /** The series covering a kernel version or release ("6.1.192", "6.1.0-56-amd64"). */
  seriesFor(version: string): KernelSeries | undefined;
  /** Known-bad combinations for this kernel and netmap commit (full sha or a prefix of 7+). */
  knownBad(version: string, commit: string): KnownBad[];
  /** Known-good combinations for this kernel and netmap commit. */
  knownGood(version: string, commit: string): KnownGood[];
  /** Whether a gcc version can build this kernel. */
  compilerOk(version: string, gccVersion: string): CompilerCheck;
}

/** A series file name: "6.1.yaml", "2.6.yaml". */
const seriesFilePattern = /^\d+\.\d+\.yaml$/;

/** Same commit when one sha is a prefix of the other (both at least 7 digits). */
export function sameCommit(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return Math.min(x.length, y.length) >= 7 && (x.startsWith(y) || y.startsWith(x));
}

const gccParts = (v: string): number[] => v.split(".").map(Number);

/** Compare a gcc version to a bound over the bound's precision only: "4.9.4" equals "4.9". */
function compareToBound(version: string, bound: string): number {
  const v = gccParts(version);
  const b = gccParts(bound);
  for (let i = 0; i < b.length; i++) {
    const d = (v[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Load every kernels/<major>.<minor>.yaml; throws RecipeError naming the file of a bad entry. */
export function loadKernelCatalog(dir: string = catalogDir("kernels")): KernelCatalog {
  const files = readdirSync(dir).filter((f) => seriesFilePattern.test(f));
  const loaded = files.map((f) => ({
    file: join(dir, f),
    name: f,
    series: loadYamlFile(join(dir, f), seriesSchema),
  }));
  for (const { file, name, series } of loaded) {
    const { major, minor } = kernelVersionParts(series.versions.from);
    if (name !== `${major}.${minor}.yaml`) {
      throw new RecipeError([
        {
          file: displayPath(file),
          line: 1,
          col: 1,
          message: `a series starting at ${series.versions.from} belongs in ${major}.${minor}.yaml, not ${name}`,
          hint: "rename the file or fix versions.from",
        },
      ]);
    }
  }
  loaded.sort(
    (a, b) => kernelVersionNumber(a.series.versions.from) - kernelVersionNumber(b.series.versions.from),
  );
  // Ranges must not overlap, or seriesFor would depend on file order.
  for (let i = 1; i < loaded.length; i++) {
    const prev = loaded[i - 1];
    const cur = loaded[i];
    if (!prev || !cur) continue;
    const prevTo = prev.series.versions.to;
    if (prevTo === null || kernelVersionNumber(prevTo) > kernelVersionNumber(cur.series.versions.from)) {
      throw new RecipeError([
        {
          file: displayPath(cur.file),
          line: 1,
          col: 1,
          message: `versions ${describeRange(cur.series.versions)} overlap ${prev.name} (${describeRange(prev.series.versions)})`,
          hint: "each kernel version must belong to one series file",
        },
      ]);
    }
  }
  const all = loaded.map((l) => l.series);
  const seriesFor = (version: string) => all.find((s) => releaseInRange(version, s.versions));
  return {
    list: () => [...all],
    seriesFor,
    knownBad: (version, commit) =>
      (seriesFor(version)?.netmap.knownBad ?? []).filter(
        (b) =>
          (b.commit === "any" || sameCommit(b.commit, commit)) &&
          (b.versions === undefined || releaseInRange(version, b.versions)),
      ),
    knownGood: (version, commit) =>
      (seriesFor(version)?.netmap.knownGood ?? []).filter((g) => sameCommit(g.commit, commit)),
    compilerOk: (version, gcc) => {
      const s = seriesFor(version);
      if (!s) return { ok: true, need: `unknown: kernel ${version} has no series in the kernel catalog` };
      const { min, max } = s.compilers.gcc;
      const need = max === null ? `gcc ${min} or newer` : `gcc ${min} to ${max}`;
      const ok = compareToBound(gcc, min) >= 0 && (max === null || compareToBound(gcc, max) <= 0);
      return { ok, need };
    },
  };
}

/** Kernels a netmap commit or tag has patches for, both ends included (at major.minor precision). */
const handlesSchema = z.strictObject({ min: kernelVersion, max: kernelVersion });

const upstreamSchema = z.strictObject({
  url: gitUrl,
  commit: z.string().regex(/^[0-9a-f]{40}$/, "expected a full 40-digit commit sha"),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  handles: handlesSchema,
  notes: z.string().optional(),
  tags: z.array(
    z.strictObject({
      tag: z.string().regex(/^v\d+\.\d+$/),
      commit: z.string().regex(/^[0-9a-f]{40}$/),
      date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
      handles: handlesSchema,
      /** netmap_lin.ko up to v11.0, netmap.ko afterwards. */
      module: z.enum(["netmap.ko", "netmap_lin.ko"]),
      /** v11.0 has no configure script, only a Makefile. */
      configure: z.boolean(),
      /** Drivers this tag patches natively within `handles` (the catalog's nativeRanges describe the pin). */
      drivers: z.array(z.string().regex(/^[a-z0-9_]+(\.c)?$/)).optional(),
      notes: z.string().optional(),
    }),
  ),
});

/** The default upstream netmap pin and the table of its tags. */
export type NetmapUpstream = z.output<typeof upstreamSchema>;
export type NetmapHandles = z.output<typeof handlesSchema>;

/** Load kernels/netmap-upstream.yaml. */
export function loadNetmapUpstream(dir: string = catalogDir("kernels")): NetmapUpstream {
  return loadYamlFile(join(dir, "netmap-upstream.yaml"), upstreamSchema);
}

/** Whether a netmap commit/tag with these bounds has patches for a kernel ("6.19.3" is within max "6.19"). */
export function handlesKernel(handles: NetmapHandles, version: string): boolean {
  const v = kernelVersionParts(version);
  const hi = kernelVersionParts(handles.max);
  const seriesOf = (p: { major: number; minor: number }) => p.major * 1000 + p.minor;
  return kernelVersionNumber(version) >= kernelVersionNumber(handles.min) && seriesOf(v) <= seriesOf(hi);
}
