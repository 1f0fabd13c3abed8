/**
 * The scripts that run inside the guest, as fixed text: nothing from the caller is ever spliced
 * into them. The payload's argv, cwd and env travel as NUL-separated files in the shared "xfer"
 * directory and the module list as a file in the initramfs, so no quoting question can arise.
 */

/** Printed on the serial console when the guest is about to run the payload (ends "boot"). */
export const PAYLOAD_START_MARKER = "netmap-guest: payload starting";
/** Printed when the payload has returned and its exit code is written. */
export const PAYLOAD_DONE_MARKER = "netmap-guest: payload finished";
/** Printed by the KVM probe's initramfs once the kernel ran /init. */
export const PROBE_MARKER = "netmap-guest: probe alive";
/** Prefix of a stage-1 failure line, shown in the serial tail. */
export const STAGE1_FAILED = "netmap-guest: FAILED:";

/** 9p message size: the virtio transport's maximum on 6.x is ~500 KiB; larger means fewer round trips. */
export const NINEP_MSIZE = 512000;

/** Where the initramfs keeps the module list, one name per line, in load order. */
export const MODULE_LIST_PATH = "etc/guest-modules";

/**
 * Stage 1, /init of the initramfs: load the modules, stack a tmpfs overlay on the host root shared
 * read-only over 9p, mount the read-write "xfer" share, and switch_root into stage 2.
 * The kernel has no CONFIG_DEVTMPFS_MOUNT, so /dev is mounted here.
 */
export const STAGE1_INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "${STAGE1_FAILED} $*"; /bin/busybox poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "netmap-guest: stage 1 on $(uname -r) at $(cut -d" " -f1 /proc/uptime) s"
while read -r m; do
  [ -n "$m" ] || continue
  insmod "/lib/modules/$m.ko" || fail "insmod $m"
done < /${MODULE_LIST_PATH}
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=${NINEP_MSIZE} hostroot /lower || fail "mount 9p hostroot"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "mount overlay"
mkdir -p /newroot/xfer
mount -t 9p -o trans=virtio,version=9p2000.L,msize=${NINEP_MSIZE} xfer /newroot/xfer || fail "mount 9p xfer"
# A fresh /run (the host's sockets and pid files mean nothing here). /tmp stays the host's, seen
# through the overlay: a checkout or a build cache under /tmp (CI clones, mkdtemp) must be visible.
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail "mount /run"
mkdir -p /newroot/run/netmap-guest
cp /bin/busybox /stage2 /newroot/run/netmap-guest/ || fail "copy stage 2"
mount --move /proc /newroot/proc || fail "move /proc"
mount --move /sys /newroot/sys || fail "move /sys"
mount --move /dev /newroot/dev || fail "move /dev"
exec switch_root /newroot /run/netmap-guest/busybox sh /run/netmap-guest/stage2
fail "switch_root"
`;

/**
 * Stage 2, run in the overlaid host root: bring up lo, read the payload's argv, env and cwd from
 * NUL-separated files in /xfer/.guest (each item a whole word: no quoting, no word splitting), run
 * it with stdout/stderr going to /xfer, write its exit status last through a rename so the host
 * never reads half of it, and power off. busybox is used by absolute path because the host root
 * may not have it. A shell rather than node runs this: node's start-up over 9p under TCG costs
 * 5-15 s, paid again by every payload that is itself node.
 */
export const STAGE2 = `BB=/run/netmap-guest/busybox
G=/xfer/.guest
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
$BB mkdir -p /dev/shm /dev/pts
$BB mount -t tmpfs tmpfs /dev/shm
$BB mount -t devpts devpts /dev/pts
$BB hostname netmap-guest
$BB ip link set lo up
while IFS= read -r -d "" kv; do export "$kv"; done < $G/env
IFS= read -r -d "" cwd < $G/cwd
set --
while IFS= read -r -d "" a; do set -- "$@" "$a"; done < $G/argv
echo "${PAYLOAD_START_MARKER} at $($BB cut -d" " -f1 /proc/uptime) s"
if cd "$cwd"; then
  "$@" </dev/null >/xfer/stdout 2>/xfer/stderr
  code=$?
else
  echo "netmap-guest: cannot cd to $cwd" >/xfer/stderr
  code=126
fi
echo "$code" >$G/exit-code.tmp && $BB mv $G/exit-code.tmp /xfer/exit-code
echo "${PAYLOAD_DONE_MARKER} (exit $code) at $($BB cut -d" " -f1 /proc/uptime) s"
$BB sync
$BB poweroff -f
`;

/** /init of the KVM probe: prove the kernel ran userspace, then power off. */
export const PROBE_INIT = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "${PROBE_MARKER}"
/bin/busybox poweroff -f
`;
