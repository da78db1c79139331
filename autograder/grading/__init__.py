"""The stages of ``python -m autograder grade`` (the command itself is :mod:`autograder.grade`).

===============  ============================================================================
course           the course's nbgrader configuration; each assignment's master notebook
prepare          a submission folder -> the notebook to run (found, read, test cells restored)
sandbox          bubblewrap: what the student's kernel can see
kernel           runs *inside* the student's kernel: limits, the audit hook, the hidden tests
runner           the worker's side of one kernel: start, run code with a time limit, read records
execute          a notebook's cells in order, surviving loops and kernels that die
compare          the student's recorded values against the solutions', outside the kernel
hints            the likely mistake behind a wrong value, from autograder.reference
feedback         the student's HTML page
worker           one task: grade a submission, or run the solutions for their expected values
gradebook        nbgrader's gradebook, written by the main process only
===============  ============================================================================
"""
