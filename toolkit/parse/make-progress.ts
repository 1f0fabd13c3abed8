/**
 * Reading netmap's `make` output: a streaming progress counter for the live view, and a classifier
 * that maps known failure lines to what to do.
 */

/** Build phases in the order kbuild goes through them; the reported phase never goes back. */
export type MakePhase = "starting" | "compile" | "link" | "modpost" | "btf";

const PHASE_ORDER: readonly MakePhase[] = ["starting", "compile", "link", "modpost", "btf"];

export interface MakeProgress {
  /**
   * Objects compiled so far, the one meaning of "objects" in the toolkit: kbuild `CC` lines (not
   * the `.mod.o` stubs made after MODPOST) and user-space compiler runs that compile a `.c`
   * (`cc -c`, or a one-step `cc x.c -o x`). Links (`LD [M]`, `cc a.o b.o -o x`), archives,
   * MODPOST and BTF are not objects. toolkit/build/expected-objects.ts predicts this number.
   */
  compiled: number;
  /** kbuild `LD [M]` lines (netmap.o, the .ko files). */
  linked: number;
  /** Objects expected, when the caller knows (toolkit/build/expected-objects.ts). */
  expected?: number;
  /** compiled / expected, capped at 1, when expected is known. */
  fraction?: number;
  phase: MakePhase;
  /** The last file kbuild or cc named, for a one-line status. */
  current?: string;
}

export interface MakeProgressCounter {
  /** Feed one line of make output; returns the progress after it. */
  feed(line: string): MakeProgress;
  /** The progress so far, without feeding anything. */
  snapshot(): MakeProgress;
}

// kbuild's quiet lines: "  CC [M]  /path/x.o", "  LD [M]  ...", "  MODPOST /path/Module.symvers", "  BTF [M] ...".
const KBUILD = /^\s+(CC|LD|MODPOST|BTF)(?: \[M\])?\s+(\S+)/;
// A user-space compiler invocation as make echoes it (libnetmap, apps, utils).
const CC_CMD = /^\s*(?:\S*\/)?(?:cc|gcc|clang|[\w.-]+-gcc)(?:-\d+(?:\.\d+)*)?\s/;

/** A compiler command that compiles: either `-c`, or a one-step build of a `.c` file into a program. */
function userCompileTarget(line: string): string | undefined {
  if (!CC_CMD.test(line)) return undefined;
  const args = line.trim().split(/\s+/);
  const source = args.find((a) => /\.c$/.test(a));
  if (args.includes("-c")) return source ?? args[args.indexOf("-o") + 1];
  return source;
}

/** Count build progress from make output, line by line. */
export function createMakeProgress(expectedObjects?: number): MakeProgressCounter {
  let compiled = 0;
  let linked = 0;
  let phase: MakePhase = "starting";
  let current: string | undefined;

  const advance = (p: MakePhase): void => {
    if (PHASE_ORDER.indexOf(p) > PHASE_ORDER.indexOf(phase)) phase = p;
  };
  const snapshot = (): MakeProgress => {
    const p: MakeProgress = { compiled, linked, phase };
    if (expectedObjects !== undefined && expectedObjects > 0) {
      p.expected = expectedObjects;
      p.fraction = Math.min(1, compiled / expectedObjects);
    }
    if (current !== undefined) p.current = current;
    return p;
  };

  return {
    feed(line: string): MakeProgress {
      const k = KBUILD.exec(line);
      if (k) {
        const [, tool, target] = k;
        current = target;
        if (tool === "CC") {
          // The .mod.o stubs come after MODPOST: they are part of linking, not of the source count.
          if (target?.endsWith(".mod.o")) advance("link");
          else {
            compiled++;
            advance("compile");
          }
        } else if (tool === "LD") {
          linked++;
          advance("link");
        } else if (tool === "MODPOST") advance("modpost");
        else if (tool === "BTF") advance("btf");
        return snapshot();
      }
      const src = userCompileTarget(line);
      if (src !== undefined) {
        compiled++;
        current = src;
        advance("compile");
      }
      return snapshot();
    },
    snapshot,
  };
}

export type BuildFailureKind =
  | "api-drift"
  | "header-mismatch"
  | "werror"
  | "kernel-not-prepared"
  | "missing-header"
  | "compiler-differs"
  | "btf-skipped"
  | "sign-file-missing-key"
  | "make-error";

