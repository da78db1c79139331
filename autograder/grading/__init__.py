"""The stages of ``python -m autograder grade`` (the command itself is :mod:`autograder.grade`).

===============  ============================================================================
course           the course's nbgrader configuration; each assignment's master notebook
prepare          a submission folder -> the notebook to run (found, read, test cells restored)
sandbox          bubblewrap: what the student's kernel can see
kernel           runs *inside* the sandbox: the student's kernel, answering the grader's calls (no course knowledge)
wire             the values that cross between the grader and the kernel, as plain data (used on both sides)
confine          runs *inside* the sandbox: a warm child's own PID, mount and IPC namespaces, fresh folders, no capabilities
syscall_filter   runs *inside* the sandbox: the seccomp filter (system calls no notebook needs)
remote           hidden tests, run by the grader outside the kernel, calling the student's code through it
runner           the worker's side of one kernel: start, run code with a time limit, read the answers
execute          a notebook's cells in order, surviving loops and kernels that die, within a time budget
compare          from the run to points per test cell
hints            the likely mistake behind a wrong value, from autograder.reference
feedback         the student's HTML page
worker           one task: grade a submission, or the solutions (which must earn every point)
gradebook        nbgrader's gradebook, written by the main process only
===============  ============================================================================
"""
