"""pycanon's k-anonymity over tables sent as JSON lines on standard input.

Run by tests/support/pycanon_oracle.py with the Python of .venv-pycanon (make pycanon-env),
never imported by the suite, so pycanon's pinned numpy, pandas and scipy stay out of the
environment securexport is tested in.  Each request is one line, ``{"columns": [...],
"rows": [[...], ...]}`` (JSON null is None, as pandas sees it); each answer one line: k, or
``{"error": "..."}``.
"""

from __future__ import annotations

import json
import sys

import pandas as pd  # type: ignore[import-untyped]
from pycanon import anonymity  # type: ignore[import-untyped]


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        try:
            frame = pd.DataFrame(request["rows"], columns=request["columns"])
            answer: object = int(anonymity.k_anonymity(frame, request["columns"]))
        except Exception as exc:  # reported to the test, which fails with it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
