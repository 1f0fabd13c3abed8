import type { ExecutionContext } from "ava";
import { readKvmFacts } from "../../toolkit/host/kvm.js";

/*
 * What an accelerator choice must be on the machine the tests run on, which may have no /dev/kvm
 * (containers, most CI), a /dev/kvm that is there but broken (nested hosts where `-cpu host`
 * aborts on an MSR write), or a working KVM. Only the device is read here; whether KVM works is
 * what the probe finds out, so NP_KVM_USABLE=1 (or 0) states it for a host where it is known.
 */

/** The device as the toolkit sees it: absent, present but not read-write for this user, or read-write. */
export type KvmDeviceState = "absent" | "no-access" | "read-write";

export function kvmDeviceState(root = "/"): KvmDeviceState {
  const f = readKvmFacts(root);
  if (!f.present) return "absent";
  return f.readWrite ? "read-write" : "no-access";
}

/** True when the device check alone decides (TCG, no boot, nothing cached). */
export const kvmDecidedWithoutProbe = (state: KvmDeviceState = kvmDeviceState()): boolean =>
  state !== "read-write";

const PROBE_BOOTED = /^KVM booted a test kernel in \d+\.\d s$/;
const PROBE_FAILED =
  /^(KVM probe failed: qemu exited -?\d+: \S.*|KVM probe timed out after \d+ s \(guest hung\))$/;

/**
 * Assert an accelerator choice ({accel, reason}) against this host's /dev/kvm:
 * - absent: TCG, "/dev/kvm does not exist";
 * - no-access: TCG, "/dev/kvm is not read-write for this user (<errno>)";
 * - read-write: the probe booted: KVM with its boot time, or TCG with qemu's complaint or the timeout;
 * and NP_KVM_USABLE=1 demands KVM, NP_KVM_USABLE=0 demands TCG, whatever the device.
 */
export function assertAccelChoice(
  t: ExecutionContext,
  choice: { accel: string; reason: string },
  state: KvmDeviceState = kvmDeviceState(),
  usable: string | undefined = process.env.NP_KVM_USABLE,
): void {
  const what = `/dev/kvm ${state}, NP_KVM_USABLE=${usable ?? "(unset)"}: ${choice.accel} (${choice.reason})`;
  if (usable === "1") t.is(choice.accel, "kvm", what);
  if (usable === "0") t.is(choice.accel, "tcg", what);
  switch (state) {
    case "absent":
      t.is(choice.accel, "tcg", what);
      t.is(choice.reason, "/dev/kvm does not exist", what);
      break;
    case "no-access":
      t.is(choice.accel, "tcg", what);
      t.regex(choice.reason, /^\/dev\/kvm is not read-write for this user \(E[A-Z]+\)$/, what);
      break;
    case "read-write":
      t.regex(choice.reason, choice.accel === "kvm" ? PROBE_BOOTED : PROBE_FAILED, what);
      break;
  }
}
