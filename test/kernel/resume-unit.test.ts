import test from "ava";
import { RESUME_UNIT_NAME, renderResumeUnit } from "../../toolkit/kernel/resume-unit.js";

test("the resume unit is a one-shot that runs up --resume once, guarded by resume.json", (t) => {
  const text = renderResumeUnit({
    cli: ["/usr/bin/node", "/opt/np/dist/toolkit/cli/main.js"],
    recipe: "/etc/netmap-provision/lab.yaml",
    stateDir: "/var/lib/netmap-provision",
  });
  t.is(RESUME_UNIT_NAME, "netmap-provision-resume.service");
  t.true(text.includes("Type=oneshot\n"));
  t.true(text.includes("ConditionPathExists=/var/lib/netmap-provision/resume.json\n"));
  t.true(
    text.includes(
      "ExecStart=/usr/bin/node /opt/np/dist/toolkit/cli/main.js up --recipe /etc/netmap-provision/lab.yaml --state-dir /var/lib/netmap-provision --resume\n",
    ),
  );
  t.true(text.includes("WantedBy=multi-user.target\n"));
  t.regex(text, /^\[Unit\]\n[\s\S]*\[Service\]\n[\s\S]*\[Install\]\n/);
});

test("words with spaces, quotes, $ and % are quoted for systemd", (t) => {
  const text = renderResumeUnit({ cli: ["np"], recipe: '/r/my "lab" $HOME 100%.yaml', stateDir: "/s" });
  t.true(text.includes('--recipe "/r/my \\"lab\\" $$HOME 100%%.yaml"'));
});
