/**
 * The driver catalog: one YAML file per netmap driver in drivers/, read and validated here.
 * Adding a driver is a data change: a new file, no code.
 */
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { closest, distance } from "fastest-levenshtein";
import { z } from "zod";
import { RecipeError, UserError } from "../core/errors.js";
import { catalogDir } from "../core/paths.js";
import { type KernelRange, kernelVersionNumber, releaseInRange } from "./version-code.js";
import { displayPath, loadYamlFile } from "./yaml-file.js";

const kernelVersion = z
  .string()
  .regex(/^\d+\.\d+(\.\d+)?$/, 'expected a kernel version like "3.18" or "2.6.32"');

/** A half-open kernel range [from, to), to: null = no upper bound; from must be below to. */
export const kernelRangeSchema = z
  .strictObject({ from: kernelVersion, to: kernelVersion.nullable() })
  .refine((r) => r.to === null || kernelVersionNumber(r.from) < kernelVersionNumber(r.to), {
    message: "empty range: `from` must be below `to` (to is excluded)",
  });

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits");
const withVersion = z.string().includes("{version}", { message: "must contain {version}" });

/** Where configure expects an external driver's sources, and where they come from. */
const externalSchema = z.strictObject({
  /** File name under netmap's LINUX/ext-drivers/ ("igb/v5.10.2.zip", "e1000e-3.8.7.tar.gz"). */
  archive: z.string().min(1),
  /** The version configure uses by default (override: --select-version=<token>:<version>). */
  version: z.string().min(1),
  url: z.url(),
  /** archive and url for another version; absent when only one version exists. */
  archivePattern: withVersion.optional(),
  urlPattern: withVersion.optional(),
  /** null until pinned: the recipe or the download cache must pin it before use. */
  sha256: sha256.nullable(),
  note: z.string().optional(),
});

