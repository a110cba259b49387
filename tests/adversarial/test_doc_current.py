"""docs/adversarial.md's case table is generated from the registry; keep it current."""

from __future__ import annotations

from pathlib import Path

from tests.adversarial.registry import CATEGORIES, load_all, render_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "adversarial.md"


def test_table_in_docs_is_current() -> None:
    assert render_table(load_all()) in DOC.read_text(encoding="utf-8"), (
        "docs/adversarial.md is stale: run python scripts/gen_adversarial_table.py"
    )


def test_at_least_90_cases_in_total_and_one_in_every_category() -> None:
    cases = load_all()
    assert len(cases) >= 90
    assert all(any(c.category == k for c in cases.values()) for k in CATEGORIES)
