import test from "ava";
import { redactArgv, redactSecrets, redactUrl } from "../../toolkit/core/redact.js";

test("redactUrl hides the password and keeps the user", (t) => {
  t.is(redactUrl("https://user:s3cret@example.org/netmap.git"), "https://user:***@example.org/netmap.git");
  t.is(redactUrl("ssh://git:pw@host:2222/x.git"), "ssh://git:***@host:2222/x.git");
  t.is(redactUrl("HTTP://u:p@h"), "HTTP://u:***@h");
});

test("redactUrl leaves URLs without a password alone", (t) => {
  for (const u of [
    "https://github.com/luigirizzo/netmap.git",
    "https://user@example.org/x.git",
    "git@github.com:luigirizzo/netmap.git",
    "file:///srv/netmap.git",
    "/srv/netmap",
  ])
    t.is(redactUrl(u), u);
});

test("a password holding @ or : is hidden whole", (t) => {
  t.is(redactUrl("https://u:p@ss:w@host/x@y"), "https://u:***@host/x@y");
  t.is(redactUrl("https://u:%40s3cret@host/"), "https://u:***@host/");
});

test("redactSecrets finds every URL in a text", (t) => {
  const text = `git clone -- 'https://a:s3cret@h1/x' "http://b:t0ken@h2/y" and https://c@h3/z failed`;
  const out = redactSecrets(text);
  t.false(out.includes("s3cret"));
  t.false(out.includes("t0ken"));
  t.true(out.includes("https://a:***@h1/x"));
  t.true(out.includes("http://b:***@h2/y"));
  t.true(out.includes("https://c@h3/z"));
});

test("redactSecrets across lines and in JSON", (t) => {
  const json = JSON.stringify({ url: "https://user:s3cret@example.org/netmap.git", argv: ["git", "x"] });
  t.false(redactSecrets(json).includes("s3cret"));
  t.deepEqual(JSON.parse(redactSecrets(json)).url, "https://user:***@example.org/netmap.git");
  t.false(redactSecrets("a\nhttps://u:s3cret@h/\nb").includes("s3cret"));
});

test("redactArgv maps every element", (t) => {
  t.deepEqual(redactArgv(["git", "clone", "--", "https://u:p@h/x", "dir"]), [
    "git",
    "clone",
    "--",
    "https://u:***@h/x",
    "dir",
  ]);
});
