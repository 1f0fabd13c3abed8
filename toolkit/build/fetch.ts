import { loadDriverCatalog } from "../catalog/drivers.js";
import { UserError } from "../core/errors.js";
import type { Exec } from "../core/exec.js";
import { preflightDownloads } from "../sources/download.js";
import { extDriverNeeds } from "../sources/ext-drivers.js";
import { resolveNetmapSource } from "../sources/netmap-source.js";
import { type SourcesBundleEntry, writeSourcesBundle } from "./bundle.js";
import { type BuildRequest, buildDownloads, netmapSpec } from "./pipeline.js";

/**
 * `fetch --out FILE` on a connected host: every source a recipe needs (netmap checkout or
 * tarball, external driver archives, a kernel.org tarball) into one sources bundle for a host
 * with no internet. The distro's own source package is not included: install it from the
 * distro's mirror (or pass --kernel-sources) on the offline host.
 */
export async function fetchSourcesBundle(
  req: BuildRequest,
  o: { file: string; exec: Exec },
): Promise<{ entries: SourcesBundleEntry[]; notes: string[] }> {
  const r = req.recipe;
  if (r.drivers === "auto") {
    throw new UserError(
      'fetch needs the driver list: "auto" means the NICs of the host that builds, which is not this one',
      "pass --drivers a,b (the drivers the offline host needs) or list them in the recipe",
    );
  }
  const catalog = req.catalog ?? loadDriverCatalog();
  const { needs, skipped } = extDriverNeeds({
    drivers: r.drivers,
    catalog,
    options: r.netmap.configure.options,
    pins: req.extPins ?? r.netmap.extDrivers,
    emulatedOk: r.emulatedOk,
  });
  const tarball =
    r.kernel.sources.kind === "kernelorg"
      ? { url: r.kernel.sources.url as string, sha256: r.kernel.sources.sha256 }
      : undefined;
  const downloads = buildDownloads(req, needs, tarball);
  await preflightDownloads(downloads, { cacheDir: req.cacheDir, offline: req.offline });
  const notes = skipped.map((s) => `${s.token} not included: ${s.why}`);
  const spec = netmapSpec(r);
  let netmapGit: { dir: string; url: string; commit: string } | undefined;
  if (spec.kind === "git") {
    const src = await resolveNetmapSource(spec, {
      cacheDir: req.cacheDir,
      exec: o.exec,
      offline: req.offline,
    });
    netmapGit = { dir: src.dir, url: spec.url, commit: src.commit as string };
  } else if (spec.kind === "local") {
    notes.push(`netmap source is the local directory ${spec.path}: copy it to the offline host yourself`);
  }
  if (r.kernel.sources.kind === "running-headers") {
    notes.push(
      "kernel sources come from the distro's source package: install it on the offline host from its mirror",
    );
  }
  const entries = await writeSourcesBundle({
    file: o.file,
    cacheDir: req.cacheDir,
    downloads,
    netmapGit,
    exec: o.exec,
  });
  return { entries, notes };
}
