import { isAbsolute, normalize, resolve } from "node:path";
import isSafeRegex from "safe-regex2";
import semver from "semver";
import { z } from "zod";
import { redactUrl } from "../core/redact.js";
import { KERNELORG_VERSION_RE, kernelOrgUrl, kernelSemver, parseKernelVersion } from "./kernel-version.js";
import { CONFIGURE_APPS, LEGACY_APPS, MANAGED_OPTIONS, PASSTHROUGH_OPTIONS } from "./netmap-options.js";
import {
  firstShellMeta,
  GIT_URL_SCHEMES,
  gitRefProblem,
  ifnameProblem,
  NAME_RE,
  pathProblem,
  urlProblem,
} from "./safe-text.js";
import { didYouMean } from "./suggest.js";

/**
 * The recipe schema: what a recipe may say, its defaults, and every rule that can be checked
 * without looking at the host. Built per load because two things vary: the driver catalog
 * (injected, so tests and the catalog stay the single source of truth) and the recipe's own
 * directory (relative paths in a recipe are relative to the recipe file).
 */
export interface RecipeSchemaOptions {
  /** Driver tokens from the driver catalog (configure tokens: "e1000", "virtio_net.c"...). */
  knownDrivers: readonly string[];
  /** The recipe file's directory; relative path fields are resolved against it. */
  baseDir: string;
}

/** dmesg lines a successful netmap load prints (v11.0 said "# error 0", later "# returned 0"). */
export const DEFAULT_DMESG_EXPECT = [
  "run mknod /dev/netmap c 10 \\d+ # (error|returned) 0",
  "netmap: loaded module",
];
export const DEFAULT_APPS = ["pkt-gen", "vale-ctl", "bridge"];

type Ctx = z.RefinementCtx;
function fail(ctx: Ctx, message: string, hint?: string, path?: PropertyKey[]): void {
  ctx.addIssue({ code: "custom", message, ...(hint ? { params: { hint } } : {}), ...(path ? { path } : {}) });
}

/** A string that must carry no shell metacharacter, then pass `check` (returns a problem or nothing). */
function checkedString(what: string, check: (s: string) => { problem: string; hint?: string } | undefined) {
  return z.string().superRefine((s, ctx) => {
    const meta = firstShellMeta(s);
    if (meta) {
      fail(
        ctx,
        `${what} "${s.replace(/\n/g, "\\n")}" contains ${meta}, a shell metacharacter`,
        `${what}s may not contain ; | & $ \` < > ( ) { } \\ quotes or newlines`,
      );
      return;
    }
    const r = check(s);
    if (r) fail(ctx, `${what} "${s}" ${r.problem}`, r.hint);
  });
}

const safeName = (what: string) =>
  checkedString(what, (s) =>
    NAME_RE.test(s) && s.length <= 64
      ? undefined
      : {
          problem:
            'may only contain a-z, 0-9, ".", "_" and "-", start with a letter or digit, and be at most 64 characters',
        },
  );

const sha256 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, { error: "sha256 must be 64 hexadecimal digits" })
  .transform((s) => s.toLowerCase());

/** A URL field; the message shows the URL without its password (it may carry credentials). */
const url = (what: string, schemes: readonly string[]) =>
  z.string().superRefine((s, ctx) => {
    const p = urlProblem(s, schemes);
    if (p)
      fail(
        ctx,
        `${what} "${escapeForMessage(redactUrl(s))}" ${p}`,
        schemes.includes("scp")
          ? "give an https://, http://, git://, ssh:// or file:// URL, or user@host:path; none may start with -"
          : `give an ${schemes.join(" or ")} URL`,
      );
  });

