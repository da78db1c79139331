"""Warm kernels (autograder/grading/warm.py, the end of kernel.py): submissions graded one after the other
by the same worker process run in children of the same preloaded parent, and nothing of one
reaches the next.

These tests drive ``execute.run`` in this process, as a grading worker does, with a sandbox and a
submission's limits (:mod:`limits`: the machine's; they need bubblewrap).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import nbformat
import pytest

from autograder.grading import execute, sandbox, warm
from autograder.grading import limits as mechanisms
from autograder.grading.prepare import Prepared, Step

pytestmark = pytest.mark.skipif(not sandbox.bwrap_status()[0], reason="warm kernels need bubblewrap")

LAUNCH = {"memory_bytes": 2**30, "file_bytes": 64 * 2**20, "cwd_bytes": 64 * 2**20}
MARKER = "autograder-warm-leftover"

# What one submission sees of the one before (printed), then what it leaves behind for the next.
LOOK = f"""
import os, sys, torch
print("global:", "leaked_global" in globals())
print("torch.sigmoid patched:", getattr(torch.sigmoid, "patched", False))
print("file:", sorted(os.listdir(".")), os.path.exists("/tmp/leak.txt"))
print("env:", os.environ.get("LEAKED_VARIABLE"))
others = [p for p in os.listdir("/proc") if p.isdigit() and p != str(os.getpid())]
print("other processes:", [open(f"/proc/{{p}}/cmdline").read().replace(chr(0), " ") for p in others])
"""
LEAVE = f"""
import subprocess, sys
leaked_global = 1
def patched(x):
    return x
patched.patched = True
torch.sigmoid = patched
open("leak.txt", "w").write("left behind")
open("/tmp/leak.txt", "w").write("left behind")
os.environ["LEAKED_VARIABLE"] = "left behind"
# A daemon: double fork and setsid, so that it is nobody's child.
subprocess.Popen([sys.executable, "-c", "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(600)",
                  "{MARKER}"], start_new_session=True).wait()
import threading, time
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
print("left:", "leaked_global" in globals(), getattr(torch.sigmoid, "patched", False), os.path.exists("leak.txt"),
      os.environ.get("LEAKED_VARIABLE"))
