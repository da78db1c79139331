#!/bin/sh
# The cgroup v2 module (limits/cgroup2.py), in a virtual machine booted with Debian's kernel 6.1 (this machine mounts
# cgroup v1): tests/vm/cgroup2_unit.py as root, then as a normal user in a subtree delegated to it
# as systemd delegates one. Prints each report; fails if a check of tests/vm/check.py fails.
# (Warm-kernel grading in this emulated machine, tests/tiers_case.py --no-victim with
# TIERS_TIME_SCALE=10, took 35 minutes as root on a loaded 2-core machine: too slow for CI.)
set -eu
cd "$(dirname "$0")/../.."
KERNEL=$(tests/vm/setup.sh)
export PATH="${VM_DIR:-/var/tmp/autograder-vm}/venv/bin:$PATH"   # vng runs virtme-run
OUT=$(mktemp -d /var/tmp/autograder-vm-out.XXXXXX)
chmod 1777 "$OUT"
id autograder-tiers >/dev/null 2>&1 || useradd --create-home autograder-tiers   # the normal user (Debian's python3)
started=$(date +%s)
vng --disable-kvm --run "$KERNEL" --memory 2G --cpus 2 --verbose --rwdir "$OUT" \
    --exec "sh tests/vm/inside.sh $OUT" > "$OUT/console.log" 2>&1 || true
echo "vm: $(( $(date +%s) - started )) s" >&2
.venv/bin/python tests/vm/check.py "$OUT"
rm -rf "$OUT"
