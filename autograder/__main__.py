"""Command line: ``python -m autograder release [--check]``."""
from __future__ import annotations

import argparse
import sys

from . import release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", help="regenerate the student notebooks in chapters/ from solutions/")
    rel.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 if a committed student notebook differs from a fresh release")
    args = parser.parse_args(argv)

    if args.command == "release":
        if args.check:
            stale = release.out_of_date()
            for name in stale:
                print(f"chapters/{name} differs from a fresh release: run `python -m autograder release`")
            return 1 if stale else 0
        for path in release.release():
            print(f"wrote {path.relative_to(release.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
