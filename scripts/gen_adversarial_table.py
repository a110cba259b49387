"""Write the case table of docs/adversarial.md from the adversarial suite's registry.

The cases are data in tests/adversarial/test_*.py; this renders them (name, what is attempted,
expected exit code, how it is driven, which check must catch it) between the BEGIN/END markers
of docs/adversarial.md, leaving the prose around them alone.

    python scripts/gen_adversarial_table.py          # rewrite the table
    python scripts/gen_adversarial_table.py --check  # exit 1 if the table is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.adversarial.registry import BEGIN, END, load_all, render_table  # noqa: E402

DOC = REPO / "docs" / "adversarial.md"


def updated(text: str) -> str:
    table = render_table(load_all())
    if BEGIN not in text or END not in text:
        return text.rstrip("\n") + "\n\n" + table
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + table.rstrip("\n") + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the table is current")
    args = parser.parse_args(argv)
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Adversarial suite\n"
    new = updated(current)
    if args.check:
        if new != current:
            print(f"{DOC} is stale: run python scripts/gen_adversarial_table.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
