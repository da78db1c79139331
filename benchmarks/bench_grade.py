"""Benchmark: `python -m autograder grade` against plain serial `nbgrader autograde`.

    .venv/bin/python benchmarks/bench_grade.py [--students 10] [--assignment all] [--workers 2 1]
                                               [--kernels warm cold] [--record FILE]

Makes a throw-away course with a simulated class (correct, partial, blank and broken submissions,
made from the solutions), of one assignment or of all six (``--assignment all``: every student
submits every assignment), then measures

* the floor: executing each solution notebook alone with nbclient (median of several runs per
  assignment, averaged over the class's notebooks);
* plain nbgrader: `nbgrader autograde` (serial) on the class, after `nbgrader generate_assignment`
  (not timed);
* the grader: `python -m autograder grade` on the class, from an empty output folder (everything
  included: the gradebook, the solutions' run, feedback pages), for each kernel kind
  (``AUTOGRADER_KERNELS=warm``: children forked from a preloaded parent, the default; ``cold``: a
  kernel process per notebook) and each number of workers;

and prints notebooks per minute for each, the ratio to nbgrader, the per-notebook cost against the
floor (core-seconds per notebook: wall time x workers / notebooks, over the floor's wall time; and
the CPU time the run used over the floor's CPU time, which a shared machine inflates less), and checks that the graders give every submission the
same score.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402

from tests.helpers import assignments, make_course, simulated_class, source_notebook  # noqa: E402


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


class CpuMeter:
    """CPU seconds used by a command and everything it starts (sandboxes and processes that
    are never waited for included): a cgroup v1 cpuacct group of its own where this machine has
    one; otherwise the children's rusage, which misses processes nobody waited for."""

    def __init__(self, name: str):
        self.path = CPUACCT / f"bench-grade-{os.getpid()}-{name}"
        try:
            self.path.mkdir()
        except OSError:
            self.path = None
        self.start = self._read()

    def _read(self) -> float:
        if self.path is not None:
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def join(self, pid: int | None = None) -> None:
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(pid or os.getpid()))

    def stop(self) -> float:
        used = self._read() - self.start
        if self.path is not None:
            (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
            try:
                self.path.rmdir()
            except OSError:
                pass
        return used


def timed(cmd: list[str], cwd: Path, **env) -> tuple[float, float]:
    """Wall seconds and CPU seconds of ``cmd`` and everything it started."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **env)
    meter = CpuMeter(f"{time.monotonic_ns()}")
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, preexec_fn=meter.join)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    timed.first_line = (done.stderr.splitlines() or [""])[0]   # the grader's names its tier
    for line in [timed.first_line] + [line for line in done.stdout.splitlines() if line.startswith("graded ")]:
        if line.startswith(("sandbox: ", "graded ")):
            print("  " + line, flush=True)
    return elapsed, meter.stop()


# The tiers this machine has (``--tiers``), each a way to run the grade command (tests/test_tiers.py
# makes the same ones): as it is run (root with cgroup v1 here), as root with /sys/fs/cgroup
# read-only in a mount namespace of its own (a container), and as a normal user with Debian's
# python3 (``--user-python``: a virtual environment of the course's requirements that user can run).
READ_ONLY_CGROUPS = ('findmnt -rn -o TARGET -R /sys/fs/cgroup | while read m; do mount -o remount,bind,ro "$m"; done; '
                     'exec "$@"')
USER = "autograder-tiers"


def tier_command(tier: str, cmd: list[str], cwd: Path, user_python: str, **env) -> list[str]:
    if tier == "as run":
        return cmd
    if tier == "root, no cgroups":
        return ["unshare", "-m", "sh", "-c", READ_ONLY_CGROUPS, "sh", *cmd]
    settings = [f"{k}={v}" for k, v in dict(env, PYTHONPATH=ROOT).items()]
    return ["su", USER, "-s", "/bin/sh", "-c",
            f"cd {shlex.quote(str(cwd))} && exec env {shlex.join(settings + [user_python, *cmd[1:]])}"]


def floor(assignment: str, runs: int) -> tuple[float, float]:
    """Seconds to execute the solution notebook alone with nbclient, wall and CPU (this process
    and the kernel), the medians of ``runs``."""
    source = nbformat.read(source_notebook(assignment), 4)
    times, cpus = [], []
    for k in range(runs):
        nb = nbformat.from_dict(source)
        meter = CpuMeter(f"floor-{assignment}-{k}")
        meter.join()
        start = time.perf_counter()
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
        times.append(time.perf_counter() - start)
        cpus.append(meter.stop())
    return statistics.median(times), statistics.median(cpus)


@contextlib.contextmanager
def dask_cluster(home: Path, workers: int):
    """``dask scheduler`` and ``workers`` single-threaded ``dask worker`` processes on loopback, as
    an instructor starts them; yields the scheduler's address."""
    from distributed import Client
    dask = str(Path(sys.executable).parent / "dask")
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0")
    scheduler_file = home / "scheduler.json"
    argvs = [[dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(scheduler_file)]]
    argvs += [[dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--nworkers", "1"]] * workers
    processes = []
    try:
        for argv in argvs:
            processes.append(subprocess.Popen(argv, cwd=home, env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, start_new_session=True))
            while not scheduler_file.exists():
                time.sleep(0.2)
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(workers, timeout=300)
            # What a running cluster has done before: the workers have imported the grader.
            client.run(lambda: __import__("autograder.grading.worker"))
        yield json.loads(scheduler_file.read_text())["address"]
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=40, help="students (per assignment)")
    parser.add_argument("--assignment", default="01_forward_pass_exercises", help="an assignment, or all")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--kernels", nargs="+", default=["warm", "cold"], choices=["warm", "cold"])
    parser.add_argument("--floor-runs", type=int, default=5)
    parser.add_argument("--cluster", action="store_true",
                        help="also grade (warm kernels) on a dask cluster of separate processes already running, "
                             "through --scheduler (max of --workers `dask worker` processes)")
    parser.add_argument("--skip-nbgrader", action="store_true", help="do not run serial nbgrader autograde")
    parser.add_argument("--tiers", nargs="+", default=["as run"], choices=["as run", "root, no cgroups", "normal user"],
                        help="run the grade command on each of these tiers (the last two need root)")
    parser.add_argument("--user-python", default="/opt/autograder-bench-venv/bin/python",
                        help=f"the normal user's ({USER}) Python, with the course's requirements")
    parser.add_argument("--record", metavar="FILE", help="also append the results, as markdown, to FILE")
    args = parser.parse_args()
    chosen = assignments() if args.assignment == "all" else [args.assignment]
    n = args.students * len(chosen)
    what = f"{args.students} simulated submissions of each of {len(chosen)} assignments" if len(chosen) > 1 else \
        f"{n} simulated submissions of `{chosen[0]}`"

    tmp = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    runs: list[tuple[str, int, float, float]] = []
    try:
        course = make_course(tmp / "course")
        kinds = {}
        for a in chosen:
            kinds.update({(s, a): k for s, k in simulated_class(course / "submitted", a, args.students).items()})
        print(f"{what} ({n} notebooks): " + ", ".join(
            f"{k} {list(kinds.values()).count(k)}" for k in dict.fromkeys(kinds.values())), flush=True)
        load_before = os.getloadavg()

        floors = {a: floor(a, args.floor_runs) for a in chosen}
        floor_s = statistics.mean(wall for wall, _ in floors.values())
        floor_cpu = statistics.mean(cpu for _, cpu in floors.values())
        print(f"floor: {floor_s:.2f} s per notebook, CPU {floor_cpu:.2f} s (nbclient, solution notebooks alone: "
              + ", ".join(f"{a[:2]} {w:.2f}" for a, (w, _) in floors.items()) + ")", flush=True)

        nbgrader_s = nbgrader_cpu = None
        if not args.skip_nbgrader:
            nbgrader_s = nbgrader_cpu = 0.0
            for a in chosen:
                timed([sys.executable, "-m", "nbgrader", "generate_assignment", a, "--force"], course)
                wall, cpu = timed([sys.executable, "-m", "nbgrader", "autograde", a, "--force"], course)
                nbgrader_s, nbgrader_cpu = nbgrader_s + wall, nbgrader_cpu + cpu
            print(f"nbgrader autograde (serial): {nbgrader_s:.1f} s", flush=True)

        only = ["--assignment", chosen[0]] if len(chosen) == 1 else []
        if "normal user" in args.tiers:   # its outputs are written as that user
            tmp.chmod(0o755)
            subprocess.run(["chown", "-R", USER, str(course)], check=True)
        first_lines = {}
        for tier in args.tiers:
            for kernels in args.kernels:
                for workers in args.workers:
                    out = f"graded-{kernels}-{workers}" + ("" if tier == "as run" else f"-{tier.replace(' ', '_')}")
                    cmd = [sys.executable, "-m", "autograder", "grade", "submitted", "--out", out, "--workers",
                           str(workers), *only]
                    wall, cpu = timed(tier_command(tier, cmd, course, args.user_python, AUTOGRADER_KERNELS=kernels),
                                      course, AUTOGRADER_KERNELS=kernels)
                    runs.append((kernels, workers, wall, cpu, tier, out))
                    first_lines.setdefault(tier, timed.first_line)   # the first kind of kernels'
                    print(f"autograder grade ({tier}), {kernels} kernels, --workers {workers}: {wall:.1f} s "
                          f"(CPU {cpu:.1f} s)", flush=True)
        if args.cluster:  # its workers' CPU time is outside this command's cgroup: the CPU column is the client's
            workers = max(args.workers)
            with dask_cluster(tmp, workers) as address:
                wall, cpu = timed([sys.executable, "-m", "autograder", "grade", "submitted", "--out",
                                   f"graded-running cluster-{workers}", "--scheduler", address, *only], course)
            runs.append(("running cluster", workers, wall, cpu, "as run", f"graded-running cluster-{workers}"))
            print(f"autograder grade --scheduler (a running cluster of {workers} worker processes): {wall:.1f} s",
                  flush=True)
        load_after = os.getloadavg()

        agree = {}
        plain = {}
        if nbgrader_s is not None:
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
                plain = {(s, a): gb.find_submission(a, s).score for s, a in kinds}
        for kernels, workers, _, _, tier, out in runs:
            with open(course / out / "grades.csv", newline="") as f:
                ours = {(r["student_id"], r["assignment_id"]): float(r["score"]) for r in csv.DictReader(f)}
            reference = plain or ours
            agree[(kernels, workers, tier)] = sum(reference[k] == ours.get(k) for k in kinds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    per_min = lambda seconds: 60 * n / seconds  # noqa: E731
    rows = [("floor: solution notebooks alone, nbclient", f"{60 / floor_s:.1f}", f"{floor_s:.2f} s",
             f"{floor_cpu:.2f} s", "1.00 (CPU: 1.00)", "")]
    if nbgrader_s is not None:
        rows.append(("plain `nbgrader autograde`, serial", f"{per_min(nbgrader_s):.1f}", f"{nbgrader_s / n:.2f} s",
                     f"{nbgrader_cpu / n:.2f} s", f"{nbgrader_s / n / floor_s:.2f} (CPU: {nbgrader_cpu / n / floor_cpu:.2f})",
                     "1.00"))
    for kernels, workers, wall, cpu, tier, _ in runs:
        where = "" if args.tiers == ["as run"] else f", {tier}"
        rows.append((f"`grade --workers {workers}`, {kernels} kernels{where}", f"{per_min(wall):.1f}",
                     f"{wall / n:.2f} s wall, {wall * workers / n:.2f} s of a core", f"{cpu / n:.2f} s",
                     f"{wall * workers / n / floor_s:.2f} (CPU: {cpu / n / floor_cpu:.2f})",
                     f"{nbgrader_s / wall:.2f}x" if nbgrader_s is not None else ""))
    lines = [f"Class of {what}, {n} notebooks (correct, partial, blank, broken in turn); {os.cpu_count()} CPUs; "
             f"load average (1, 5, 15 min) {', '.join(f'{x:.2f}' for x in load_before)} before, "
             f"{', '.join(f'{x:.2f}' for x in load_after)} after.", "",
             "| what | notebooks per minute | per notebook | CPU per notebook | cost / floor | speed-up over nbgrader |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    walls = {(k, w, t): wall for k, w, wall, _, t, _ in runs}
    lines.append("")
    for tier in args.tiers:
        on = "" if args.tiers == ["as run"] else f" ({tier})"
        if tier in first_lines:
            lines.append(f"- the grader's first line{on}: `{first_lines[tier]}`")
        for kernels in args.kernels:
            if (kernels, 1, tier) in walls and (kernels, 2, tier) in walls:
                lines.append(f"- {kernels} kernels{on}: 2 workers / 1 worker: "
                             f"**{walls[(kernels, 1, tier)] / walls[(kernels, 2, tier)]:.2f}x**")
        if ("warm", 2, tier) in walls and ("cold", 2, tier) in walls:
            lines.append(f"- warm / cold kernels{on}, 2 workers: "
                         f"**{walls[('cold', 2, tier)] / walls[('warm', 2, tier)]:.2f}x** faster")
    for (kernels, workers, tier), count in agree.items():
        on = "" if args.tiers == ["as run"] else f" ({tier})"
        lines.append(f"- {kernels} kernels, {workers} workers{on}: the same score as "
                     f"{'serial nbgrader' if plain else 'itself'} for {count} of {n} submissions")
    text = "\n".join(lines)
    print("\n" + text)
    if args.record:
        with open(args.record, "a") as f:
            f.write(f"\n`{' '.join(['.venv/bin/python', 'benchmarks/bench_grade.py', *sys.argv[1:]])}` "
                    f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n{text}\n")


if __name__ == "__main__":
    main()
