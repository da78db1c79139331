"""CSV files a spreadsheet opens (grades.csv, the LMS imports): no cell the grader writes from
text (student ids, names, messages, anything copied from a roster) is run as a formula.

A text cell that starts as a formula or a DDE command would (``=``, ``+``, ``-``, ``@``, a tab or
a carriage return: OWASP's "CSV injection") gets a leading apostrophe, which spreadsheets read as
"this is text" and do not show. Numbers are left as they are: the grader writes its scores and
penalties as plain numbers (``-2`` is a number, not a formula), and only a cell that is a whole
number in Python's notation counts as one; so is a lone ``-`` (the LMSs' "no value").
"""
from __future__ import annotations

import re

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def cell(value) -> str:
    """``value`` as a CSV cell no spreadsheet runs."""
    text = "" if value is None else str(value)
    if text.startswith(TRIGGERS) and not NUMBER.fullmatch(text) and text not in ("-", "+"):  # a lone sign is text
        return "'" + text
    return text


def row(values) -> list[str]:
    return [cell(v) for v in values]


def text(value: str) -> str:
    """A cell of a CSV written with :func:`cell`, as it was before (for reading grades.csv back)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(TRIGGERS) else value
