"""The student's feedback page: points per exercise, the visible tests' output, what the hidden
tests found (in words, never their source) and, for a wrong value, the likely mistake."""
from __future__ import annotations

import html
import re

from . import hints

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

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


def render(student_id: str, assignment: str, notebook: str, status: str, message_for_student: str,
           verdicts: list, titles: dict, score: float, max_score: float, markers=("BEGIN HIDDEN TESTS",
                                                                                   "END HIDDEN TESTS")) -> str:
    e = html.escape
    titles = {key: plain_math(value) for key, value in titles.items()}
    rows = "".join(
        f"<tr><td>{e(titles.get(v.grade_id, v.grade_id))}</td><td><code>{e(v.grade_id)}</code></td>"
        f"<td class='points'>{v.points:g} / {v.max_points:g}</td></tr>" for v in verdicts)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>Feedback: {e(assignment)}, {e(student_id)}</title><style>{STYLE}</style></head><body>",
             f"<h1>Feedback on {e(assignment)}</h1>",
             f"<p>Student <strong>{e(student_id)}</strong>, notebook <code>{e(notebook)}</code>: "
             f"<strong>{score:g} of {max_score:g} points</strong>.</p>"]
    if message_for_student:
        parts.append(f"<p class='note'>{e(message_for_student)}</p>")
    parts.append(f"<table><tr><th>Exercise</th><th>Test</th><th>Points</th></tr>{rows}</table>")
    show_outputs = status != "flagged"
    for v in verdicts:
        parts.append(f"<h2>{e(titles.get(v.grade_id, v.grade_id))}: {v.points:g} / {v.max_points:g}</h2>")
        if v.passed:
            parts.append("<p class='ok'>Every check passed"
                         + (f" (the visible ones and {v.checks_run} hidden ones)" if v.checks_run else "") + ".</p>")
        else:
            parts.append(f"<p class='fail'>Not passed: {e(v.failure or 'the test did not pass')}</p>")
            if v.mistake:
                parts.append(f"<p><strong>Likely mistake:</strong> {e(hints.MISTAKES[v.mistake])}.</p>")
        if show_outputs and v.visible_outputs:
            text = "".join(_text_of(o) for o in v.visible_outputs)
            text = _strip_markers(text, markers)
            if text.strip():
                parts.append(f"<p>Output of the visible checks:</p><pre>{e(text)}</pre>")
    parts.append("<p><small>Visible checks use the worked example; hidden checks call your functions on other "
                 "networks (other sizes, batches, float32 and float64). Made by "
                 "<code>python -m autograder grade</code>.</small></p></body></html>")
    return "".join(parts)
