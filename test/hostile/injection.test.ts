import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import test, { type ExecutionContext } from "ava";
import { corpusCases, hostileCase, runCli, type Scratch, scratch } from "../helpers/hostile.js";

/**
 * Hostile-input corpus, option injection and secrets (issue 11, point 2): recipe values that git,
 * ssh or another command would read as options, git's remote-helper URLs, and URLs carrying a
 * password. Each case is refused with exit 2 naming the recipe file:line:col and the field, or
 * (for passwords) runs without the password ever reaching stdout, stderr, JSON, logs or the cache.
 */

const COMMIT = "89607e1406c1fa5ac2106bd2ff33417f090c0d60";

const corpus = corpusCases(test);
const SECRET = "s3cret";

/** The dirs every command takes, inside the scratch tree. */
const dirs = (s: Scratch) => ["--cache-dir", s.cache, "--state-dir", s.state];

function writeRecipe(s: Scratch, body: string, name = "r.yaml"): string {
  const file = s.input(name);
  writeFileSync(file, `name: t\n${body}`);
  return file;
}

/** A netmap git source with this URL (YAML-quoted with JSON rules, so escapes stay escapes). */
const netmapGit = (url: string, commit = COMMIT, extra = "") =>
  `netmap:\n  source: {kind: git, url: ${JSON.stringify(url)}, commit: ${JSON.stringify(commit)}${extra}}\n`;

/** `recipe validate`, `recipe validate --json`, `plan --root` and `plan --json` all refuse it with exit 2. */
async function refusedEverywhere(
  t: ExecutionContext,
  s: Scratch,
  file: string,
  field: string,
  why: RegExp,
): Promise<void> {
  const where = new RegExp(
    `r\\.yaml:\\d+:\\d+: (error: )?${field.replace(/[.[\]]/g, "\\$&")}: [^\\n]*${why.source}`,
  );
  await hostileCase(t, s, { args: ["recipe", "validate", file], exit: 2, message: where });
  for (const json of [[], ["--json"]])
    await hostileCase(t, s, {
      args: ["plan", ...json, "--recipe", file, "--root", s.host, ...dirs(s)],
      exit: 2,
      message: where,
    });
}

// --- git URLs that git or ssh would read as options -------------------------------------------

const badGitUrls: Array<[string, string, RegExp]> = [
  ["scp-like user starting with -", "-uid@x:y", /starts with "-"/],
  ["--upload-pack= with a command", "--upload-pack=touch /tmp/x", /starts with "-"/],
  ["--upload-pack= without spaces", "--upload-pack=touch", /starts with "-"/],
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${IFS} is the shell's, written literally
  ["ssh:// host -oProxyCommand (with ${IFS})", "ssh://-oProxyCommand=touch${IFS}x/y", /"\$"|"\{"/],
  ["ssh:// host -oProxyCommand", "ssh://-oProxyCommand=touch/y", /host starting with "-"/],
  ["ssh:// host -oProxyCommand, %-encoded", "ssh://%2doProxyCommand=touch/y", /host starting with "-"/],
  ["ssh:// user starting with -", "ssh://-oProxyCommand=touch@example.org/y", /user name starting with "-"/],
  ["ssh:// user@ host starting with -", "ssh://git@-oProxyCommand=touch/y", /host starting with "-"/],
  ["scp-like host starting with -", "x@-oProxyCommand=touch:y", /host starting with "-"/],
  ["scp-like host starting with -, no user", "-oProxyCommand=touch:y", /starts with "-"/],
  ["ext:: remote helper", "ext::sh -c touch% x", /remote-helper/],
  ["ext:: remote helper, no spaces", "ext::touch", /remote-helper/],
  ["fd:: remote helper", "fd::3", /remote-helper/],
  ["a made-up <transport>::", "evil::x", /remote-helper/],
  ["a tab", "https://example.org/net\tmap.git", /control character/],
  ["an escape sequence", "https://example.org/\u001b[31mnetmap.git", /control character/],
  ["a space", "https://example.org/net map.git", /whitespace/],
  ["file:// with a host", "file://-x/srv/netmap.git", /host/],
  ["a plain local path", "/srv/netmap.git", /is not a URL/],
];

for (const [what, url, why] of badGitUrls) {
  corpus(`netmap.source.url: ${what} is refused with exit 2 at file:line:col`, async (t) => {
    const s = scratch(t);
    const file = writeRecipe(s, netmapGit(url));
    await refusedEverywhere(t, s, file, "netmap.source.url", why);
  });
}