const driverSchema = z
  .strictObject({
    /** The name configure takes in --drivers= ("e1000", "r8169.c"). */
    token: z.string().regex(/^[a-z0-9_]+(\.c)?$/, "expected a configure driver name like e1000 or veth.c"),
    /** The kernel module the driver builds ("mlx5_core", "virtio_net"). */
    module: z.string().regex(/^[a-z0-9_]+$/, "expected a kernel module name"),
    /** The .config symbol configure checks before building the driver. */
    config: z.string().regex(/^CONFIG_[A-Z0-9_]+$/, "expected a CONFIG_ symbol"),
    /** Where the driver lives in a kernel source tree (modern layout). */
    inTreePath: z.string().regex(/^drivers\//, "expected a path under drivers/"),
    /** Where the driver lived before a kernel version (e1000 was drivers/net/e1000 before 3.2). */
    legacyInTreePath: z
      .strictObject({ before: z.string().regex(/^\d+\.\d+$/), path: z.string().regex(/^drivers\//) })
      .optional(),
    /** internal: configure patches the kernel's own source; external: it builds a downloaded one by default. */
    kind: z.enum(["internal", "external"]),
    external: externalSchema.nullable().optional(),
    /** Kernels for which netmap ships a patch for the kernel's own driver source (vanilla--<d>--LO--HI). */
    nativeRanges: z.array(kernelRangeSchema),
    /** The built module relative to the build dir, "{suffix}" standing for --driver-suffix; null when unknown. */
    output: z.string().includes("{suffix}", { message: "must contain {suffix}" }).endsWith(".ko").nullable(),
    /** The QEMU -device that exercises this driver, if any. */
    qemuNic: z.string().min(1).nullable(),
    /** The first QEMU version with that device, when newer than the 7.2 baseline. */
    minQemu: z
      .string()
      .regex(/^\d+\.\d+$/)
      .optional(),
    pciIds: z
      .array(z.string().regex(/^[0-9a-f]{4}:[0-9a-f]{4}$/, "expected vendor:device in hex"))
      .optional(),
    notes: z.string().optional(),
  })
  .superRefine((d, ctx) => {
    if (d.kind === "external" && !d.external) {
      ctx.addIssue({ code: "custom", path: ["external"], message: "an external driver needs `external:`" });
    }
    if (d.kind === "internal" && d.external) {
      ctx.addIssue({ code: "custom", path: ["external"], message: "an internal driver has no `external:`" });
    }
    if (d.minQemu !== undefined && d.qemuNic === null) {
      ctx.addIssue({ code: "custom", path: ["minQemu"], message: "minQemu without a qemuNic" });
    }
  });

/** One netmap driver as the catalog describes it. */
export type DriverEntry = z.output<typeof driverSchema>;
/** The external-archive part of a DriverEntry. */
export type ExternalDriverSource = z.output<typeof externalSchema>;

/** The loaded driver catalog. */
export interface DriverCatalog {
  /** Every driver, ordered by file name. */
  list(): DriverEntry[];
  /** The driver for a configure token; "r8169" is accepted for "r8169.c". Throws UserError when unknown. */
  get(token: string): DriverEntry;
  has(token: string): boolean;
  /** The driver building a kernel module ("mlx5_core" -> mlx5). */
  byModule(module: string): DriverEntry | undefined;
  /** Whether netmap has a patch for this kernel's own copy of the driver. */
  nativeOn(token: string, kernelVersion: string): boolean;
}

/** The catalog file name of a token: "r8169.c" -> "r8169.yaml". */
export const driverFileName = (token: string): string => `${token.replace(/\.c$/, "")}.yaml`;

/** A plausible typo's intended name, if one is close enough (at most a third of the word, min 1 edit). */
function suggestion(word: string, candidates: string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(word, candidates);
  const limit = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  return distance(word, best) <= limit ? best : undefined;
}

/** Load every drivers/*.yaml; throws RecipeError naming the file and line of any bad entry. */
export function loadDriverCatalog(dir: string = catalogDir("drivers")): DriverCatalog {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  const entries: DriverEntry[] = [];
  for (const f of files) {
    const file = join(dir, f);
    const entry = loadYamlFile(file, driverSchema);
    // One file per token, named for it, so `ls drivers/` is the list of drivers.
    if (driverFileName(entry.token) !== basename(file)) {
      throw new RecipeError([
        {
          file: displayPath(file),
          line: 1,
          col: 1,
          message: `token "${entry.token}" belongs in ${driverFileName(entry.token)}, not ${f}`,
          hint: "rename the file or fix the token",
        },
      ]);
    }
    entries.push(entry);
  }
  return makeDriverCatalog(entries, dir);
}

function makeDriverCatalog(entries: DriverEntry[], dir: string): DriverCatalog {
  const byToken = new Map(entries.map((e) => [e.token, e]));
  const tokens = entries.map((e) => e.token);
  const find = (token: string): DriverEntry | undefined =>
    byToken.get(token) ?? (token.endsWith(".c") ? undefined : byToken.get(`${token}.c`));
  const get = (token: string): DriverEntry => {
    const e = find(token);
    if (e) return e;
    // Suggest among tokens and their ".c"-less aliases, then report the real token.
    const aliases = tokens.map((t) => t.replace(/\.c$/, ""));
    const guess = suggestion(token, [...tokens, ...aliases]);
    const real = guess === undefined ? undefined : (find(guess)?.token ?? guess);
    const dym = real === undefined ? "" : ` (did you mean "${real}"?)`;
    throw new UserError(
      `unknown driver "${token}"${dym}; known: ${tokens.join(", ")}`,
      `driver names are netmap configure tokens, one file each in ${displayPath(dir)}/`,
    );
  };
  return {
    list: () => [...entries],
    get,
    has: (token) => find(token) !== undefined,
    byModule: (module) => entries.find((e) => e.module === module),
    nativeOn: (token, kernelVersion) =>
      get(token).nativeRanges.some((r: KernelRange) => releaseInRange(kernelVersion, r)),
  };
}