"""


def prepared(*codes: str) -> Prepared:
    return Prepared(nbformat.v4.new_notebook(), Path("submission.ipynb"),
                    steps=[Step("student", code, cell=i) for i, code in enumerate(codes)])


def grade(*codes: str, timeout: float = 60.0, files: dict | None = None):
    """Run ``codes`` as one submission, as a worker does: a cgroup and a working folder of its own."""
    limits = mechanisms.chosen().Limits(f"test-warm-{os.getpid()}", 2 * 2**30)
    workdir, cwd = execute.make_workdir(None, None)
    for name, text in (files or {}).items():
        (workdir / "files" / name).write_text(text)
    try:
        return execute.run(prepared(*codes), LAUNCH, timeout, True, workdir, cwd, limits=limits)
    finally:
        limits.remove()
        shutil.rmtree(workdir, ignore_errors=True)


def printed(execution, step: int) -> str:
    return "".join(o.get("text", "") for o in execution.results[step].outputs)


def leftovers() -> str:
    return subprocess.run(["pgrep", "-af", MARKER], capture_output=True, text=True).stdout.strip()


def the_parent() -> warm.Parent:
    (parent,) = warm._parents.values()
    return parent


def test_nothing_of_one_submission_reaches_the_next():
    first = grade(LOOK, LEAVE)
    starts = the_parent().starts
    assert [r.status for r in first.results] == ["ok", "ok"], first.results
    assert "left: True True True left behind" in printed(first, 1)   # the traces were there
    assert leftovers() == "", "a process of the first submission outlived it"
    second = grade(LOOK, "print(open('given.txt').read())", files={"given.txt": "the second's own file"})
    seen = printed(second, 0)
    assert the_parent().starts == starts, "not the same warm parent"
    assert "global: False" in seen
    assert "torch.sigmoid patched: False" in seen
    assert "file: ['given.txt'] False" in seen   # its own file only, no leak.txt
    assert "env: None" in seen
    assert "other processes: []" in seen
    assert printed(second, 1).strip() == "the second's own file"


def test_a_child_cannot_see_its_parent_and_the_parent_keeps_no_secret():
    execution = grade("import os, sys\nprint('pid', os.getpid(), 'parent', os.getppid())\n"
                      "print('processes', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
                      "print(sorted(m for m in sys.modules if 'autograder' in m))\n"
                      "print('read-only', bool(os.statvfs('/proc/sys').f_flag & os.ST_RDONLY))")
    out = printed(execution, 0)
    # PID 1 of a namespace of its own: no parent to name, no other process to see.
    assert "pid 1 parent 0\nprocesses [1]\n" in out, out
    # Its own /proc, but what of it writes to the whole machine stays read-only (uid 0 in the
    # sandbox is the host's root for /proc/sys's permission bits).
    assert "read-only True" in out
    assert "['_autograder_kernel']" in out


def test_time_limits_deaths_and_the_rest_of_the_notebook():
    execution = grade("x = 1", "import os\nos._exit(3)", "print('after', x)", "while True:\n    pass",
                      "print('still', x)", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
                      timeout=6)
    statuses = [(r.status, r.killed) for r in execution.results]
    assert statuses == [("ok", False), ("died", False), ("ok", False), ("timeout", False), ("ok", False),
                        ("timeout", True)], statuses
    assert execution.results[1].exit_code == 3
    assert printed(execution, 2) == "after 1\n" and printed(execution, 4) == "still 1\n"   # replayed
    assert "KeyboardInterrupt" in str(execution.results[3].outputs)
    assert leftovers() == ""


def test_a_dead_parent_is_restarted():
    grade("pass")
    parent = next(iter(warm._parents.values()))
    os.killpg(parent.proc.pid, signal.SIGKILL)          # from outside
    assert [r.status for r in grade("print(1 + 1)").results] == ["ok"]
    # A parent whose children cannot start (here: its open-file limit lowered from outside, as a
    # child could before children had PID namespaces of their own): a new parent grades the notebook.
    starts = parent.starts
    import resource
    resource.prlimit(parent.pid, resource.RLIMIT_NOFILE, (5, 5))
    assert [r.status for r in grade("print(2 + 2)").results] == ["ok"] and parent.starts == starts + 1
    # From inside, a child can kill nothing but what it started itself: the parent stays.
    killer = grade("import os, signal\nfor pid in range(2, 4096):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
                   "    except OSError:\n        pass\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
                   "print('alive')")
    assert printed(killer, 0) == "alive\n" and parent.alive() and parent.starts == starts + 1


def test_the_switch_to_one_kernel_process_per_submission(monkeypatch):
    code = "import sys\nprint('ipykernel' in sys.modules)"
    assert printed(grade(code), 0) == "False\n"
    monkeypatch.setenv("AUTOGRADER_KERNELS", "cold")
    assert printed(grade(code), 0) == "True\n"


def test_input_fails_as_in_a_kernel_process(monkeypatch):
    """No one types during grading: input() raises what a kernel process (ipykernel, as nbgrader's)
    raises, not the EOFError of reading /dev/null."""
    code = "name = input('your name? ')"
    warm_result = grade(code).results[0]
    monkeypatch.setenv("AUTOGRADER_KERNELS", "cold")
    cold_result = grade(code).results[0]
    assert (warm_result.status, warm_result.ename) == ("error", "StdinNotImplementedError"), warm_result
    assert (warm_result.ename, warm_result.evalue) == (cold_result.ename, cold_result.evalue)


def test_what_a_killed_worker_left_is_removed_and_nothing_of_a_running_one(tmp_path):
    """A worker killed mid-task cannot clean up: the names of its folders and cgroups carry their
    owner (pid namespace, pid, start time), and the next worker removes those whose owner is no
    longer running; nothing of a running process, of another pid namespace, or unnamed."""
    if mechanisms.chosen() is not mechanisms.cgroup1:
        pytest.skip("the cgroups of this test are cgroup v1's")
    owner = subprocess.Popen(["sleep", "600"])
    namespace = sandbox.owner_tag().split(".")[0]
    dead = f"{namespace}.{owner.pid}.{sandbox._start_time(owner.pid)}"
    running = f"{namespace}.{os.getppid()}.{sandbox._start_time(os.getppid())}"
    kept = [f"agr-task-{sandbox.owner_tag()}-a", f"agr-{running}-b", f"agr-task-1.{owner.pid}.1-c", "agr-task-d"]
    for name in [f"agr-task-{dead}-e", f"agr-{dead}-f", f"agr-warm-{dead}-g", *kept]:
        (tmp_path / name / "cwd").mkdir(parents=True)
    cgroup = mechanisms.cgroup1.Limits
    left_group, live_group = cgroup(f"{dead}-1", 2**30), cgroup(f"{sandbox.owner_tag()}-1", 2**30)
    try:
        owner.kill()
        owner.wait()
        sandbox.sweep_leftovers([str(tmp_path)])
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
        assert not any(path.exists() for path in left_group.paths), "the dead owner's cgroup is removed"
        assert all(path.exists() for path in live_group.paths), "a running owner's cgroup stays"
    finally:
        live_group.remove()
        left_group.remove()


# --- Attacks on the parent and channels between submissions (issue 16) ---------------------------
# Each: a control submission, the attacker, then a victim graded by the same warm parent.

SETTINGS = """
import os, resource
print("nice", os.getpriority(os.PRIO_PROCESS, 0), "cpus", sorted(os.sched_getaffinity(0)),
      "oom", open("/proc/self/oom_score_adj").read().strip(), "nofile", resource.getrlimit(resource.RLIMIT_NOFILE))
"""
# What the attacker did to its parent, to every process this one can name; then to itself,
# to show that the calls work (the control).
ATTACK_PARENT = """
import os, resource
def attack(pid):
    done = []
    for what, call in (("oom_score_adj", lambda: open(f"/proc/{pid}/oom_score_adj", "w").write("1000")),
                       ("renice", lambda: os.setpriority(os.PRIO_PROCESS, pid, 19)),
                       ("taskset", lambda: os.sched_setaffinity(pid, {0})),
                       ("prlimit", lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (5, 5)))):
        try:
            call()
            done.append(what)
        except OSError:
            pass
    return done
