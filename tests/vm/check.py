"""What tests/vm/inside.sh saw in the virtual machine. The cgroup v2 module: chosen, its limits
written, a fork bomb bounded, a memory hog killed (and seen as such), everything killed and the
cgroup removed, as root (in the root cgroup; in a login session's cgroup, whose other processes
stay where they are; in a service with Delegate=yes) and as the delegated user (whose own
processes moved to a leaf). Warm-kernel grading as root and as the delegated user:
tests/test_tiers.py's checks."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.test_tiers import check   # noqa: E402

out = Path(sys.argv[1])
print((out / "machine.txt").read_text())
print((out / "times.txt").read_text())


def report(name: str) -> dict:
    try:
        return json.loads((out / f"{name}.json").read_text().splitlines()[-1])
    except (OSError, IndexError, ValueError):
        sys.exit(f"{name}: no report; {out}/console.log says why:\n" + (out / f"{name}.err").read_text(errors="replace")[-3000:])


for name in ("root", "session", "service", "user"):
    unit = report(name)
    print(name, json.dumps(unit))
    assert unit["chosen"] == "cgroup v2", unit["describe"]
    assert unit["files"] == {"memory.max": str(256 * 2**20), "memory.swap.max": "0", "pids.max": "32",
                             "cpu.max": "100000 100000", "memory.oom.group": "1"}, unit["files"]
    assert 0 < unit["bomb_processes"] <= 32, unit
    assert unit["hog_exit"] == -9 and unit["oom_killed"], unit
    assert unit["left_after_kill"] == 0 and unit["removed"], unit
assert report("root")["base"] == report("session")["base"] == "/sys/fs/cgroup/autograder"
# Root in a session's cgroup moved nobody: the other process is still there.
neighbour = (out / "neighbour.txt").read_text().strip()
assert neighbour in (out / "session_procs.txt").read_text().split(), "root's grader moved a process not its own"
# Root in a delegated service uses its own subtree, its processes moved to a leaf.
assert report("service")["base"] == "/sys/fs/cgroup/grader.service/autograder"
assert {"autograder-grader", "autograder"} <= set((out / "service.txt").read_text().split())
assert report("user")["base"] == "/sys/fs/cgroup/delegated/autograder"
delegated = (out / "delegated.txt").read_text().split()
assert "autograder-grader" in delegated and "autograder" in delegated, delegated
print("cgroup v2 module as root, as root in a session and in a delegated service, as a delegated user: passed")

for name, uid in (("warm_root", 0), ("warm_user", None)):
    warm = report(name)
    print(name, json.dumps(warm))
    assert warm["mechanism"] == "cgroup v2", warm["describe"]
    assert (warm["uid"] == 0) == (uid == 0), warm["uid"]
    check(warm, victim=False)
print("warm-kernel grading through cgroup v2 as root and as a delegated user: passed")
