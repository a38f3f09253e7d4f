"""Writes docs/cli.md: the --help of every style-transformer command (a test fails when it is stale).

    python scripts/gen_cli_docs.py [--check]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def render() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix the width
    from style_transformer.cli import build_parser

    parser = build_parser()
    parts = ["# Command-line reference\n",
             "Generated from the commands' `--help` by `python scripts/gen_cli_docs.py`; "
             "[commands.md](commands.md) explains them by task.\n",
             "```\n" + parser.format_help() + "```\n"]
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
            subs = [(f"{name} {n}", p) for a in nested for n, p in a.choices.items()] if nested else [(name, sub)]
            for title, p in subs:
                parts.append(f"## {title}\n\n```\n{p.format_help()}```\n")
    return "\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is not up to date")
    text = render()
    if ap.parse_args().check:
        return 0 if DOC.is_file() and DOC.read_text() == text else 1
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