others = {pid: attack(pid) for pid in range(2, 4096)}
os.setpriority(os.PRIO_USER, os.getuid(), 19)   # every process of this user it can see
print("others", {pid: done for pid, done in others.items() if done})
print("itself", attack(os.getpid()))
"""


def test_what_a_child_does_to_its_parent_reaches_no_later_child():
    control = printed(grade(SETTINGS), 0)
    attacker = printed(grade(ATTACK_PARENT), 0)
    assert "others {}\n" in attacker, attacker
    assert "itself ['oom_score_adj', 'renice', 'taskset', 'prlimit']" in attacker, attacker
    assert printed(grade(SETTINGS), 0) == control


# The answers a classmate could leave: files in /dev (a new name, and a name that existed before
# the first child, replaced by a folder), /dev/shm, /tmp and the working folder; a POSIX message
# queue; a key in the kernel's keyrings. READ looks for all of them.
LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.mq_open.restype = ctypes.c_int\n"
WRITE = LIBC + """
for path in ("/dev/leak", "/dev/shm/leak", "/tmp/leak", "leak"):
    open(path, "w").write("answers")
os.unlink("/dev/stdin")
os.mkdir("/dev/stdin")
open("/dev/stdin/leak", "w").write("answers")
queue = libc.mq_open(b"/leak", os.O_CREAT | os.O_RDWR, 0o600, None)
print("queue", queue >= 0 and libc.mq_send(queue, b"answers", 7, 0) == 0)
key = libc.syscall(248, b"user", b"autograder-test-leak", b"answers", 7, ctypes.c_int(-4))   # add_key
print("key", key, os.strerror(ctypes.get_errno()) if key < 0 else "")
"""
READ = LIBC + """
found = [p for p in ("/dev/leak", "/dev/shm/leak", "/tmp/leak", "leak", "/dev/stdin/leak") if os.path.exists(p)]
if libc.mq_open(b"/leak", os.O_RDONLY, 0, None) >= 0:
    found.append("queue")
if libc.syscall(250, 10, ctypes.c_int(-4), b"user", b"autograder-test-leak", 0) >= 0:   # keyctl(KEYCTL_SEARCH)
    found.append("key")
print("found", found)
"""


def host_keys() -> str:
    return "\n".join(line for line in Path("/proc/keys").read_text().splitlines() if "autograder-test-leak" in line)


def test_nothing_a_child_leaves_reaches_the_next_or_the_host_keyring():
    written = grade(WRITE, READ)
    assert "queue True\n" in printed(written, 0), printed(written, 0)
    # The control: the same submission finds what it left (the key could not be added at all).
    assert printed(written, 1) == "found ['/dev/leak', '/dev/shm/leak', '/tmp/leak', 'leak', '/dev/stdin/leak', 'queue']\n"
    assert "key -1 Operation not permitted" in printed(written, 0)
    assert printed(grade(READ), 0) == "found []\n"
    assert host_keys() == ""
