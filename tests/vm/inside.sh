#!/bin/sh
# Inside the virtual machine (root; the host's files, read-only but for $1): the cgroup v2 module
# as root (the root cgroup), then as a normal user in a cgroup delegated to it as systemd delegates
# one (Delegate=yes: the user owns the cgroup and its cgroup.procs, cgroup.subtree_control and
# cgroup.threads).
OUT=$1
USER=autograder-tiers
{ uname -r; cat /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.controllers; } > "$OUT/machine.txt" 2>&1
.venv/bin/python tests/vm/cgroup2_unit.py > "$OUT/root.json" 2> "$OUT/root.err"
echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p /sys/fs/cgroup/delegated
chown "$USER" /sys/fs/cgroup/delegated /sys/fs/cgroup/delegated/cgroup.procs \
    /sys/fs/cgroup/delegated/cgroup.subtree_control /sys/fs/cgroup/delegated/cgroup.threads
sh -c "echo \$\$ > /sys/fs/cgroup/delegated/cgroup.procs && exec su $USER -s /bin/sh -c \
    'PYTHONPATH=$PWD exec /usr/bin/python3 tests/vm/cgroup2_unit.py'" \
    > "$OUT/user.json" 2> "$OUT/user.err"
ls /sys/fs/cgroup/delegated > "$OUT/delegated.txt"
