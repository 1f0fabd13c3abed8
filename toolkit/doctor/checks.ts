import { quoteArgv } from "../core/exec.js";
import type { HostFacts } from "../host/facts.js";
import type { NicFacts } from "../host/nics.js";
import type { DistroFamily } from "../host/os-release.js";
import { installCommand, type ToolFacts } from "../host/tools.js";

/**
 * `doctor`: turn host facts into a list of findings, each saying what was found and, when it is
 * a problem, the command that fixes it. Pure: facts in, checks out (tests feed fixture facts).
 */
export type CheckStatus = "ok" | "warn" | "fail" | "info";

export interface DoctorCheck {
  id: string;
  title: string;
  status: CheckStatus;
  /** What was found, in words. */
  found: string;
  /** What to do about it. */
  fix?: string;
  /** True when this finding alone makes `up` refuse to start. */
  blocksUp: boolean;
}

export interface DoctorOptions {
  /** The recipe's driver list: "auto" (every netmap driver the NICs use) or configure tokens. */
  drivers?: "auto" | string[];
  /** Drivers for which emulated mode is acceptable (the recipe's emulatedOk). */
  emulatedOk?: boolean | string[];
}

/** True when any check blocks `up` (doctor then exits 4). */
export const blocksUp = (checks: DoctorCheck[]): boolean => checks.some((c) => c.blocksUp);

const check = (c: DoctorCheck): DoctorCheck => c;

/** The package command that provides a kernel's headers (its build dir). */
function headersFix(family: DistroFamily, release: string): string {
  switch (family) {
    case "debian":
      return `apt-get install linux-headers-${release}`;
    case "rhel":
      return `dnf install kernel-devel-${release}`;
    case "arch":
      return "pacman -S linux-headers (for the stock kernel; linux-lts-headers etc. for others)";
    case "suse":
      return "zypper install kernel-default-devel";
    default:
      return `install the headers package of kernel ${release}`;
  }
}

/** The package command that provides full sources of a kernel series. */
function sourcesFix(family: DistroFamily, version: string | null): string {
  const mm = version?.split(".").slice(0, 2).join(".") ?? "X.Y";
  switch (family) {
    case "debian":
      return `apt-get install linux-source-${mm} (the tarball lands in /usr/src/linux-source-${mm}.tar.xz)`;
    case "rhel":
      return "dnf download --source kernel, then unpack the kernel sources of the running release";
    default:
      return `unpack the sources of exactly ${version ?? "the running kernel"} (e.g. from kernel.org) under /usr/src`;
  }
}

/** The netmap drivers `up` would swap: what the recipe names, or every netmap driver a NIC uses. */
export function driversToSwap(facts: HostFacts, opts: DoctorOptions): string[] {
  if (Array.isArray(opts.drivers)) return opts.drivers;
  const tokens = facts.nics
    .filter((n) => n.netmapDriver !== null && n.driverKind === "module")
    .map((n) => n.netmapDriver as string);
  return [...new Set(tokens)];
}

const emulatedAccepted = (opts: DoctorOptions, token: string): boolean =>
  opts.emulatedOk === true || (Array.isArray(opts.emulatedOk) && opts.emulatedOk.includes(token));

