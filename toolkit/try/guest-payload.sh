# netmap-provision try: the payload run as root inside the throwaway guest.
# Usage: sh guest-payload.sh NODE CLI BUNDLE [extra `up` arguments...]
# Everything it learns goes to ./try/ (cwd is the shared /xfer directory), read back by the host:
#   steps.tsv          id <TAB> exit status <TAB> milliseconds, one line per CLI command
#   <id>.json/.err     that command's stdout (its --json document) and stderr
#   before.tsv         interfaces after the stock drivers were loaded (as a host boot would)
#   after.tsv          interfaces after `down`; columns: ifname driver module srcversion file sha256
#   dmesg.txt          the kernel log from the marker written just before `up`
# Nothing from the host is spliced into this file: arguments arrive as argv.
NODE=$1
CLI=$2
BUNDLE=$3
shift 3
OUT=try
mkdir -p "$OUT"
: >"$OUT/steps.tsv"

# Test-only: NP_TRY_TEST_HANG=1 makes the guest never finish, to exercise try's timeout path.
if [ "${NP_TRY_TEST_HANG:-}" = 1 ]; then
  echo "netmap-provision try: NP_TRY_TEST_HANG=1, hanging on purpose" >/dev/console
  exec sleep 2147483647
fi

# Milliseconds since boot from /proc/uptime (centiseconds): no process to start, which under TCG
# costs more than the resolution lost.
# The fraction's leading zero goes first: "123.08" would otherwise be read as octal 08 and fail.
now_ms() {
  read -r up _ </proc/uptime
  cs=${up#*.}
  cs=${cs#0}
  echo $((${up%.*} * 1000 + ${cs:-0} * 10))
}

# One line per non-loopback interface: what drives it, and which bytes modprobe would load for it.
snapshot() {
  for n in /sys/class/net/*; do
    i=${n##*/}
    [ "$i" = lo ] && continue
    d=$(readlink "$n/device/driver" 2>/dev/null)
    d=${d##*/}
    m=$(readlink "$n/device/driver/module" 2>/dev/null)
    m=${m##*/}
    v=-
    f=-
    s=-
    if [ -n "$m" ]; then
      v=$(cat "/sys/module/$m/srcversion" 2>/dev/null || echo -)
      f=$(modinfo -n "$m" 2>/dev/null || echo -)
      [ -f "$f" ] && s=$(sha256sum "$f" | cut -d" " -f1)
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "${d:--}" "${m:--}" "$v" "$f" "$s"
  done
}

run_step() {
  id=$1
  shift
  echo "netmap-provision try: step $id" >/dev/console
  t0=$(now_ms)
  "$@" >"$OUT/$id.json" 2>"$OUT/$id.err"
  code=$?
  t1=$(now_ms)
  printf '%s\t%s\t%s\n' "$id" "$code" "$((t1 - t0))" >>"$OUT/steps.tsv"
  return "$code"
}

# No udev in the guest: load the drivers for the PCI devices the way coldplug would, so `up`
# finds the stock drivers bound, as on a freshly booted host.
t0=$(now_ms)
# QEMU's user network advertises an IPv6 default route: accepted, it would make the rehearsed NIC
# the management link, which `up` refuses to swap. The guest has no management link to protect.
for k in all default; do echo 0 >"/proc/sys/net/ipv6/conf/$k/accept_ra" 2>/dev/null; done
for a in /sys/bus/pci/devices/*/modalias; do
  modprobe -q -b "$(cat "$a")" 2>/dev/null
done
# A host's network setup brings its NICs up; a NIC left down would send one ring in netmap mode and stall.
for n in /sys/class/net/*; do
  [ "${n##*/}" = lo ] || ip link set dev "${n##*/}" up 2>/dev/null
done
printf 'coldplug\t0\t%s\n' "$(($(now_ms) - t0))" >>"$OUT/steps.tsv"

# depmod reads every module of the tree: thousands of files over 9p on an emulated CPU take
# minutes per run under TCG. Unless NP_TRY_FULL_MODULES=1, the guest's (throwaway) kernel/ tree is
# trimmed to the files of the modules loaded now, same bytes at the same paths, then indexed
# once, so `up` and `down` run their real depmod over a small tree.
if [ "${NP_TRY_FULL_MODULES:-}" != 1 ]; then
  t0=$(now_ms)
  kver=$(uname -r)
  keep=/run/np-trim
  while read -r m _; do
    f=$(modinfo -n "$m" 2>/dev/null) || continue
    case $f in /lib/modules/"$kver"/kernel/*) ;; *) continue ;; esac
    mkdir -p "$keep${f%/*}" && cp -p "$f" "$keep$f"
  done </proc/modules
  mount -t tmpfs np-trimmed-modules "/lib/modules/$kver/kernel" &&
    cp -a "$keep/lib/modules/$kver/kernel/." "/lib/modules/$kver/kernel/" &&
    depmod "$kver"
  printf 'trim-modules\t%s\t%s\n' "$?" "$(($(now_ms) - t0))" >>"$OUT/steps.tsv"
fi
snapshot >"$OUT/before.tsv"

echo "netmap-provision try: dmesg marker" >/dev/kmsg
run_step up "$NODE" "$CLI" up --from "$BUNDLE" --json "$@"
up=$?
run_step status "$NODE" "$CLI" status --json
# down runs even after a failed up: it is the recovery path for a rollback that failed (exit 3),
# and otherwise shows there is nothing left to undo.
run_step down "$NODE" "$CLI" down --json
down=$?
snapshot >"$OUT/after.tsv"
dmesg >"$OUT/dmesg.txt" 2>&1
[ "$up" -ne 0 ] && exit "$up"
exit "$down"
