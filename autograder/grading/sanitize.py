"""What a student wrote never runs in a browser: the outputs the grader keeps (in the autograded
notebook formgrader shows, and on the feedback page) and the student's markdown and raw cells are
reduced to what cannot run code.

nbconvert's own :class:`~nbconvert.preprocessors.SanitizeHTML` does the work, with bleach: HTML and
markdown are cleaned (no script, no event handler, no ``javascript:`` link), images are kept as
PNG, JPEG or GIF (an SVG can hold a script), plain text as it is, and every other type of output
(JavaScript, widgets, LaTeX, SVG, JSON, anything a frontend renders with code) is dropped. The
generated ``graded/nbgrader_config.py`` switches the same preprocessor on in formgrader
(:mod:`.gradebook`).
"""
from __future__ import annotations

import logging

import nbformat
from bleach import ALLOWED_TAGS
from nbconvert.exporters import Exporter
from nbconvert.preprocessors.sanitize import SanitizeHTML

# The output types kept as they are: text and images that no browser runs.
SAFE_OUTPUT_KEYS = ("metadata", "text/plain", "image/png", "image/jpeg", "image/gif")
SANITIZED_OUTPUT_TYPES = ("text/html", "text/markdown")
# The HTML kept: bleach's default tags (links, emphasis, lists) and those of text and tables
# (a DataFrame's); no image (an output's images are its PNGs), no style, no form, no frame.
TAGS = sorted(set(ALLOWED_TAGS) | {"p", "div", "span", "pre", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "sub",
                                   "sup", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "dl", "dt",
                                   "dd"})
# The same settings for formgrader (nbgrader_config.py) and for the grader.
CONFIG = {"enabled": True, "strip": True, "tags": TAGS, "safe_output_keys": set(SAFE_OUTPUT_KEYS),
          "sanitized_output_types": set(SANITIZED_OUTPUT_TYPES)}

_sanitizer = SanitizeHTML(**CONFIG)
_sanitizer.log = logging.getLogger("autograder.sanitize")
_sanitizer.log.propagate = False   # it logs each output it cleans


def output(out: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """``out`` (an output the kernel sent, as nbformat makes it) reduced to what cannot run code,
    its fields checked to be of their types; None when nothing of it is left."""
    kind = out.get("output_type")
    if kind == "stream":
        text = out.get("text")
        return out if isinstance(text, str) and out.get("name") in ("stdout", "stderr") else None
    if kind == "error":
        if not (isinstance(out.get("ename"), str) and isinstance(out.get("evalue"), str)
                and isinstance(out.get("traceback"), list) and all(isinstance(t, str) for t in out.traceback)):
            return None
        return out
    if kind not in ("display_data", "execute_result") or not isinstance(out.get("data"), dict):
        return None
    data = {key: value for key, value in out.data.items() if isinstance(value, str)}
    dropped = sorted(set(out.data) - set(SAFE_OUTPUT_KEYS) - set(SANITIZED_OUTPUT_TYPES))
    out.data = nbformat.NotebookNode(data)
    out.metadata = nbformat.NotebookNode()   # (frontends read options there: isolated, ...)
    _sanitizer.sanitize_code_outputs([out])
    if not out.data:
        if not dropped:
            return None
        out.data["text/plain"] = f"[output of type {', '.join(dropped)}: not kept by the grader]"
    if kind == "execute_result" and not isinstance(out.get("execution_count"), (int, type(None))):
        out.execution_count = None
    return out


def notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with the student's markdown and raw cells cleaned (the locked ones are the course's,
    restored from its source) and every output reduced, in place."""
    for cell in nb.cells:
        if cell.cell_type in ("markdown", "raw") and not cell.metadata.get("nbgrader", {}).get("locked"):
            cell.source = _sanitizer.sanitize_html_tags(cell.source)
            cell.metadata.pop("format", None)
            cell.metadata.pop("raw_mimetype", None)
            if isinstance(cell.get("attachments"), dict):   # shown as <img>: images only
                cell.attachments = {name: {k: v for k, v in files.items() if k in SAFE_OUTPUT_KEYS[2:]}
                                    for name, files in cell.attachments.items() if isinstance(files, dict)}
        elif cell.cell_type == "code":
            cell.outputs = [kept for out in cell.outputs if (kept := output(out)) is not None]
    return nb


def formgrader_config() -> str:
    """The lines of ``graded/nbgrader_config.py`` that make formgrader clean what it shows with
    the settings above, and switch nbgrader's generate_feedback off (:class:`FeedbackByTheGrader`)."""
    lines = ["c.HTMLExporter.sanitize_html = True",
             'c.HTMLExporter.preprocessors = ["nbconvert.preprocessors.sanitize.SanitizeHTML"]']
    for key, value in CONFIG.items():
        text = "{" + ", ".join(map(repr, sorted(value))) + "}" if isinstance(value, set) else repr(value)
        lines.append(f"c.SanitizeHTML.{key} = {text}")
    lines.append(f'c.GenerateFeedback.exporter_class = "{__name__}.FeedbackByTheGrader"')
    return "\n".join(lines)


class FeedbackByTheGrader(Exporter):
    """What nbgrader's generate_feedback (formgrader's "Generate Feedback") exports with, as
    ``graded/nbgrader_config.py`` sets it: nothing. nbgrader's feedback pages show the hidden
    tests; the grader's own pages are already in ``feedback/``, with the points given by hand
    once the grader runs again. Failing as it is made, before nbgrader removes any folder, leaves
    them as they are, and formgrader shows this message."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("generate_feedback is switched off in this folder: its pages would show the hidden "
                           "tests. `python -m autograder grade` writes the feedback pages (feedback/), with the "
                           "points given by hand: run it again after grading by hand")