function kernelChecks(f: HostFacts): DoctorCheck[] {
  const k = f.kernel;
  const out: DoctorCheck[] = [
    check({
      id: "os",
      title: "Distribution",
      status: "info",
      found: `${f.os.prettyName} (family ${f.os.family})`,
      blocksUp: false,
    }),
    check({
      id: "kernel",
      title: "Running kernel",
      status: "info",
      found: `${k.release}, version ${k.version ?? "unknown"}${k.versionSource ? ` (from ${k.versionSource})` : ""}`,
      blocksUp: false,
    }),
  ];
  const modules = f.kconfig?.values.CONFIG_MODULES;
  if (f.kconfig && modules !== "y") {
    out.push(
      check({
        id: "module-support",
        title: "Loadable modules",
        status: "fail",
        found: `CONFIG_MODULES is not set in ${f.kconfig.source}: this kernel cannot load any module`,
        fix: "boot a kernel built with CONFIG_MODULES=y (any distro kernel, e.g. apt-get install linux-image-amd64) and run doctor again",
        blocksUp: true,
      }),
    );
  }
  out.push(
    k.moduleDirExists
      ? check({
          id: "module-dir",
          title: "Module directory",
          status: "ok",
          found: k.moduleDir,
          blocksUp: false,
        })
      : check({
          id: "module-dir",
          title: "Module directory",
          status: "fail",
          found: `${k.moduleDir} does not exist: the running kernel ${k.release} was not installed with its modules (a custom or VM-provided kernel?)`,
          fix: `boot a kernel installed by the distribution (${f.os.family === "debian" ? "apt-get install linux-image-amd64, then reboot into it" : "install the distro kernel and reboot into it"}), or install this kernel's modules and headers from where it was built`,
          blocksUp: true,
        }),
  );
  out.push(
    f.kconfig
      ? check({
          id: "kconfig",
          title: "Kernel configuration",
          // A config source that exists but was refused (a FIFO, a gzip bomb) is said, not hidden.
          status: f.kconfig.skipped ? "warn" : "ok",
          found: `${f.kconfig.source} (${Object.keys(f.kconfig.values).length} symbols set)${f.kconfig.skipped ? `; skipped: ${f.kconfig.skipped.join("; ")}` : ""}`,
          ...(f.kconfig.skipped ? { fix: "replace or remove the unusable config file named above" } : {}),
          blocksUp: false,
        })
      : check({
          id: "kconfig",
          title: "Kernel configuration",
          status: "fail",
          found: f.kconfigProblem?.message ?? "not found",
          fix: f.kconfigProblem?.hint ?? headersFix(f.os.family, k.release),
          blocksUp: true,
        }),
  );
  const b = k.build;
  if (!b.exists) {
    out.push(
      check({
        id: "build-dir",
        title: "Kernel headers (build dir)",
        status: "fail",
        found: `${b.path} ${b.resolved === null && k.moduleDirExists ? "is missing or a dangling link" : "does not exist"}: netmap cannot be built without it`,
        // No package ships headers for a kernel the distro did not install: point at the real cause.
        fix: k.moduleDirExists
          ? headersFix(f.os.family, k.release)
          : "headers come with the kernel's package or build: fix the module directory first (see above)",
        blocksUp: true,
      }),
    );
  } else if (!b.hasConfig || !b.hasVersionH) {
    const missing = [
      !b.hasConfig && ".config",
      !b.hasVersionH && "include/generated/uapi/linux/version.h",
    ].filter(Boolean);
    out.push(
      check({
        id: "build-dir",
        title: "Kernel headers (build dir)",
        status: "fail",
        found: `${b.resolved} is not configured: ${missing.join(" and ")} missing (netmap's configure stops with "kernel not configured.")`,
        fix: `copy the running kernel's config to ${b.resolved}/.config, then make -C ${b.resolved} olddefconfig modules_prepare`,
        blocksUp: true,
      }),
    );
  } else {
    out.push(
      check({
        id: "build-dir",
        title: "Kernel headers (build dir)",
        status: "ok",
        found: `${b.path} -> ${b.resolved} (configured)`,
        blocksUp: false,
      }),
    );
  }
  return out;
}

function sourcesCheck(f: HostFacts, swap: string[], opts: DoctorOptions): DoctorCheck {
  const s = f.kernel.sources;
  const title = "Full kernel sources";
  if (s.kind === "module-source" || s.kind === "build-dir" || s.kind === "unpacked") {
    return check({
      id: "sources",
      title,
      status: "ok",
      found: `${s.path} (${s.version ?? "version unknown"})`,
      blocksUp: false,
    });
  }
  if (s.kind === "tarball") {
    return check({
      id: "sources",
      title,
      status: "info",
      found: s.detail,
      fix: `the sources are there, packed: tar -C /usr/src -xaf ${s.path}`,
      blocksUp: false,
    });
  }
  // Only patched drivers need full sources (field notes #1: "Cannot find full kernel sources."):
  // netmap.ko itself builds against headers. An explicit recipe list makes it a blocker.
  const explicit = Array.isArray(opts.drivers) && swap.length > 0;
  return check({
    id: "sources",
    title,
    status: explicit ? "fail" : "warn",
    found: `${s.detail}; patched drivers need them (configure disables every in-tree driver without them)`,
    fix: f.kernel.moduleDirExists
      ? sourcesFix(f.os.family, f.kernel.version)
      : sourcesFix("other", f.kernel.version),
    blocksUp: explicit,
  });
}

