import test from "ava";
import { GIT_URL_SCHEMES, gitRefProblem, urlProblem } from "../../toolkit/recipe/safe-text.js";

/** Git URLs as people write them: all accepted. */
const goodUrls = [
  "https://github.com/luigirizzo/netmap",
  "https://github.com/luigirizzo/netmap.git",
  "https://user:s3cret@example.org/netmap.git",
  "https://user:p%40ss@example.org:8443/netmap.git",
  "http://mirror.local/netmap.git",
  "git://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git",
  "ssh://git@github.com/luigirizzo/netmap.git",
  "ssh://git@[2001:db8::1]:2222/netmap.git",
  "file:///srv/git/netmap.git",
  "file://localhost/srv/git/netmap.git",
  "git@github.com:luigirizzo/netmap.git",
  "github.com:luigirizzo/netmap.git",
  "build_user@10.0.0.2:~/netmap",
];
for (const u of goodUrls)
  test(`git URL accepted: ${u}`, (t) => {
    t.is(urlProblem(u, GIT_URL_SCHEMES), undefined);
  });

/** Git URLs git or ssh would read as options, or that run programs: each refused, with why. */
const badUrls: Array<[string, RegExp]> = [
  ["-uid@x:y", /starts with "-"/],
  ["--upload-pack=touch", /starts with "-"/],
  ["-oProxyCommand=x:y", /starts with "-"/],
  ["x@-oProxyCommand=touch:y", /host starting with "-"/],
  ["-x@host:path", /starts with "-"/],
  ["u@host:-path", /path starting with "-"/],
  ["@host:path", /empty user name/],
  ["host:", /no path/],
  ["ssh://-oProxyCommand=touch/y", /host starting with "-"/],
  ["ssh://%2DoProxyCommand=touch/y", /host starting with "-"/],
  ["ssh://-l@host/y", /user name starting with "-"/],
  ["ssh://%2dl@host/y", /user name starting with "-"/],
  ["ssh://git@-x/y", /host starting with "-"/],
  ["git://-x/y", /host starting with "-"/],
  ["https://-x/y", /host starting with "-"/],
  ["https://u:p@-x/y", /host starting with "-"/],
  ["ssh:///path", /no host/],
  ["https://ho%zzst/x", /malformed %-escape|is not a URL/],
  ["ssh://%zz@host/x", /malformed %-escape/],
  ["file://-x/y", /has a host/],
  ["ext::sh -c touch% x", /remote-helper/],
  ["ext::touch", /remote-helper/],
  ["fd::3", /remote-helper/],
  ["transport::address", /remote-helper/],
  ["https://example.org/a\tb", /control character/],
  ["https://example.org/\u001b[2J", /control character/],
  ["https://example.org/\u0000", /control character/],
  ["https://example.org/a b", /whitespace/],
  ["https://example.org/$(touch)", /shell metacharacter/],
  ["ftp://example.org/netmap", /uses "ftp:"/],
  ["/srv/netmap.git", /is not a URL/],
  ["./netmap", /is not a URL/],
  ["", /is empty/],
];
for (const [u, why] of badUrls)
  test(`git URL refused: ${JSON.stringify(u)}`, (t) => {
    t.regex(urlProblem(u, GIT_URL_SCHEMES) ?? "(accepted)", why);
  });

test("download URLs (https/http only) refuse scp-like and option-like forms too", (t) => {
  const https = ["https", "http"] as const;
  t.is(urlProblem("https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.55.tar.xz", https), undefined);
  t.is(urlProblem("https://user:pw@mirror.example/linux.tar.xz", https), undefined);
  t.regex(urlProblem("git@github.com:x/y", https) ?? "", /is not a URL/);
  t.regex(urlProblem("--output=/etc/passwd", https) ?? "", /starts with "-"/);
  t.regex(urlProblem("file:///etc/shadow", https) ?? "", /uses "file:"/);
});

test("git refs: tags, branches and commits pass; option-like and malformed ones do not", (t) => {
  for (const r of ["v6.1.55", "v11.0", "master", "feature/x", "89607e1406c1", "release-1.2+b"])
    t.is(gitRefProblem(r), undefined, r);
  const bad: Array<[string, RegExp]> = [
    ["-b", /starts with "-"/],
    ["--upload-pack=x", /starts with "-"/],
    ["", /is empty/],
    ["a..b", /not a valid git ref/],
    ["a//b", /not a valid git ref/],
    ["a/.b", /not a valid git ref/],
    [".hidden", /not a valid git ref/],
    ["/abs", /not a valid git ref/],
    ["x/", /not a valid git ref/],
    ["x.", /not a valid git ref/],
    ["x.lock", /not a valid git ref/],
    ["@", /not a valid git ref/],
    ["HEAD@{1}", /"\{"|not a valid git ref/],
    ["a:b", /not a valid git ref/],
    ["a~1", /not a valid git ref/],
    ["a^", /not a valid git ref/],
    ["a*", /not a valid git ref/],
    ["a\tb", /control character/],
    ["a b", /whitespace/],
    ["a;b", /shell metacharacter/],
  ];
  for (const [r, why] of bad) t.regex(gitRefProblem(r) ?? "(accepted)", why, JSON.stringify(r));
});
