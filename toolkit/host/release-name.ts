/**
 * A kernel release as `uname -r` prints it ("6.1.0-56-amd64", "5.14.0-362.el9.x86_64"). Releases
 * become path parts (/lib/modules/<release>, /boot/config-<release>, backups/<release>), and they
 * are read from outside (/proc/sys/kernel/osrelease of a host tree, installed.json, a journal):
 * anything else, such as `../../../../etc`, must never be used to build a path.
 */
export const KERNEL_RELEASE_RE = /^\d+\.\d+[0-9A-Za-z._+~-]{0,120}$/;

export function isKernelRelease(s: string): boolean {
  return KERNEL_RELEASE_RE.test(s) && !s.includes("..");
}
