import test from "ava";
import type { StepDescription } from "../../toolkit/runner/step.js";
import { upDisagreements } from "../helpers/up-agreement.js";

// The checker the guest tiers hold `up` to: it must catch each way plan and run can differ.
const step = (id: string, argvs: string[][]): StepDescription => ({
  id,
  title: id,
  mutates: true,
  dependsOn: [],
  commands: argvs.map((argv) => ({ argv, mutates: true })),
  files: [],
  checks: [],
});
const plan = [
  step("configure", [["/src/configure", "--kernel-dir=/k"]]),
  step("make", [["make", "-j2"]]),
  step("install", [
    ["depmod", "6.1.0-1-amd64"],
    ["modinfo", "-k", "6.1.0-1-amd64", "-n", "netmap"],
  ]),
  step("verify", [["/cache/builds/<key>/pkt-gen", "-i", "vale0:0"]]),
];

test("plan and run agree: a cache-hit build (probes only) and every transaction command run in its step", (t) => {
  const ran = [
    { step: "build", argv: ["cc", "--version"] },
    { step: "install", argv: ["depmod", "6.1.0-1-amd64"] },
    { step: "install", argv: ["modinfo", "-k", "6.1.0-1-amd64", "-n", "netmap"] },
    { step: "verify", argv: ["/cache/builds/abc123/pkt-gen", "-i", "vale0:0"] },
  ];
  t.deepEqual(upDisagreements(plan, ran), []);
});

test("plan and run disagree: a command run but not planned, one planned but not run, one run in another step", (t) => {
  const ran = [
    { step: "install", argv: ["depmod", "6.1.0-1-amd64"] },
    { step: "swap", argv: ["modinfo", "-k", "6.1.0-1-amd64", "-n", "netmap"] },
    { step: "verify", argv: ["/cache/builds/abc/def/pkt-gen", "-i", "vale0:0"] },
  ];
  t.deepEqual(upDisagreements(plan, ran), [
    "swap ran, not planned for it: modinfo -k 6.1.0-1-amd64 -n netmap",
    "verify ran, not planned for it: /cache/builds/abc/def/pkt-gen -i vale0:0",
    "planned for install, not run: modinfo -k 6.1.0-1-amd64 -n netmap",
    "planned for verify, not run: '/cache/builds/<key>/pkt-gen' -i vale0:0",
  ]);
});

test("a build that compiled must have run every planned build command", (t) => {
  const ran = [
    { step: "build", argv: ["make", "-j2"] },
    { step: "install", argv: ["depmod", "6.1.0-1-amd64"] },
    { step: "install", argv: ["modinfo", "-k", "6.1.0-1-amd64", "-n", "netmap"] },
    { step: "verify", argv: ["/cache/builds/k/pkt-gen", "-i", "vale0:0"] },
  ];
  t.deepEqual(upDisagreements(plan, ran), ["planned for the build, not run: /src/configure --kernel-dir=/k"]);
});

test("the plan's cache word is held to: a planned hit that builds, and a planned miss that builds nothing, both disagree", (t) => {
  const transaction = [
    { step: "install", argv: ["depmod", "6.1.0-1-amd64"] },
    { step: "install", argv: ["modinfo", "-k", "6.1.0-1-amd64", "-n", "netmap"] },
    { step: "verify", argv: ["/cache/builds/k/pkt-gen", "-i", "vale0:0"] },
  ];
  const built = [
    { step: "build", argv: ["/src/configure", "--kernel-dir=/k"] },
    { step: "build", argv: ["make", "-j2"] },
  ];
  t.deepEqual(upDisagreements(plan, [...built, ...transaction], { key: "k", hit: true }), [
    "the plan said cache hit k, but up built",
  ]);
  t.deepEqual(upDisagreements(plan, transaction, { key: "k", hit: false }), [
    "the plan said the build runs (no cache entry k), but up built nothing",
  ]);
  t.deepEqual(upDisagreements(plan, [...built, ...transaction], { key: "k", hit: false }), []);
});
