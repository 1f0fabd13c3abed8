import test from "ava";
import { escapeControl, hasControl } from "../../toolkit/core/terminal-text.js";

test("ESC, BEL and the other C0 characters are shown as escapes; newline and tab are kept", (t) => {
  t.is(escapeControl("eth\u001b]0;pwned\u0007"), "eth\\x1b]0;pwned\\x07");
  t.is(escapeControl("a\u001b[2Jb"), "a\\x1b[2Jb");
  t.is(escapeControl("nul\u0000 bs\u0008 cr\r"), "nul\\x00 bs\\x08 cr\\r");
  t.is(escapeControl("line one\n\tline two"), "line one\n\tline two");
});

test("DEL and the C1 range (8-bit CSI, OSC) are escaped too; other text is untouched", (t) => {
  t.is(escapeControl("x\u007fy"), "x\\x7fy");
  t.is(escapeControl("\u009b31m\u009d0;t\u009c"), "\\x9b31m\\x9d0;t\\x9c");
  t.is(escapeControl("Debian GNU/Linux 12 (bookworm) – ü ✓"), "Debian GNU/Linux 12 (bookworm) – ü ✓");
  t.is(escapeControl("sep\u2028par\u2029"), "sep\\u2028par\\u2029");
});

test("the escaped text holds no control character, and hasControl tells which needs it", (t) => {
  const hostile = `${String.fromCharCode(...Array.from({ length: 32 }, (_, i) => i))}\u007f\u0085`;
  const shown = escapeControl(hostile);
  t.false(hasControl(shown));
  t.true(hasControl(hostile));
  t.false(hasControl("plain\ttext\n"));
  // Repeated calls: the global regexp keeps no state between them.
  t.true(hasControl("\u001b"));
  t.true(hasControl("\u001b"));
});
