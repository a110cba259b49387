"""Adversarial cases as data: a name, a category, a one-line title, the expected exit code.

Each ``test_<category>_*.py`` module registers its cases with :func:`case` and runs them all
through one parametrised test (see :mod:`tests.adversarial.harness`).  The same registry feeds
``scripts/gen_adversarial_table.py``, which writes the table in docs/adversarial.md, and
``test_doc_current.py`` keeps that table in step with the code.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

CATEGORIES: dict[str, str] = {
    "A": "Archive and crypto integrity",
    "B": "Manifests and signatures",
    "C": "Ledger receipts",
    "D": "ZIP parsing on decrypt",
    "E": "Approvals",
    "F": "Data and SQL",
    "G": "Faults (signals, disk full, races)",
    "H": "Keys",
    "I": "Leaks and over-sharing",
}

EXIT_NAMES: dict[int, str] = {
    0: "ok",
    1: "unexpected",
    2: "usage",
    3: "policy",
    4: "key",
    5: "verification",
    6: "source",
    7: "file",
    130: "interrupted",
    -9: "killed (SIGKILL)",
}

VIAS = ("api", "cli", "subprocess")

RecordProperty = Callable[[str, object], None]  # pytest's record_property fixture


@dataclass(frozen=True)
class Case:
    """One hostile input and the outcome securexport must give it."""

    id: str  # "<category>-<slug>", unique
    category: str
    title: str
    exit_code: int
    via: str  # how it is driven: the Python API, click's CliRunner, or a real subprocess
    message: str | None  # a regex the error message must match: *which* check caught it
    run: Callable[[Any], int]
    slow: bool = False
    known_issue: str | None = None  # expected to fail today (strict xfail): what is wrong

    @property
    def exit_text(self) -> str:
        return f"{self.exit_code} ({EXIT_NAMES.get(self.exit_code, '?')})"


CASES: dict[str, Case] = {}


def case(
    category: str,
    slug: str,
    exit_code: int,
    title: str,
    *,
    via: str = "api",
    message: str | None = None,
    slow: bool = False,
    known_issue: str | None = None,
) -> Callable[[Callable[[Any], int]], Callable[[Any], int]]:
    """Register the decorated function as the case ``<category>-<slug>``.

    The function gets a :class:`tests.adversarial.harness.Ctx` and returns the exit code it
    observed (0 when the operation succeeded).
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    if via not in VIAS:
        raise ValueError(f"unknown via {via!r}")

    def register(fn: Callable[[Any], int]) -> Callable[[Any], int]:
        full = f"{category}-{slug}"
        if full in CASES:
            raise ValueError(f"duplicate adversarial case {full}")
        CASES[full] = Case(full, category, title, exit_code, via, message, fn, slow, known_issue)
        return fn

    return register


def params(category: str) -> list[Any]:
    """pytest parameters for one category's cases."""
    out = []
    for c in CASES.values():
        if c.category != category:
            continue
        marks: list[Any] = [pytest.mark.slow] if c.slow else []
        if c.known_issue:
            marks.append(pytest.mark.xfail(reason=c.known_issue, strict=True))
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def load_all() -> dict[str, Case]:
    """Import every ``test_*`` module of this package, so that all cases are registered."""
    import tests.adversarial as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("test_"):
            importlib.import_module(f"tests.adversarial.{info.name}")
    return CASES


BEGIN = "<!-- BEGIN GENERATED TABLE (scripts/gen_adversarial_table.py) -->"
END = "<!-- END GENERATED TABLE -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(cases: dict[str, Case]) -> str:
    """The Markdown table of every case, grouped by category, with per-category counts."""
    lines = [BEGIN, ""]
    counts = {k: sum(1 for c in cases.values() if c.category == k) for k in CATEGORIES}
    lines.append(f"{len(cases)} cases: " + ", ".join(f"{k} {n}" for k, n in counts.items()) + ".")
    for key, name in CATEGORIES.items():
        lines += ["", f"### {key}. {name} ({counts[key]})", ""]
        lines += [
            "| case | what is attempted | exit | via | caught by |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in sorted((c for c in cases.values() if c.category == key), key=lambda c: c.id):
            caught = f"`{_cell(c.message)}`" if c.message else ""
            if c.known_issue:
                caught = f"**known issue**: {_cell(c.known_issue)}"
            lines.append(f"| `{c.id}` | {_cell(c.title)} | {c.exit_text} | {c.via} | {caught} |")
    lines += ["", END]
    return "\n".join(lines) + "\n"