corpus(
  "must hold: plan for a recipe whose git URL starts with - is refused with exit 2; a URL with a password never shows the password",
  async (t) => {
    const s = scratch(t);
    const dash = writeRecipe(s, netmapGit("-uid@x:y"), "dash.yaml");
    for (const json of [[], ["--json"]]) {
      const r = await hostileCase(t, s, {
        args: ["plan", ...json, "--recipe", dash, "--root", s.host, ...dirs(s)],
        exit: 2,
        message: /dash\.yaml:3:\d+: (error: )?netmap\.source\.url: git URL "-uid@x:y" starts with "-"/,
      });
      t.false(r.stdout.includes("git fetch"), "a refused recipe prints no plan");
    }
    const pw = writeRecipe(s, netmapGit(`https://user:${SECRET}@example.org/netmap.git`), "pw.yaml");
    for (const json of [[], ["--json"]]) {
      const r = await hostileCase(t, s, {
        args: ["plan", ...json, "--recipe", pw, "--root", s.host, ...dirs(s), "--allow-management"],
        exit: 0,
      });
      t.false(`${r.stdout}${r.stderr}`.includes(SECRET), `${r.stdout}\n${r.stderr}`);
      t.true(
        r.stdout.includes("https://user:***@example.org/netmap.git"),
        "the URL is shown, its password hidden",
      );
    }
  },
);

corpus(
  "kernel.sources git URL -uX@h:p (plan once printed `git clone ... -uX@h:p`) is refused with exit 2",
  async (t) => {
    const s = scratch(t);
    const file = writeRecipe(
      s,
      [
        "kernel:",
        '  version: "6.1.55"',
        "  build: true",
        "  sources: {kind: git, url: -uX@h:p, tag: v6.1.55}",
        netmapGit("https://github.com/luigirizzo/netmap"),
      ].join("\n"),
    );
    await refusedEverywhere(t, s, file, "kernel.sources.url", /starts with "-"/);
  },
);

// --- refs, tags and other values that land in an argv ----------------------------------------

const kernelGit = (tag: string) =>
  [
    "kernel:",
    '  version: "6.1.55"',
    "  build: true",
    `  sources: {kind: git, url: "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git", tag: ${JSON.stringify(tag)}}`,
    netmapGit("https://github.com/luigirizzo/netmap"),
  ].join("\n");

const badTags: Array<[string, RegExp]> = [
  ["--upload-pack=touch", /starts with "-"/],
  ["-b", /starts with "-"/],
  ["v6.1..55", /not a valid git ref/],
  ["refs/tags/v6.1.55.lock", /not a valid git ref/],
  ["@{-1}", /"\{"|not a valid git ref/],
];
for (const [tag, why] of badTags) {
  corpus(`kernel.sources.tag ${JSON.stringify(tag)} is refused with exit 2`, async (t) => {
    const s = scratch(t);
    const file = writeRecipe(s, kernelGit(tag));
    await refusedEverywhere(t, s, file, "kernel.sources.tag", why);
  });
}

corpus("a netmap moving ref starting with - is refused, even with allowMovingRef", async (t) => {
  const s = scratch(t);
  const moving = writeRecipe(
    s,
    netmapGit("https://github.com/luigirizzo/netmap", "--upload-pack=touch", ", allowMovingRef: true"),
  );
  await refusedEverywhere(t, s, moving, "netmap.source.commit", /starts with "-"/);
  const pinned = writeRecipe(s, netmapGit("https://github.com/luigirizzo/netmap", "-x"), "pinned.yaml");
  await hostileCase(t, s, {
    args: ["recipe", "validate", pinned],
    exit: 2,
    message: /pinned\.yaml:3:\d+: (error: )?netmap\.source\.commit: /,
  });
});

const otherFields: Array<[string, string, string, RegExp]> = [
  [
    "an interface name -x",
    `${netmapGit("https://github.com/luigirizzo/netmap")}verify:\n  pktgen: {interfaces: [-x]}\n`,
    "verify.pktgen.interfaces[0]",
    /starts with "-"/,
  ],
  [
    "an interface name --help",
    `${netmapGit("https://github.com/luigirizzo/netmap")}verify:\n  pktgen: {interfaces: ["--help"]}\n`,
    "verify.pktgen.interfaces[0]",
    /starts with "-"/,
  ],
  [
    "a module name -x",
    `netmap:\n  moduleName: "-x"\n  source: {kind: git, url: "https://github.com/luigirizzo/netmap", commit: ${COMMIT}}\n`,
    "netmap.moduleName",
    /start with a letter/,
  ],
  [
    "a driver token -e1000",
    `${netmapGit("https://github.com/luigirizzo/netmap")}drivers: ["-e1000"]\n`,
    "drivers[0]",
    /not a known netmap driver/,
  ],
  [
    "a tarball URL starting with -",
    `netmap:\n  source: {kind: tarball, url: "--output=/etc/x", sha256: ${"a".repeat(64)}}\n`,
    "netmap.source.url",
    /starts with "-"/,
  ],
  [
    "a configure option value that is not plain text",
    `netmap:\n  source: {kind: git, url: "https://github.com/luigirizzo/netmap", commit: ${COMMIT}}\n  configure: {options: ["--cc=gcc;touch"]}\n`,
    "netmap.configure.options[0]",
    /shell metacharacter/,
  ],
  [
    "a configure option that is not an option",
    `netmap:\n  source: {kind: git, url: "https://github.com/luigirizzo/netmap", commit: ${COMMIT}}\n  configure: {options: ["-x"]}\n`,
    "netmap.configure.options[0]",
    /must start with "--"/,
  ],
  [
    "a config fragment -x",
    `kernel:\n  config: {fragments: ["-x"]}\n${netmapGit("https://github.com/luigirizzo/netmap")}`,
    "kernel.config.fragments[0]",
    /may only contain/,
  ],
  [
    "a source package name -x",
    `kernel:\n  sources: {kind: running-headers, package: "-x"}\n${netmapGit("https://github.com/luigirizzo/netmap")}`,
    "kernel.sources.package",
    /not a valid package name/,
  ],
];
for (const [what, body, field, why] of otherFields) {
  corpus(`${what} is refused with exit 2 at file:line:col`, async (t) => {
    const s = scratch(t);
    const file = writeRecipe(s, body);
    await refusedEverywhere(t, s, file, field, why);
  });
}

