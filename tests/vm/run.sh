#!/bin/sh
# The cgroup v2 tiers, in a virtual machine booted with Debian's kernel 6.1 (this machine mounts
# cgroup v1): tests/vm/inside.sh runs the cgroup v2 module (tests/vm/cgroup2_unit.py) and
# warm-kernel grading (tests/tiers_case.py) as root and as a normal user in a subtree delegated to
# it as systemd delegates one. Prints each report; fails if a check of tests/vm/check.py fails.
set -eu
cd "$(dirname "$0")/../.."
KERNEL=$(tests/vm/setup.sh)
export PATH="${VM_DIR:-/var/tmp/autograder-vm}/venv/bin:$PATH"   # vng runs virtme-run
OUT=$(mktemp -d /var/tmp/autograder-vm-out.XXXXXX)
chmod 1777 "$OUT"
# The normal user and its environment of Debian's python3 (made once; tests/test_tiers.py uses them too).
.venv/bin/python -c "from tests.test_tiers import make_normal_user; make_normal_user()"
started=$(date +%s)
vng --disable-kvm --run "$KERNEL" --memory 3G --cpus 2 --verbose --rwdir "$OUT" \
    --exec "sh tests/vm/inside.sh $OUT" > "$OUT/console.log" 2>&1 || true
echo "vm: $(( $(date +%s) - started )) s" >&2
.venv/bin/python tests/vm/check.py "$OUT"
rm -rf "$OUT"