function toolChecks(f: HostFacts): DoctorCheck[] {
  const compression = f.kernel.moduleCompression;
  const needed = (t: ToolFacts) =>
    t.for === "build" || t.for === "modules" || (t.for === "zst" && compression === "zst");
  const missing = f.tools.filter((t) => t.path === null && needed(t));
  const missingTry = f.tools.filter((t) => t.path === null && t.for === "try");
  const fixFor = (tools: ToolFacts[]) => {
    const argv = installCommand(f.os.family, tools);
    return argv ? quoteArgv(argv) : `install: ${tools.map((t) => t.name).join(", ")}`;
  };
  const out: DoctorCheck[] = [
    missing.length
      ? check({
          id: "build-tools",
          title: "Build and module tools",
          status: "fail",
          found: `missing: ${missing.map((t) => t.name).join(", ")}`,
          fix: fixFor(missing),
          blocksUp: true,
        })
      : check({
          id: "build-tools",
          title: "Build and module tools",
          status: "ok",
          found: `all ${f.tools.filter(needed).length} found`,
          blocksUp: false,
        }),
    missingTry.length
      ? check({
          id: "try-tools",
          title: "Tools for `try` (QEMU rehearsal)",
          status: "warn",
          found: `missing: ${missingTry.map((t) => t.name).join(", ")} (only \`try\` needs them)`,
          fix: fixFor(missingTry),
          blocksUp: false,
        })
      : check({
          id: "try-tools",
          title: "Tools for `try` (QEMU rehearsal)",
          status: "ok",
          found: "all found",
          blocksUp: false,
        }),
  ];
  if (compression !== "none" && f.kernel.moduleDirExists) {
    out.push(
      check({
        id: "module-compression",
        title: "Module compression",
        status: "info",
        found:
          compression === "unknown"
            ? "unknown (no modules.dep for the running kernel)"
            : `stock modules are ${compression === "mixed" ? "of mixed compression" : `.ko.${compression}`} (modules.dep); backups keep the stock files as they are`,
        blocksUp: false,
      }),
    );
  }
  return out;
}

function signingCheck(f: HostFacts): DoctorCheck {
  const sb = f.secureBoot;
  const parts = [
    sb.efi
      ? `Secure Boot ${sb.secureBoot === null ? "unknown" : sb.secureBoot ? "on" : "off"}`
      : "not booted through EFI",
    `lockdown ${sb.lockdown ?? "not available"}`,
    ...(sb.sigEnforce ? ["module.sig_enforce=Y"] : []),
  ];
  const build = f.kernel.build.resolved ?? f.kernel.build.path;
  return sb.refusesUnsignedModules
    ? check({
        id: "module-signing",
        title: "Unsigned module loading",
        status: "fail",
        found: `${parts.join(", ")}: the kernel refuses unsigned modules ("Key was rejected by service")`,
        fix: `create a MOK key pair, enrol it with \`mokutil --import MOK.der\` and confirm it at the next boot (a console step), then sign netmap.ko and each patched driver with ${build}/scripts/sign-file sha256 MOK.priv MOK.der <module.ko>; or turn Secure Boot off in the firmware`,
        blocksUp: true,
      })
    : check({
        id: "module-signing",
        title: "Unsigned module loading",
        status: "ok",
        found: `${parts.join(", ")}: allowed`,
        blocksUp: false,
      });
}

function nicCheck(n: NicFacts, swap: string[], opts: DoctorOptions): DoctorCheck {
  const id = `nic:${n.ifname}`;
  const title = `NIC ${n.ifname}`;
  const where = `${n.driver ?? "no driver"}${n.busAddress ? ` at ${n.busAddress}` : ""}`;
  const wanted = n.netmapDriver !== null && swap.includes(n.netmapDriver);
  const explicit = wanted && Array.isArray(opts.drivers);
  if (n.driver === null)
    return check({ id, title, status: "info", found: `${where}: ${n.reason}`, blocksUp: false });
  if (n.netmapDriver === null)
    return check({ id, title, status: "info", found: `${where}: ${n.reason}`, blocksUp: false });
  if (n.driverKind === "builtin") {
    return check({
      id,
      title,
      status: explicit ? "fail" : "warn",
      found: `${where}: ${n.module} is built into the kernel, so it cannot be swapped for netmap's patched ${n.netmapDriver}; netmap can use ${n.ifname} in emulated mode only`,
      fix: explicit
        ? `remove ${n.netmapDriver} from the recipe's drivers, or boot a kernel where CONFIG for ${n.module} is =m`
        : `boot a kernel that builds ${n.module} as a module for native mode`,
      blocksUp: explicit,
    });
  }
  if (!n.native) {
    const refused = explicit && !emulatedAccepted(opts, n.netmapDriver);
    return check({
      id,
      title,
      status: refused ? "fail" : "warn",
      found: `${where} (${n.driverKind}): ${n.reason}`,
      fix: refused
        ? `add ${n.netmapDriver} to the recipe's emulatedOk, or pin a kernel that has a native patch`
        : undefined,
      blocksUp: refused,
    });
  }
  return check({
    id,
    title,
    status: "ok",
    found: `${where} (${n.driverKind}): ${n.reason}`,
    blocksUp: false,
  });
}