/** One recognised line of a build log. */
export interface BuildFinding {
  kind: BuildFailureKind;
  /** The log line, trimmed. */
  line: string;
  /** 1-based line number in the log. */
  lineNo: number;
  /** True for noise that does not break the build and should not be shown as the cause. */
  harmless: boolean;
  hint: string;
}

interface Rule {
  kind: BuildFailureKind;
  test: RegExp;
  harmless: boolean;
  hint: (m: RegExpExecArray) => string;
}

// gcc quotes identifiers with ‘’ in UTF-8 locales and '' in C locale.
const Q = "[‘’'`\"]";

const RULES: Rule[] = [
  {
    kind: "api-drift",
    test: new RegExp(`too many arguments to function ${Q}netif_napi_add${Q}`),
    harmless: false,
    hint: () =>
      "kernel API drift: netif_napi_add lost its weight argument in 6.1 (netmap issue #961, virtio_net.c on Debian 6.1); pin a newer netmap commit or drop virtio_net.c",
  },
  {
    kind: "api-drift",
    test: new RegExp(
      `(too (?:many|few) arguments to function|implicit declaration of function) ${Q}(\\w+)${Q}`,
    ),
    harmless: false,
    hint: (m) =>
      `kernel API drift: ${m[2]} changed in this kernel; pin a netmap commit that supports it (see the kernel catalog's known-good commits) or drop the driver that fails`,
  },
  {
    kind: "header-mismatch",
    test: new RegExp(`has no member named ${Q}(\\w+)${Q}`),
    harmless: false,
    hint: (m) =>
      `a structure lacks member ${m[1]}: the driver sources and the kernel headers are from different releases; use sources of exactly the running kernel's version`,
  },
  {
    kind: "werror",
    test: /\berror:.*\[-Werror=([\w-]+)\]/,
    harmless: false,
    hint: (m) =>
      `warning ${m[1]} is fatal under -Werror: the compiler is newer than the kernel or netmap expects; use the kernel's compiler or a netmap commit that silences it`,
  },
  {
    kind: "kernel-not-prepared",
    test: /No rule to make target ['‘]modules_prepare['’]|kernel not configured|Kernel configuration is invalid/,
    harmless: false,
    hint: () =>
      "the kernel tree is not prepared for external modules: run `make olddefconfig && make modules_prepare` in it, or use the distro's headers package",
  },
  {
    kind: "missing-header",
    test: /fatal error: ([\w/.+-]+\.h): No such file or directory/,
    harmless: false,
    hint: (m) =>
      m[1] === "gelf.h" || m[1] === "libelf.h"
        ? "libelf headers are missing: install libelf-dev"
        : `header ${m[1]} is missing: the kernel headers or sources are incomplete, or from another release`,
  },
  {
    kind: "compiler-differs",
    test: /the compiler differs from the one used to build the kernel/,
    harmless: true,
    hint: () =>
      "only a warning, but it explains -Werror failures: prefer the compiler the kernel was built with",
  },
  {
    kind: "btf-skipped",
    test: /Skipping BTF generation/,
    harmless: true,
    hint: () => "harmless: the headers package has no vmlinux, so modules get no BTF; ignore",
  },
  {
    kind: "sign-file-missing-key",
    test: /sign-file: (?:\S*\/)?certs\/signing_key\.pem/,
    harmless: true,
    hint: () =>
      "harmless unless Secure Boot enforces signatures: the build could not sign with the distro's key (not shipped); sign with your own MOK key if needed",
  },
  {
    kind: "make-error",
    test: /^make(?:\[\d+\])?: \*\*\* .*Error \d+/,
    harmless: false,
    hint: () => "make stopped here: the cause is in the lines above it",
  },
];

/** Map the known failure (and known noise) lines of a build log to hints, in log order. */
export function classifyBuildFailure(logText: string): BuildFinding[] {
  const out: BuildFinding[] = [];
  const lines = logText.split(/\r?\n/);
  lines.forEach((raw, i) => {
    for (const r of RULES) {
      const m = r.test.exec(raw);
      if (!m) continue;
      out.push({ kind: r.kind, line: raw.trim(), lineNo: i + 1, harmless: r.harmless, hint: r.hint(m) });
      break; // first (most specific) rule wins
    }
  });
  return out;
}

/** The finding that explains a failed build: the first one that is not noise nor make's own summary. */
export function primaryBuildFailure(findings: BuildFinding[]): BuildFinding | undefined {
  return (
    findings.find((f) => !f.harmless && f.kind !== "make-error") ??
    findings.find((f) => f.kind === "make-error")
  );
}
