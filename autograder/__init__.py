"""The course package: reference numbers, the release step and the checks hidden tests use.

One module per stage: ``reference`` (the worked example, computed), ``checks`` (what hidden
tests call), ``release`` (solutions -> student notebooks), ``figures`` (shared lesson figures).
"""