/** Control characters shown as escapes, so a message quoting a value cannot drive the terminal. */
function escapeForMessage(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we escape
  return s.replace(/[\u0000-\u001f\u007f]/g, (c) =>
    c === "\n" ? "\\n" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

function driverToken(known: readonly string[]) {
  return checkedString("driver", (s) =>
    known.includes(s)
      ? undefined
      : {
          problem: `is not a known netmap driver${didYouMean(s, known)}`,
          hint: `known drivers: ${known.join(", ")} (see \`netmap-provision drivers\`)`,
        },
  );
}

const ifname = z.string().superRefine((s, ctx) => {
  const p = ifnameProblem(s);
  if (p)
    fail(
      ctx,
      `interface name "${s.replace(/\n/g, "\\n")}" ${p}`,
      "use the name `ip link` shows, e.g. eth0 or enp0s3",
    );
});

const configureOption = checkedString("configure option", (s) => {
  if (/\s/.test(s)) return { problem: "contains whitespace", hint: "give each option as its own list item" };
  if (!s.startsWith("--")) return { problem: 'must start with "--"' };
  const eq = s.indexOf("=");
  const name = s.slice(2, eq < 0 ? undefined : eq);
  const value = eq < 0 ? undefined : s.slice(eq + 1);
  const managed = MANAGED_OPTIONS[name];
  if (managed) return { problem: "is set by netmap-provision itself", hint: managed };
  const kind = PASSTHROUGH_OPTIONS[name];
  if (!kind) {
    return {
      problem: `is not a netmap configure option${didYouMean(name, Object.keys(PASSTHROUGH_OPTIONS)).replace(/"([^"]+)"\?$/, '"--$1"?')}`,
      hint: `options a recipe may pass: ${Object.keys(PASSTHROUGH_OPTIONS)
        .map((o) => `--${o}`)
        .join(" ")}`,
    };
  }
  if (kind === "flag" && value !== undefined) return { problem: `takes no value (write "--${name}")` };
  if (kind === "value" && !value) return { problem: `needs a value (write "--${name}=...")` };
  if (value !== undefined && !/^[A-Za-z0-9._,:=/+@-]*$/.test(value))
    return { problem: "has a value with characters other than A-Z a-z 0-9 . _ , : = / + @ -" };
  return undefined;
});

/** Kernel lines are short; so are the patterns that look for them. */
const MAX_DMESG_PATTERN = 400;

const regexString = z
  .string()
  .min(1, { error: "a dmesg pattern must not be empty" })
  .max(MAX_DMESG_PATTERN, { error: `a dmesg pattern is at most ${MAX_DMESG_PATTERN} characters` })
  .superRefine((s, ctx) => {
    try {
      new RegExp(s);
    } catch (e) {
      fail(ctx, `dmesg pattern "${s}" is not a valid regular expression: ${(e as Error).message}`);
      return;
    }
    // Verify also bounds each match in time; refusing a nested repeat here says so before up runs.
    if (!isSafeRegex(s))
      fail(
        ctx,
        `dmesg pattern "${s}" repeats a repeat (like (a+)+), which can take exponential time on one kernel line: write it with single repeats`,
      );
  });

/** Build the recipe schema; parse output is the resolved recipe (defaults filled, paths absolute). */
export function recipeSchema(opts: RecipeSchemaOptions) {
  const pathField = z
    .string()
    .superRefine((s, ctx) => {
      const p = pathProblem(s);
      if (p)
        fail(
          ctx,
          `path "${s.replace(/\n/g, "\\n")}" ${p}`,
          "give an absolute path, or one relative to the recipe file without ..",
        );
    })
    .transform((p) => (isAbsolute(p) ? normalize(p) : resolve(opts.baseDir, p)));

  const driver = driverToken(opts.knownDrivers);

  // No metacharacter pass here: ranges need < and >; parseKernelVersion admits only digits and range syntax.
  const kernelVersion = z.string().superRefine((s, ctx) => {
    const r = parseKernelVersion(s);
    if ("error" in r) fail(ctx, r.error, r.hint);
  });

  const kernelSources = z.discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("running-headers"),
      /** Distro package with the full sources of the running kernel's series (Debian: linux-source-6.1). */
      package: checkedString("package name", (s) =>
        /^[a-z0-9][a-z0-9+.-]+$/.test(s) ? undefined : { problem: "is not a valid package name" },
      ).optional(),
    }),
    z.strictObject({
      kind: z.literal("kernelorg"),
      version: z.string().regex(KERNELORG_VERSION_RE, {
        error: 'kernel.org version must look like "2.6.37", "6.1" or "6.1.55"',
      }),
      url: url("kernel.org URL", ["https", "http"]).optional(),
      sha256,
    }),
    z.strictObject({
      kind: z.literal("git"),
      url: url("git URL", GIT_URL_SCHEMES),
      tag: checkedString("git tag", (s) => {
        const p = gitRefProblem(s);
        return p ? { problem: p } : undefined;
      }),
    }),
    z.strictObject({ kind: z.literal("local"), path: pathField }),
  ]);

  const kernel = z
    .strictObject({
      version: kernelVersion.default("running"),
      sources: kernelSources.default({ kind: "running-headers" }),
      config: z
        .strictObject({
          from: z
            .union([z.literal("running"), z.strictObject({ file: pathField })], {
              error: 'expected "running" or a mapping {file: PATH}',
            })
            .default("running"),
          fragments: z.array(safeName("config fragment")).default([]),
        })
        .prefault({}),
      build: z.boolean().default(false),
      /**
       * How a built kernel is installed: "make" (modules_install + install, the original procedure)
       * or "deb" (make bindeb-pkg + dpkg -i: removing it later is a package removal).
       */
      install: z.enum(["make", "deb"]).default("make"),
      localversion: checkedString("localversion", (s) =>
        /^[A-Za-z0-9._+-]{1,64}$/.test(s) ? undefined : { problem: "may only contain A-Z a-z 0-9 . _ + -" },
      ).optional(),
      /** The configured kernel build dir (default /lib/modules/<release>/build). */
      buildDir: pathField.optional(),
    })
    .superRefine((k, ctx) => {
      if (k.build && k.sources?.kind === "running-headers")
        fail(
          ctx,
          "kernel.build is true but kernel.sources is running-headers: building a kernel needs its full sources",
          'set kernel.sources to kind "kernelorg", "git" or "local"',
          ["build"],
        );
      if (k.build && k.version === "running")
        fail(
          ctx,
          'kernel.build is true but kernel.version is "running": pin the release to build',
          undefined,
          ["version"],
        );
      if (k.localversion !== undefined && !k.build)
        fail(ctx, "kernel.localversion only applies when kernel.build is true", undefined, ["localversion"]);
      if (k.sources?.kind === "kernelorg" && typeof k.version === "string") {
        const spec = parseKernelVersion(k.version);
        const v = kernelSemver(k.sources.version);
        if (v && !("error" in spec)) {
          const ok =
            spec.kind === "running" ||
            (spec.kind === "exact" && spec.version === v) ||
            (spec.kind === "range" && semver.satisfies(v, spec.range));
          if (!ok)
            fail(
              ctx,
              `kernel.sources.version "${k.sources.version}" does not match kernel.version "${k.version}"`,
              "the sources must be those of the kernel the recipe targets",
              ["sources", "version"],
            );
        }
      }
    })
    .transform((k) => ({
      ...k,
      sources:
        k.sources.kind === "kernelorg"
          ? { ...k.sources, url: k.sources.url ?? kernelOrgUrl(k.sources.version) }
          : k.sources,
    }));

  const netmapSource = z.discriminatedUnion("kind", [
    z
      .strictObject({
        kind: z.literal("git"),
        url: url("git URL", GIT_URL_SCHEMES),
        /** A commit id; a branch or tag only with allowMovingRef, since those can move under you. */
        commit: z.string(),
        allowMovingRef: z.boolean().default(false),
      })
      .superRefine((s, ctx) => {
        if (typeof s.commit !== "string") return;
        if (/^[0-9a-fA-F]{7,40}$/.test(s.commit)) return;
        const meta = firstShellMeta(s.commit);
        if (meta)
          return fail(ctx, `netmap commit "${s.commit}" contains ${meta}, a shell metacharacter`, undefined, [
            "commit",
          ]);
        if (/^[0-9a-fA-F]+$/.test(s.commit))
          return fail(
            ctx,
            `netmap commit "${s.commit}" has ${s.commit.length} hex digits; a commit id has 7 to 40`,
            undefined,
            ["commit"],
          );
        if (!s.allowMovingRef)
          return fail(
            ctx,
            `netmap commit "${s.commit}" is a branch or tag name, which can move; pin a commit id (7 to 40 hex digits)`,
            "run `git rev-parse <ref>` in a netmap checkout to get the id, or set allowMovingRef: true to accept a moving ref",
            ["commit"],
          );
        const p = gitRefProblem(s.commit);
        if (p) fail(ctx, `netmap ref "${s.commit}" ${p}`, undefined, ["commit"]);
      }),
    z.strictObject({ kind: z.literal("local"), path: pathField }),
    z.strictObject({ kind: z.literal("tarball"), url: url("tarball URL", ["https", "http"]), sha256 }),
  ]);

  const netmap = z
    .strictObject({
      source: netmapSource,
      /** "configure": v11.1 and later; "legacy-make": v11.0 (`make KSRC=`, module netmap_lin.ko). */
      layout: z.enum(["configure", "legacy-make"]).default("configure"),
      moduleName: checkedString("module name", (s) =>
        /^[a-z][a-z0-9_]{0,55}$/.test(s)
          ? undefined
          : { problem: "may only contain a-z, 0-9 and _ and start with a letter" },
      ).optional(),
      configure: z
        .strictObject({
          options: z.array(configureOption).default([]),
          driverSuffix: checkedString("driver suffix", (s) =>
            /^[A-Za-z0-9_-]{1,32}$/.test(s)
              ? undefined
              : { problem: "may only contain A-Z a-z 0-9 _ - (1 to 32 of them)" },
          ).optional(),
        })
        .prefault({}),
      apps: z.array(checkedString("app", () => undefined)).default(DEFAULT_APPS),
      /**
       * sha256 pins for external driver archives (Intel's igb/ixgbe/..., e1000e, virtio_net.c) whose
       * catalog entry has none: the toolkit fetches and checks them so configure never downloads.
       */
      extDrivers: z
        .record(driver, z.strictObject({ sha256, url: url("archive URL", ["https", "http"]).optional() }))
        .default({}),
    })
    .superRefine((n, ctx) => {
      const legacy = n.layout === "legacy-make";
      if (legacy && (n.configure?.options?.length ?? 0) > 0)
        fail(
          ctx,
          "netmap.layout legacy-make has no configure script, so configure options cannot apply",
          "remove netmap.configure.options",
          ["configure", "options"],
        );
      if (legacy && n.configure?.driverSuffix !== undefined)
        fail(
          ctx,
          "netmap.layout legacy-make cannot rename drivers (no --driver-suffix before v11.1)",
          undefined,
          ["configure", "driverSuffix"],
        );
      if (legacy && n.moduleName !== undefined && n.moduleName !== "netmap_lin")
        fail(
          ctx,
          `netmap.layout legacy-make always builds netmap_lin.ko, not "${n.moduleName}"`,
          "remove netmap.moduleName",
          ["moduleName"],
        );
      const known = legacy ? LEGACY_APPS : CONFIGURE_APPS;
      const seen = new Set<string>();
      (n.apps ?? []).forEach((a, i) => {
        if (typeof a !== "string" || firstShellMeta(a)) return;
        if (!known.includes(a))
          fail(
            ctx,
            `app "${a}" is not built by the ${n.layout} layout${didYouMean(a, known)}`,
            `apps: ${known.join(", ")}`,
            ["apps", i],
          );
        else if (seen.has(a)) fail(ctx, `app "${a}" is listed twice`, undefined, ["apps", i]);
        seen.add(a);
      });
    })
    .transform((n) => ({
      ...n,
      moduleName: n.moduleName ?? (n.layout === "legacy-make" ? "netmap_lin" : "netmap"),
    }));

  return z
    .strictObject({
      name: safeName("recipe name"),
      description: z.string().max(2000).optional(),
      kernel: kernel.prefault({}),
      netmap,
      /** "auto": every catalog driver the host's NICs use; or an explicit list of driver tokens. */
      drivers: z
        .union([z.literal("auto"), z.array(driver)], { error: 'expected "auto" or a list of driver names' })
        .default("auto"),
      /** Drivers for which emulated (generic) mode is acceptable when no native patch applies. */
      emulatedOk: z
        .union([z.boolean(), z.array(driver)], { error: "expected true, false or a list of driver names" })
        .default(false),
      modules: z
        .strictObject({
          /** "updates": install under updates/ (depmod prefers it); "replace": rename the stock .ko aside. */
          strategy: z.enum(["updates", "replace"]).default("updates"),
          /** Keep the patched drivers across reboots (modules-load.d, initramfs). */
          persist: z.boolean().default(false),
          initramfs: z.enum(["auto", "update-initramfs", "dracut", "none"]).default("auto"),
        })
        .prefault({}),
      verify: z
        .strictObject({
          pktgen: z
            .strictObject({
              vale: z.boolean().default(true),
              interfaces: z.array(ifname).default([]),
              // Each sender runs this long, then pkt-gen is stopped (SIGINT) and its summary read.
              seconds: z.int().min(1).max(60).default(3),
              // Only an upper bound on what a sender sends; the run always ends after `seconds`.
              count: z.int().min(1).max(1e12).optional(),
              size: z.int().min(60).max(9000).default(60),
            })
            .prefault({}),
          dmesg: z.strictObject({ expect: z.array(regexString).default(DEFAULT_DMESG_EXPECT) }).prefault({}),
        })
        .prefault({}),
      guard: z
        .strictObject({
          /** What to do when a driver to swap carries the management link (default route / SSH). */
          management: z.enum(["refuse", "allow-with-timer"]).default("refuse"),
          confirmTimeoutSec: z.int().min(15).max(3600).default(120),
        })
        .prefault({}),
    })
    .superRefine((r, ctx) => {
      const drivers = Array.isArray(r.drivers) ? r.drivers : undefined;
      const seen = new Set<string>();
      drivers?.forEach((d, i) => {
        if (seen.has(d)) fail(ctx, `driver "${d}" is listed twice`, undefined, ["drivers", i]);
        seen.add(d);
      });
      if (drivers && Array.isArray(r.emulatedOk)) {
        r.emulatedOk.forEach((d, i) => {
          if (typeof d === "string" && opts.knownDrivers.includes(d) && !drivers.includes(d))
            fail(
              ctx,
              `emulatedOk lists "${d}", which is not in drivers`,
              `add "${d}" to drivers or remove it here`,
              ["emulatedOk", i],
            );
        });
      }
      const p = r.verify?.pktgen;
      // Only when every app is known: a misspelt "pkt-gne" already has its own, better, error.
      const appsKnown = (r.netmap?.apps ?? []).every(
        (a) => CONFIGURE_APPS.includes(a) || LEGACY_APPS.includes(a),
      );
      if (
        appsKnown &&
        p &&
        (p.vale || (p.interfaces?.length ?? 0) > 0) &&
        Array.isArray(r.netmap?.apps) &&
        !r.netmap.apps.includes("pkt-gen")
      )
        fail(
          ctx,
          "verify.pktgen needs pkt-gen, but netmap.apps does not build it",
          'add "pkt-gen" to netmap.apps or turn verify.pktgen off (vale: false, interfaces: [])',
          ["netmap", "apps"],
        );
    });
}

/** A recipe as loaded: every default filled, relative paths made absolute. */
export type Recipe = z.output<ReturnType<typeof recipeSchema>>;
/** A recipe as written in YAML (most fields optional). */
export type RecipeInput = z.input<ReturnType<typeof recipeSchema>>;
export type KernelSources = Recipe["kernel"]["sources"];
export type NetmapSource = Recipe["netmap"]["source"];
