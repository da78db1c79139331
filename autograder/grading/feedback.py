"""The student's feedback page: points per exercise, the visible tests' output, what the hidden
tests found (in words, never their source) and, for a wrong value, the likely mistake."""
from __future__ import annotations

import html
import re

from . import hints

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MANUAL_NOTE = "Points changed by your instructor"

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 56rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }
td.points { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .85rem; white-space: pre-wrap; }
.ok { color: #186a3b; } .fail { color: #a61b1b; } .note { background: #fff6d5; padding: .5rem .8rem; }
"""


SYMBOLS = {"partial": "∂", "sigma": "σ", "delta": "δ", "eta": "η", "epsilon": "ε", "varepsilon": "ε",
           "sum": "Σ", "cdot": "·", "times": "×", "approx": "≈", "le": "≤", "ge": "≥", "top": "ᵀ", "prime": "′"}


def plain_math(text: str) -> str:
    """An exercise title with its TeX written plainly (the page has no MathJax): ``$\\partial E /
    \\partial w_5$`` becomes ``∂E / ∂w5``."""
    def math(match):
        tex = match.group(1)
        tex = re.sub(r"\\t?frac\{([^{}]*)\}\{([^{}]*)\}", r"\1/\2", tex)
        tex = re.sub(r"\\t?frac(\d)(\d)", r"\1/\2", tex)
        tex = re.sub(r"\\([A-Za-z]+)\s*", lambda m: SYMBOLS.get(m.group(1), m.group(1)), tex)
        tex = re.sub(r"_\{([^{}]*)\}", r"\1", tex)
        tex = re.sub(r"\^\{([^{}]*)\}", r"^\1", tex)
        tex = re.sub(r"\^([0-9T])", lambda m: "⁰¹²³⁴⁵⁶⁷⁸⁹"[int(m.group(1))] if m.group(1).isdigit() else "ᵀ", tex)
        return re.sub(r"[_{}]", "", tex)
    return re.sub(r"\$([^$]+)\$", math, text)


def _text_of(output) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("text", "")
    if kind == "error":
        return ANSI.sub("", "\n".join(output.get("traceback", [])) or f"{output.get('ename')}: {output.get('evalue')}")
    if kind in ("execute_result", "display_data"):
        data = output.get("data", {})
        if "text/plain" in data:
            text = data["text/plain"]
            return text if isinstance(text, str) else "".join(text)
        return f"[{', '.join(sorted(data))}]"
    return ""


def _strip_markers(text: str, markers) -> str:
    return "\n".join(line for line in text.split("\n") if not any(m in line for m in markers))


def page(student_id: str, assignment: str, notebook: str, status: str, message_for_student: str,
         verdicts: list, titles: dict, score: float, max_score: float,
         markers=("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")) -> dict:
    """What the student's page shows, as plain data. The worker keeps it in the row's result, so
    that the main process can render the page again when the instructor changes a score by hand."""
    cells = []
    for v in verdicts:
        output = ""
        if status != "flagged" and v.visible_outputs:
            output = _strip_markers("".join(_text_of(o) for o in v.visible_outputs), markers)
        cells.append({"grade_id": v.grade_id, "title": plain_math(titles.get(v.grade_id, v.grade_id)),
                      "points": v.points, "max_points": v.max_points, "passed": v.passed,
                      "checks_run": v.checks_run, "failure": v.failure, "mistake": v.mistake,
                      "output": output if output.strip() else ""})
    return {"student_id": student_id, "assignment": assignment, "notebook": notebook,
            "message": message_for_student, "cells": cells, "score": score, "max_score": max_score}


def render_page(page: dict, result: dict | None = None) -> str:
    """The page as HTML. ``result``: the graded row, when it holds more than the page's own data:
    ``manual`` (grade_id -> points an instructor gave by hand; they replace the tests' points, as
    in nbgrader), ``score`` (the points, manual ones included), ``late`` and ``late_penalty``
    (grades.csv's), ``comments`` (cell -> text typed in formgrader), ``student_name`` (the roster's)."""
    e = html.escape
    result = result or {}
    manual = result.get("manual") or {}
    score = result.get("score", page["score"])
    name = result.get("student_name") or ""
    late, taken = result.get("late") or "", result.get("late_penalty")

    def points(cell) -> str:
        shown = manual.get(cell["grade_id"], cell["points"])
        return f"{shown:g} / {cell['max_points']:g}"

    rows = "".join(
        f"<tr><td>{e(c['title'])}</td><td><code>{e(c['grade_id'])}</code></td>"
        f"<td class='points'>{points(c)}</td></tr>" for c in page["cells"])
    who = f"{name} (id {page['student_id']})" if name else f"id {page['student_id']}"
    final = score - (taken or 0)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>Feedback: {e(page['assignment'])}, {e(name or page['student_id'])}</title><style>{STYLE}</style>"
             "</head><body>",
             f"<h1>Feedback on {e(page['assignment'])}</h1>",
             f"<p>Student <strong>{e(who)}</strong>, notebook <code>{e(page['notebook'])}</code>: "
             f"<strong>{final:g} of {page['max_score']:g} points</strong>.</p>"]
    if late:
        handed = f"Handed in {late}" if late.startswith("late") else f"Handed in late by {late}"
        if taken:
            parts.append(f"<p class='note'>{e(handed)}. Points for the exercises: {score:g}; "
                         f"late penalty: {taken:g} points; final score: {final:g} of {page['max_score']:g}.</p>")
        else:
            parts.append(f"<p class='note'>{e(handed)}. No points were taken off here"
                         + ("; your LMS's late policy, if the course has one, applies to this score there"
                            if "the time is not known" in late else "") + ".</p>")
    comments = result.get("comments") or {}
    if comments:
        parts.append("<h2>Comments from your instructor</h2>"
                     + "".join(f"<p><code>{e(cell)}</code>: {e(text)}</p>" for cell, text in comments.items()))
    if page["message"]:
        parts.append(f"<p class='note'>{e(page['message'])}</p>")
    parts.append(f"<table><tr><th>Exercise</th><th>Test</th><th>Points</th></tr>{rows}</table>")
    for c in page["cells"]:
        parts.append(f"<h2>{e(c['title'])}: {points(c)}</h2>")
        if c["grade_id"] in manual:
            parts.append(f"<p class='note'>{MANUAL_NOTE}: {manual[c['grade_id']]:g} points (the automatic "
                         f"tests gave {c['points']:g}).</p>")
        if c["passed"]:
            parts.append("<p class='ok'>Every check passed"
                         + (f" (the visible ones and {c['checks_run']} hidden ones)" if c["checks_run"] else "")
                         + ".</p>")
        else:
            parts.append(f"<p class='fail'>Not passed: {e(c['failure'] or 'the test did not pass')}</p>")
            if c["mistake"]:
                parts.append(f"<p><strong>Likely mistake:</strong> {e(hints.MISTAKES[c['mistake']])}.</p>")
        if c["output"]:
            parts.append(f"<p>Output of the visible checks:</p><pre>{e(c['output'])}</pre>")
    parts.append("<p><small>Visible checks use the worked example; hidden checks call your functions on other "
                 "networks (other sizes, batches, float32 and float64). Made by "
                 "<code>python -m autograder grade</code>.</small></p></body></html>")
    return "".join(parts)


def render(*args, **kwargs) -> str:
    """The page of :func:`page`'s arguments, as HTML, with the tests' points."""
    return render_page(page(*args, **kwargs))