// --- URL passwords -----------------------------------------------------------------------------

/** Every file under the scratch tree (but the recipe itself) that holds the secret. */
function filesWithSecret(s: Scratch, skip: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const rel = relative(s.root, p);
      if (skip.includes(rel)) continue;
      if (rel.includes(SECRET)) hits.push(`${rel} (in its name)`);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && readFileSync(p).includes(SECRET)) hits.push(rel);
    }
  };
  walk(s.root);
  return hits;
}

corpus(
  "a URL with a password in an invalid recipe: the error shows the URL without the password",
  async (t) => {
    const s = scratch(t);
    const file = writeRecipe(s, netmapGit(`https://user:${SECRET}@-example.org/net map.git`));
    for (const args of [
      ["recipe", "validate", file],
      ["recipe", "validate", "--json", file],
      ["plan", "--json", "--recipe", file, "--root", s.host, ...dirs(s)],
    ]) {
      const r = await hostileCase(t, s, {
        args,
        exit: 2,
        message: /netmap\.source\.url: git URL "https:\/\/user:\*\*\*@/,
      });
      t.false(`${r.stdout}${r.stderr}`.includes(SECRET), `${r.stdout}\n${r.stderr}`);
    }
  },
);

corpus(
  "a kernel git URL with a password: plan shows the clone with -- and without the password",
  async (t) => {
    const s = scratch(t);
    const file = writeRecipe(
      s,
      [
        "kernel:",
        '  version: "6.1.55"',
        "  build: true",
        `  sources: {kind: git, url: "https://user:${SECRET}@example.org/linux.git", tag: v6.1.55}`,
        netmapGit(`https://user:${SECRET}@example.org/netmap.git`),
      ].join("\n"),
    );
    for (const json of [[], ["--json"]]) {
      const r = await runCli(s, ["plan", ...json, "--recipe", file, "--root", s.host, ...dirs(s)]);
      t.true(r.exitCode === 0 || r.exitCode === 4, `${r.exitCode}\n${r.stderr}`);
      t.false(`${r.stdout}${r.stderr}`.includes(SECRET), `${r.stdout}\n${r.stderr}`);
      const shown = json.length
        ? ((r.json?.steps as Array<{ commands: Array<{ argv: string[] }> }> | undefined) ?? [])
            .flatMap((x) => x.commands.map((c) => c.argv.join(" ")))
            .join("\n")
        : r.stdout.replaceAll("'", "");
      t.regex(
        shown,
        /git clone --quiet --depth 1 --branch v6\.1\.55 -- https:\/\/user:\*\*\*@example\.org\/linux\.git /,
      );
    }
  },
);

corpus(
  "a failing build with a password in the netmap URL: never in output, JSON, logs or the cache",
  async (t) => {
    const s = scratch(t);
    // Port 1 on loopback refuses at once: the fetch fails fast, after git saw the URL.
    const file = writeRecipe(s, netmapGit(`http://user:${SECRET}@127.0.0.1:1/netmap.git`));
    const kernelDir = join(s.host, "usr", "src", "linux-headers-6.1.0-56-amd64");
    for (const json of [[], ["--json"]]) {
      const r = await hostileCase(t, s, {
        args: [
          "build",
          ...json,
          "--recipe",
          file,
          "--cache-dir",
          s.cache,
          "--kernel-dir",
          kernelDir,
          "--drivers",
          "e1000",
        ],
        exit: 4,
        message: /cannot fetch netmap from http:\/\/user:\*\*\*@127\.0\.0\.1:1\/netmap\.git/,
      });
      t.false(`${r.stdout}${r.stderr}`.includes(SECRET), `${r.stdout}\n${r.stderr}`);
    }
    // The logs name the git commands that ran, URL after --, password hidden.
    const logs = readdirSync(join(s.cache, "work")).flatMap((w) =>
      readdirSync(join(s.cache, "work", w, "logs")).map((f) =>
        readFileSync(join(s.cache, "work", w, "logs", f), "utf8"),
      ),
    );
    t.true(
      logs.some((l) => l.includes("git fetch --quiet --depth 1 -- http://user:***@127.0.0.1:1/netmap.git")),
    );
    t.deepEqual(filesWithSecret(s, ["in/r.yaml"]), []);
  },
);

