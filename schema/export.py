"""Print the schema's SDL (or with --trusted the trusted-documents manifest); with --check FILE fail when FILE
has drifted from the code."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from schema import schema
from schema.core.trusted import manifest


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m schema.export")
    parser.add_argument("--check", metavar="FILE")
    parser.add_argument("--trusted", action="store_true", help="the mini-program's trusted documents manifest")
    args = parser.parse_args()
    sdl = manifest() if args.trusted else schema.as_str() + "\n"
    if not args.check:
        sys.stdout.write(sdl)
        return 0
    current = Path(args.check).read_text() if Path(args.check).exists() else ""
    if current == sdl:
        return 0
    sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), sdl.splitlines(True), args.check, "code"))
    print(f"\n{args.check} is out of date: run `make schema`.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
