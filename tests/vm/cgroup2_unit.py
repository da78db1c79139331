"""The cgroup v2 module alone (no kernel, no torch, the standard library only: seconds even when
emulated), in tests/vm's machine, as root or as a normal user in a delegated cgroup: limits that
hold and a kill that ends everything. Prints one JSON object."""
import json
import subprocess
import sys
import time

from autograder.grading import limits

report = {"describe": limits.describe(), "chosen": limits.chosen().NAME}
mechanism = limits.cgroup2
group = mechanism.Limits("unit", 256 * 2**20, pids=32)
report["base"] = str(group.path.parent)
report["files"] = {f: (group.path / f).read_text().strip() for f in ("memory.max", "memory.swap.max", "pids.max",
                                                                        "cpu.max", "memory.oom.group")}
# A fork bomb that goes on trying, and a memory hog beside it.
bomb = subprocess.Popen(group.wrap(["/bin/sh", "-c", "while :; do (sleep 600 &) 2>/dev/null; done"]))
time.sleep(5)
report["bomb_processes"] = len(group.pids())
hog = subprocess.Popen(group.wrap([sys.executable, "-c", "x = bytearray(512 * 2**20)"]))
report["hog_exit"] = hog.wait(timeout=300)
report["oom_killed"] = group.oom_killed()
group.kill_all()
report["left_after_kill"] = len(group.pids())
bomb.wait(timeout=60)
group.remove()
report["removed"] = not group.path.exists()
print(json.dumps(report))
