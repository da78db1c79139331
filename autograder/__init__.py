"""The course package: reference numbers, the release step and the checks hidden tests use.

One module per stage: ``reference`` (the worked example, computed), ``checks`` (what hidden
tests call), ``release`` (solutions -> student notebooks), ``figures`` (shared lesson figures).
"""

import sys

# jsonschema (through nbformat) imports rfc3987_syntax where it is installed, to check the "iri"
# string format, which no notebook schema uses; it builds a grammar on import: 1.3 s of every
# grading run's start (measured with python -X importtime). Marked absent, jsonschema skips it.
sys.modules.setdefault("rfc3987_syntax", None)
