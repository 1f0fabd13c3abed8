import test from "ava";
import { findTools, installCommand, loadBuildToolTable, toolSearchDirs } from "../../toolkit/host/tools.js";
import { hostTree } from "../helpers/hosts.js";

test("the table loads and names a package for every family", (t) => {
  const table = loadBuildToolTable();
  const names = table.tools.map((x) => x.name);
  for (const n of [
    "make",
    "gcc",
    "ld",
    "patch",
    "depmod",
    "modprobe",
    "bc",
    "bison",
    "flex",
    "qemu-system-x86_64",
    "busybox",
  ]) {
    t.true(names.includes(n), n);
  }
  for (const tool of table.tools) for (const pkg of Object.values(tool.packages)) t.truthy(pkg);
});

test("fixture tree: tools are looked up under the tree's bin dirs, not the test machine's PATH", (t) => {
  const tools = findTools(hostTree("debian12-e1000"), "/usr/bin:/bin");
  const missing = tools.filter((x) => x.path === null).map((x) => x.name);
  t.deepEqual(missing.sort(), ["busybox", "qemu-system-x86_64", "zstd"]);
  t.is(tools.find((x) => x.name === "depmod")?.path, "/usr/sbin/depmod");
});

test("install commands per family, packages deduplicated", (t) => {
  const tools = findTools(hostTree("debian12-e1000"), undefined).filter((x) =>
    ["depmod", "modprobe", "gcc", "cc"].includes(x.name),
  );
  t.deepEqual(installCommand("debian", tools), ["apt-get", "install", "-y", "gcc", "kmod"]);
  t.deepEqual(installCommand("rhel", tools), ["dnf", "install", "-y", "gcc", "kmod"]);
  t.deepEqual(installCommand("arch", tools), ["pacman", "-S", "--needed", "gcc", "kmod"]);
  t.is(installCommand("other", tools), null);
});

test("the real host: $PATH plus the sbin dirs; make is found (build-essential is installed here)", (t) => {
  t.true(toolSearchDirs("/", "/usr/bin:relative").includes("/usr/sbin"));
  t.false(toolSearchDirs("/", "/usr/bin:relative").includes("relative"));
  const make = findTools("/", process.env.PATH).find((x) => x.name === "make");
  t.truthy(make?.path);
});