function managementCheck(f: HostFacts, swap: string[]): DoctorCheck {
  const m = f.management;
  const title = "Management link";
  if (m.problem) {
    // Not knowing is not "no management link": plan and up guard every NIC until it is known.
    const swapped = f.nics
      .filter((n) => n.netmapDriver && n.driverKind === "module" && swap.includes(n.netmapDriver))
      .map((n) => n.ifname);
    return check({
      id: "management",
      title,
      status: "warn",
      found: `${m.problem}; \`up\` treats every NIC as carrying it${swapped.length ? ` (${swapped.join(", ")} on a driver it would swap)` : ""}`,
      fix: "make sure /proc is the kernel's (mount -t proc proc /proc) and /proc/net/route readable, then run doctor again; meanwhile `up` refuses to swap those drivers unless run with --allow-management (a dead-man timer rolls back unless `netmap-provision confirm` arrives)",
      blocksUp: false,
    });
  }
  if (m.managementIfs.length === 0) {
    return check({
      id: "management",
      title,
      status: "info",
      found: "no default route and no SSH session found",
      blocksUp: false,
    });
  }
  const roles = (ifname: string) =>
    [m.defaultRouteIf === ifname && "default route", m.sshIfs.includes(ifname) && "SSH session"]
      .filter(Boolean)
      .join(", ");
  const endangered: string[] = [];
  for (const ifname of m.managementIfs) {
    const nic = f.nics.find((n) => n.ifname === ifname);
    if (!nic?.netmapDriver || nic.driverKind !== "module" || !swap.includes(nic.netmapDriver)) continue;
    const siblings = f.nics.filter((n) => n.module === nic.module).map((n) => n.ifname);
    endangered.push(
      `${ifname} (${roles(ifname)}) is on ${nic.module}, which \`up\` would swap; unloading ${nic.module} takes down ${siblings.join(", ")}`,
    );
  }
  if (endangered.length === 0) {
    const list = m.managementIfs.map((i) => `${i} (${roles(i)})`).join(", ");
    return check({
      id: "management",
      title,
      status: "ok",
      found: `${list}: its driver is not swapped`,
      blocksUp: false,
    });
  }
  return check({
    id: "management",
    title,
    status: "warn",
    found: endangered.join("; "),
    fix: "manage the host through an interface on another driver, leave this driver out of the recipe, or run `up --allow-management` (it arms a timer that rolls back unless `netmap-provision confirm` arrives)",
    blocksUp: false,
  });
}

/** Every finding about the host, in the order a reader fixes them. */
export function runDoctor(facts: HostFacts, opts: DoctorOptions = {}): DoctorCheck[] {
  const swap = driversToSwap(facts, opts);
  const checks = [
    ...kernelChecks(facts),
    sourcesCheck(facts, swap, opts),
    ...toolChecks(facts),
    signingCheck(facts),
  ];
  checks.push(
    check({
      id: "kvm",
      title: "KVM for `try`",
      status: "info",
      found: facts.kvm.present
        ? `/dev/kvm present, ${facts.kvm.readWrite ? "read-write for this user" : "not read-write for this user"}; whether it works is probed by \`try\``
        : "/dev/kvm absent: `try` would run guests under TCG (slow)",
      blocksUp: false,
    }),
  );
  if (facts.nics.length === 0) {
    checks.push(
      check({
        id: "nics",
        title: "NICs",
        status: "info",
        found: "no physical network interface found",
        blocksUp: false,
      }),
    );
  }
  for (const n of facts.nics) checks.push(nicCheck(n, swap, opts));
  if (Array.isArray(opts.drivers)) {
    for (const token of opts.drivers) {
      if (facts.nics.some((n) => n.netmapDriver === token)) continue;
      checks.push(
        check({
          id: `driver:${token}`,
          title: `Driver ${token}`,
          status: "info",
          found: `the recipe asks for ${token}, but no interface on this host uses it`,
          blocksUp: false,
        }),
      );
    }
  }
  checks.push(managementCheck(facts, swap));
  return checks;
}
