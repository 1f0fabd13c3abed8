import type { Command } from "commander";
import { importSourcesBundle } from "../../build/bundle.js";
import { fetchSourcesBundle } from "../../build/fetch.js";
import { UserError } from "../../core/errors.js";
import { createExec } from "../../core/exec.js";
import { redactUrl } from "../../core/redact.js";
import { resolveCacheDir } from "../../sources/download.js";
import { badge, out, printJson } from "../output.js";
import { loadRunRecipe, type RecipeRunFlags } from "../recipe-options.js";

/** `fetch`: gather a recipe's sources into one file for an offline host, or import such a file. */
export const fetchCommand = {
  register(program: Command): void {
    program
      .command("fetch")
      .description(
        "gather every source a recipe needs into one file for a host with no internet (or --import it there)",
      )
      .option("-r, --recipe <file>", "the recipe (default: recipes/default.yaml)")
      .option("--drivers <list>", "drivers the offline host will build, comma-separated")
      .option("--out <file>", "write the sources bundle here")
      .option("--import <file>", "on the offline host: put a sources bundle into the cache")
      .option(
        "--cache-dir <dir>",
        "cache dir (default $NETMAP_PROVISION_CACHE, $XDG_CACHE_HOME/netmap-provision, ~/.cache/netmap-provision)",
      )
      .option("--json", "print the result as JSON")
      .action(async (opts: RecipeRunFlags & { out?: string; import?: string; json?: boolean }) => {
        const exec = createExec();
        const cacheDir = resolveCacheDir(opts.cacheDir);
        if (opts.import) {
          // The bundle is checked member by member and its manifest entry by entry (exit 2 on
          // anything wrong); only validated cache paths are written.
          const entries = await importSourcesBundle(opts.import, { cacheDir, exec });
          const shown = entries.map((e) => ({ ...e, url: redactUrl(e.url) }));
          if (opts.json) printJson({ ok: true, imported: shown, cacheDir });
          else out(`${badge("ok")} imported ${entries.length} source(s) into ${cacheDir}\n`);
          return;
        }
        if (!opts.out)
          throw new UserError(
            "fetch needs --out FILE (or --import FILE)",
            "e.g. netmap-provision fetch --drivers e1000 --out sources.tar",
          );
        const { recipe } = loadRunRecipe(opts);
        const { entries, notes } = await fetchSourcesBundle({ recipe, cacheDir }, { file: opts.out, exec });
        if (opts.json) {
          printJson({ ok: true, out: opts.out, entries, notes });
          return;
        }
        out(`${badge("ok")} wrote ${opts.out} with ${entries.length} source(s)\n`);
        for (const e of entries) out(`        ${e.path}  ${e.url}\n`);
        for (const n of notes) out(`${badge("info")} ${n}\n`);
        out(`        on the offline host: netmap-provision fetch --import ${opts.out}\n`);
      });
  },
};