corpus(
  "a failing up with a password in the netmap URL: never in output, JSON or the state and cache dirs",
  async (t) => {
    const s = scratch(t);
    const file = writeRecipe(s, netmapGit(`http://user:${SECRET}@127.0.0.1:1/netmap.git`));
    // up runs on this host only (--root /): it is blocked here (no headers) or fails fetching; it
    // installs nothing either way, since the build comes first.
    for (const json of [[], ["--json"]]) {
      const r = await runCli(s, ["up", ...json, "--recipe", file, ...dirs(s), "--drivers", "e1000"]);
      t.false(r.timedOut);
      t.true([1, 2, 4].includes(r.exitCode ?? -1), `exit ${r.exitCode}\n${r.stderr}`);
      t.false(`${r.stdout}${r.stderr}`.includes(SECRET), `${r.stdout}\n${r.stderr}`);
      if (json.length) t.is(r.json?.ok, false);
    }
    t.deepEqual(filesWithSecret(s, ["in/r.yaml"]), []);
  },
);

// --- up --from plans only what it does (point 6) --------------------------------------------

/** The scratch host without headers or sources: a host that only installs a bundle. */
function noHeaders(s: Scratch): void {
  rmSync(join(s.host, "lib", "modules", "6.1.0-56-amd64", "build"), { force: true });
  rmSync(join(s.host, "lib", "modules", "6.1.0-56-amd64", "source"), { force: true });
  rmSync(join(s.host, "usr", "src"), { recursive: true, force: true });
  for (const tool of ["cc", "gcc", "make", "ld", "bison", "flex", "bc"])
    rmSync(join(s.host, "usr", "bin", tool), { force: true });
}

corpus(
  "plan --from <bundle> on a host without headers, sources or compiler: no build, not blocked for them",
  async (t) => {
    const s = scratch(t);
    noHeaders(s);
    mkdirSync(join(s.root, "in"), { recursive: true });
    const bundle = s.input("bundle.tar");
    writeFileSync(bundle, "");
    const file = writeRecipe(s, `${netmapGit("https://github.com/luigirizzo/netmap")}drivers: [e1000]\n`);
    const common = ["plan", "--json", "--recipe", file, "--root", s.host, ...dirs(s), "--allow-management"];
    const built = await runCli(s, common);
    t.is(built.exitCode, 4, "without --from the same host is blocked for the build");
    const blockedFor = (r: typeof built) =>
      ((r.json?.blockers as Array<{ id: string }> | undefined) ?? []).map((b) => b.id);
    t.true(blockedFor(built).includes("build-dir"), JSON.stringify(blockedFor(built)));

    const r = await hostileCase(t, s, { args: [...common, "--from", bundle], exit: 0 });
    const steps = ((r.json?.steps as Array<{ id: string }> | undefined) ?? []).map((x) => x.id);
    t.deepEqual(blockedFor(r), []);
    for (const gone of ["netmap-source", "kernel-sources", "ext-drivers", "configure", "make", "manifest"])
      t.false(steps.includes(gone), `${gone} in ${steps.join(",")}`);
    for (const kept of ["preflight", "bundle", "install", "swap", "verify", "record"])
      t.true(steps.includes(kept), `${kept} missing from ${steps.join(",")}`);
    t.false(JSON.stringify(r.json).includes("git fetch"));
  },
);

corpus("plan --from refuses a bundle that is missing or not a regular file, without waiting", async (t) => {
  const s = scratch(t);
  const file = writeRecipe(s, netmapGit("https://github.com/luigirizzo/netmap"));
  const common = ["plan", "--json", "--recipe", file, "--root", s.host, ...dirs(s)];
  await hostileCase(t, s, {
    args: [...common, "--from", s.input("nope.tar")],
    exit: 2,
    message: /bundle .*nope\.tar does not exist/,
  });
  await hostileCase(t, s, {
    args: [...common, "--from", "/dev/zero"],
    exit: 2,
    message: /bundle \/dev\/zero is not a regular file/,
  });
  await hostileCase(t, s, { args: [...common, "--from", s.in], exit: 2, message: /not a regular file/ });
});
