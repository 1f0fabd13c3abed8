/**
 * What a recipe may ask of netmap's build: configure options and apps. netmap's configure only
 * *warns* about an unknown option ("Unrecognized option") and carries on, so a typo would go
 * unnoticed for a whole build; we check names here instead.
 */

/** configure subsystems that take --enable-X / --disable-X. */
export const NETMAP_SUBSYSTEMS = [
  "vale",
  "pipe",
  "monitor",
  "generic",
  "ptnetmap",
  "sink",
  "extmem",
  "null",
] as const;

/** Options a recipe may pass through, and whether each takes `=value`. */
export const PASSTHROUGH_OPTIONS: Record<string, "flag" | "value" | "optional-value"> = {
  "kernel-opts": "value",
  "select-version": "value",
  "no-ext-drivers": "optional-value",
  "fail-on-driver-errors": "flag",
  "no-utils": "flag",
  cache: "value",
  cc: "value",
  ld: "value",
  prefix: "value",
  ...Object.fromEntries(
    NETMAP_SUBSYSTEMS.flatMap((s) => [[`enable-${s}`, "flag"] as const, [`disable-${s}`, "flag"] as const]),
  ),
};

/** Options the toolkit sets itself from recipe fields: passing them too would contradict the recipe. */
export const MANAGED_OPTIONS: Record<string, string> = {
  "kernel-dir": "the kernel build dir comes from kernel.buildDir (or --kernel-dir)",
  "kernel-sources": "kernel sources come from kernel.sources (or --kernel-sources)",
  "kernel-version": "the kernel version is read from the kernel build dir",
  drivers: "list drivers under the top-level `drivers:` key",
  "no-drivers": "list the drivers you want under `drivers:`; unlisted ones are not built",
  "driver-suffix": "use netmap.configure.driverSuffix",
  "mod-name": "use netmap.moduleName",
  apps: "use netmap.apps",
  "no-apps": "use `netmap.apps: []`",
  "install-mod-path": "the toolkit installs modules itself (see modules.strategy)",
  destdir: "the toolkit installs modules itself (see modules.strategy)",
  "show-drivers": "this only prints a list; it is not a build option",
  "show-ext-drivers": "this only prints a list; it is not a build option",
  "show-apps": "this only prints a list; it is not a build option",
};

/** Apps built by the configure layout (build-apps/<app>) and by v11.0's examples/ Makefile. */
export const CONFIGURE_APPS = [
  "pkt-gen",
  "pkt-gen-b",
  "bridge",
  "bridge-b",
  "lb",
  "tlem",
  "nmreplay",
  "vale-ctl",
  "dedup",
];
export const LEGACY_APPS = ["pkt-gen", "bridge", "vale-ctl", "testlock", "test_select", "testmmap"];
