#!/bin/sh
# Inside the virtual machine (root; the host's files, read-only but for $1).
OUT=$1
USER=autograder-tiers
{ uname -r; cat /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.controllers; } > "$OUT/machine.txt" 2>&1
# As root: the root cgroup.
export TIERS_TIME_SCALE=10
.venv/bin/python tests/tiers_case.py --no-victim > "$OUT/root.json" 2> "$OUT/root.err"
# As a normal user, in a cgroup it was delegated as systemd delegates one (Delegate=yes): the
# user owns the cgroup and its cgroup.procs, cgroup.subtree_control and cgroup.threads.
echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p /sys/fs/cgroup/delegated
chown "$USER" /sys/fs/cgroup/delegated /sys/fs/cgroup/delegated/cgroup.procs \
    /sys/fs/cgroup/delegated/cgroup.subtree_control /sys/fs/cgroup/delegated/cgroup.threads
sh -c "echo \$\$ > /sys/fs/cgroup/delegated/cgroup.procs && exec su $USER -s /bin/sh -c \
    'TIERS_TIME_SCALE=10 PYTHONPATH=$PWD exec /opt/autograder-tiers-venv/bin/python tests/tiers_case.py --no-victim'" \
    > "$OUT/user.json" 2> "$OUT/user.err"
