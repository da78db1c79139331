"""What tests/vm/inside.sh saw in the virtual machine: the cgroup v2 module chosen, its limits
written, a fork bomb bounded, a memory hog killed (and seen as such), everything killed and the
cgroup removed; as root and as the delegated user (whose own processes moved to a leaf)."""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
print((out / "machine.txt").read_text())
for name in ("root", "user"):
    try:
        report = json.loads((out / f"{name}.json").read_text().splitlines()[-1])
    except (OSError, IndexError, ValueError):
        sys.exit(f"{name}: no report; {out}/console.log says why:\n" + (out / f"{name}.err").read_text(errors="replace")[-2000:])
    print(name, json.dumps(report))
    assert report["chosen"] == "cgroup v2", report["describe"]
    assert report["files"] == {"memory.max": str(256 * 2**20), "memory.swap.max": "0", "pids.max": "32",
                               "cpu.max": "100000 100000", "memory.oom.group": "1"}, report["files"]
    assert 0 < report["bomb_processes"] <= 32, report
    assert report["hog_exit"] == -9 and report["oom_killed"], report
    assert report["left_after_kill"] == 0 and report["removed"], report
delegated = (out / "delegated.txt").read_text().split()
assert "autograder-grader" in delegated and "autograder" in delegated, delegated
print("cgroup v2 as root and as a delegated user: passed")
