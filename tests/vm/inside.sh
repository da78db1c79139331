#!/bin/sh
# Inside the virtual machine (root; the host's files, read-only but for $1). The cgroup v2 module
# (tests/vm/cgroup2_unit.py) as root in the root cgroup; as root in a login session's cgroup
# (systemd's session-N.scope: not delegated, other processes in it); as root in a service with
# Delegate=yes (marked trusted.delegate); as a normal user in a cgroup
# delegated to it as systemd delegates one (Delegate=yes: the user owns the cgroup and its
# cgroup.procs, cgroup.subtree_control and cgroup.threads). Then warm-kernel grading
# (tests/tiers_case.py: a correct notebook, a fork bomb, a memory hog, a daemon, the correct one
# again) as root in the session's cgroup and as the normal user in the delegated one.
OUT=$1
USER=autograder-tiers
USER_PYTHON=/opt/autograder-tiers-venv/bin/python   # Debian's python3 (tests/test_tiers.py makes it)
export PYTHONPATH=$PWD
{ uname -r; cat /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.controllers; } > "$OUT/machine.txt" 2>&1
stamp() { echo "$(date +%s) $1" >> "$OUT/times.txt"; }
stamp start
.venv/bin/python tests/vm/cgroup2_unit.py > "$OUT/root.json" 2> "$OUT/root.err"
echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control

# A login session's cgroup, with a process of somebody else's in it.
mkdir -p /sys/fs/cgroup/session-1.scope
sleep 100000 &
NEIGHBOUR=$!
echo $NEIGHBOUR > /sys/fs/cgroup/session-1.scope/cgroup.procs
in_cgroup() { group=$1; shift; sh -c "echo \$\$ > /sys/fs/cgroup/$group/cgroup.procs && exec \"\$@\"" sh "$@"; }
in_cgroup session-1.scope .venv/bin/python tests/vm/cgroup2_unit.py > "$OUT/session.json" 2> "$OUT/session.err"
cat /sys/fs/cgroup/session-1.scope/cgroup.procs > "$OUT/session_procs.txt"
echo "$NEIGHBOUR" > "$OUT/neighbour.txt"

# A service with Delegate=yes, marked as systemd marks the cgroups it delegates (trusted.delegate).
mkdir -p /sys/fs/cgroup/grader.service
.venv/bin/python -c "import os; os.setxattr('/sys/fs/cgroup/grader.service', 'trusted.delegate', b'1')"
in_cgroup grader.service .venv/bin/python tests/vm/cgroup2_unit.py > "$OUT/service.json" 2> "$OUT/service.err"
ls /sys/fs/cgroup/grader.service > "$OUT/service.txt"

# A cgroup delegated to the user, with nothing in it yet, as systemd-run --user --scope makes one.
delegate() {
    mkdir -p "/sys/fs/cgroup/$1"
    chown "$USER" "/sys/fs/cgroup/$1" "/sys/fs/cgroup/$1/cgroup.procs" \
        "/sys/fs/cgroup/$1/cgroup.subtree_control" "/sys/fs/cgroup/$1/cgroup.threads"
}
as_user() { sh -c "echo \$\$ > /sys/fs/cgroup/$1/cgroup.procs && exec su $USER -s /bin/sh -c '$2'"; }
delegate delegated
as_user delegated "PYTHONPATH=$PWD exec /usr/bin/python3 tests/vm/cgroup2_unit.py" > "$OUT/user.json" 2> "$OUT/user.err"
ls /sys/fs/cgroup/delegated > "$OUT/delegated.txt"
stamp units

# Warm kernels, each time limit ten times the host's (the emulator is ~35 times slower).
export TIERS_TIME_SCALE=10
in_cgroup session-1.scope .venv/bin/python tests/tiers_case.py --no-victim > "$OUT/warm_root.json" 2> "$OUT/warm_root.err"
stamp warm_root
delegate delegated-warm
as_user delegated-warm "cd $PWD && TIERS_TIME_SCALE=10 PYTHONPATH=$PWD exec $USER_PYTHON tests/tiers_case.py --no-victim" \
    > "$OUT/warm_user.json" 2> "$OUT/warm_user.err"
stamp warm_user
kill $NEIGHBOUR
