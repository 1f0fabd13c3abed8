import { join } from "node:path";
import { z } from "zod";
import { loadYamlFile } from "../catalog/yaml-file.js";
import { catalogDir } from "../core/paths.js";
import { hostIsExecutable, hostJoin } from "./host-fs.js";
import type { DistroFamily } from "./os-release.js";

/** What a tool is needed for; see kernels/build-tools.yaml. */
export type ToolPurpose = "build" | "modules" | "zst" | "try";

const families = ["debian", "rhel", "arch", "suse"] as const;
const packagesSchema = z.object({ debian: z.string(), rhel: z.string(), arch: z.string(), suse: z.string() });
const tableSchema = z.object({
  install: z.object({
    debian: z.array(z.string()),
    rhel: z.array(z.string()),
    arch: z.array(z.string()),
    suse: z.array(z.string()),
  }),
  tools: z.array(
    z.object({
      name: z.string(),
      for: z.enum(["build", "modules", "zst", "try"]),
      packages: packagesSchema,
    }),
  ),
});
export type BuildToolTable = z.infer<typeof tableSchema>;

export interface ToolFacts {
  name: string;
  for: ToolPurpose;
  /** Host path where it was found, or null when missing. */
  path: string | null;
  /** Package names per distro family (data from the catalog). */
  packages: Record<(typeof families)[number], string>;
}

/** The tool/package table from kernels/build-tools.yaml, validated (RecipeError with file:line on a bad entry). */
export function loadBuildToolTable(file = join(catalogDir("kernels"), "build-tools.yaml")): BuildToolTable {
  return loadYamlFile(file, tableSchema);
}

/**
 * Directories searched for tools. The real host: $PATH plus the sbin directories, since depmod
 * and friends live there and a non-root PATH often lacks them (the toolkit runs them as root).
 * A fixture tree: the standard directories under it ($PATH is the test machine's, not the tree's).
 */
export function toolSearchDirs(root: string, envPath: string | undefined): string[] {
  const standard = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  if (root !== "/" && root !== "") return standard;
  const fromEnv = (envPath ?? "").split(":").filter((d) => d.startsWith("/"));
  return [...new Set([...fromEnv, ...standard])];
}

/** Look every tool of the table up; reads directory entries only, runs nothing. */
export function findTools(
  root: string,
  envPath: string | undefined,
  table = loadBuildToolTable(),
): ToolFacts[] {
  const dirs = toolSearchDirs(root, envPath);
  return table.tools.map((t) => ({
    name: t.name,
    for: t.for,
    path: dirs.map((d) => hostJoin(d, t.name)).find((p) => hostIsExecutable(root, p)) ?? null,
    packages: t.packages,
  }));
}

/** The argv that installs the packages providing `missing`, or null for an unknown family. */
export function installCommand(
  family: DistroFamily,
  missing: ToolFacts[],
  table: BuildToolTable = loadBuildToolTable(),
): string[] | null {
  if (family === "other") return null;
  const pkgs = [...new Set(missing.map((t) => t.packages[family]))];
  return [...table.install[family], ...pkgs];
}
