"""A wrong answer for the hidden tests that used to check a length and then zip() over the result:
an object whose len() is right and whose iteration is empty (issue 16). Indexed by the expected
values, the tests look at every item and fail."""


def liar(function: str, length: str, args: str) -> str:
    """Source of ``def function(args)`` returning such an object; ``length`` is an expression."""
    return (f"class _Liar:\n    def __init__(self, n):\n        self.n = n\n    def __len__(self):\n        return self.n\n"
            f"    def __iter__(self):\n        return iter(())\n    def __getitem__(self, i):\n        raise IndexError(i)\n\n"
            f"def {function}({args}):\n    return _Liar({length})\n")
