"""Benchmark: `python -m autograder grade` against plain serial `nbgrader autograde`.

    .venv/bin/python benchmarks/bench_grade.py [--students 40] [--workers 2] [--record benchmarks/results.md]

Makes a throw-away course with a simulated class (correct, partial, blank and broken submissions,
made from the solutions), then measures

* the floor: executing the solution notebook alone with nbclient (median of several runs);
* plain nbgrader: `nbgrader autograde` (serial) on the class, after `nbgrader generate_assignment`
  (not timed);
* the grader: `python -m autograder grade` on the class, from an empty output folder (everything
  included: the gradebook, the solutions' run, feedback pages), with --workers N and with 1 (each
  run starts its own dask LocalCluster, which is included);
* the grader on a dask cluster of separate processes already running (`dask scheduler` and N
  `dask worker --nthreads 1` on loopback, started before and not timed), through `--scheduler`;

and prints notebooks per minute for each, the ratio, and the per-notebook cost against the
floor. It also checks that both graders give every student the same score.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import shutil
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

from tests.helpers import make_course, simulated_class, source_notebook  # noqa: E402


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed, done


def floor(assignment: str, runs: int) -> float:
    """Seconds to execute the solution notebook alone with nbclient (the median of ``runs``)."""
    source = nbformat.read(source_notebook(assignment), 4)
    times = []
    for _ in range(runs):
        nb = nbformat.from_dict(source)
        start = time.perf_counter()
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--assignment", default="01_forward_pass_exercises")
    parser.add_argument("--floor-runs", type=int, default=5)
    parser.add_argument("--record", metavar="FILE", help="also write the results, as markdown, to FILE")
    parser.add_argument("--no-cluster", action="store_true",
                        help="skip the run on a dask cluster of separate processes (--scheduler)")
    args = parser.parse_args()
    n, a = args.students, args.assignment

    tmp = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    try:
        course = make_course(tmp / "course")
        kinds = simulated_class(course / "submitted", a, n)
        print(f"{n} simulated submissions of {a}: " + ", ".join(
            f"{k} {list(kinds.values()).count(k)}" for k in dict.fromkeys(kinds.values())), flush=True)
        load_before = os.getloadavg()[0]

        floor_s = floor(a, args.floor_runs)
        print(f"floor: {floor_s:.2f} s per notebook (nbclient, solution notebook alone)", flush=True)

        timed([sys.executable, "-m", "nbgrader", "generate_assignment", a, "--force"], course)
        nbgrader_s, _ = timed([sys.executable, "-m", "nbgrader", "autograde", a, "--force"], course)
        print(f"nbgrader autograde (serial): {nbgrader_s:.1f} s", flush=True)

        ours_s, done = timed([sys.executable, "-m", "autograder", "grade", "submitted", "--out", "graded-n",
                              "--workers", str(args.workers), "--assignment", a], course)
        print(f"autograder grade --workers {args.workers}: {ours_s:.1f} s", flush=True)
        one_s, _ = timed([sys.executable, "-m", "autograder", "grade", "submitted", "--out", "graded-1",
                          "--workers", "1", "--assignment", a], course)
        print(f"autograder grade --workers 1: {one_s:.1f} s", flush=True)
        cluster_s = None
        if not args.no_cluster:
            with dask_cluster(tmp, args.workers) as address:
                cluster_s, _ = timed([sys.executable, "-m", "autograder", "grade", "submitted", "--out", "graded-c",
                                      "--scheduler", address, "--assignment", a], course)
            print(f"autograder grade --scheduler (a running cluster of {args.workers} worker processes): "
                  f"{cluster_s:.1f} s", flush=True)
        load_after = os.getloadavg()[0]

        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            plain = {s: gb.find_submission(a, s).score for s in kinds}
        with open(course / "graded-n" / "grades.csv", newline="") as f:
            ours = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
        agree = sum(plain[s] == ours[s] for s in kinds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    per_min = lambda seconds: 60 * n / seconds  # noqa: E731
    rows = [
        ("floor: solution notebook alone, nbclient", f"{60 / floor_s:.1f}", f"{floor_s:.2f} s", "1.00"),
        ("plain `nbgrader autograde`, serial", f"{per_min(nbgrader_s):.1f}", f"{nbgrader_s / n:.2f} s",
         f"{nbgrader_s / n / floor_s:.2f}"),
        (f"`python -m autograder grade --workers {args.workers}`", f"{per_min(ours_s):.1f}",
         f"{ours_s / n:.2f} s wall, {ours_s * args.workers / n:.2f} s of a core",
         f"{ours_s * args.workers / n / floor_s:.2f}"),
        ("`python -m autograder grade --workers 1`", f"{per_min(one_s):.1f}", f"{one_s / n:.2f} s",
         f"{one_s / n / floor_s:.2f}"),
    ]
    if cluster_s is not None:
        rows.append((f"`python -m autograder grade --scheduler ADDRESS` ({args.workers} running `dask worker` "
                     "processes)", f"{per_min(cluster_s):.1f}",
                     f"{cluster_s / n:.2f} s wall, {cluster_s * args.workers / n:.2f} s of a core",
                     f"{cluster_s * args.workers / n / floor_s:.2f}"))
    lines = [f"Class of {n} simulated submissions of `{a}` (correct, partial, blank, broken in turn); "
             f"{os.cpu_count()} CPUs; load average {load_before:.2f} before, {load_after:.2f} after.", "",
             "| what | notebooks per minute | per notebook | cost / floor |", "|---|---|---|---|"]
    lines += [f"| {a_} | {b} | {c} | {d} |" for a_, b, c, d in rows]
    lines += ["", f"- throughput, grade --workers {args.workers} / serial nbgrader: "
                  f"**{nbgrader_s / ours_s:.2f}x** (goal: at least 1.8x with 2 workers)",
              f"- per-notebook cost with {args.workers} workers (wall time x workers / notebooks) / floor: "
              f"**{ours_s * args.workers / n / floor_s:.2f}** (goal: at most 1.3)",
              f"- {args.workers} workers / 1 worker: **{one_s / ours_s:.2f}x** faster",
              f"- one core grades {per_min(one_s):.1f} notebooks per minute (--workers 1, everything included)",
              f"- the two graders give the same score to {agree} of {n} students"]
    if cluster_s is not None:
        lines.insert(-1, f"- a running cluster (`--scheduler`) / the LocalCluster the command starts: "
                         f"**{ours_s / cluster_s:.2f}x** faster")
    text = "\n".join(lines)
    print("\n" + text)
    if args.record:
        Path(args.record).write_text(text + "\n")


if __name__ == "__main__":
    main()
