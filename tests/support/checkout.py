"""A copy of this checkout to build from: an in-tree build writes build/ and *.egg-info into the
checkout, and setuptools ships whatever a stale build/lib still holds (a deleted module would
return).  The copy keeps tests/, scripts/ and docs/ so that the package selection is really
tested."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What a build would pick up from a working checkout besides the source.
NOT_SOURCE = (
    ".git",
    ".venv",
    ".venv-pycanon",
    ".cache",
    "__pycache__",
    "*.pyc",
    "build",
    "dist",
    "wheelhouse",
    "*.egg-info",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "htmlcov",
    "demo-output",
    "bench-output",
)


def copy_checkout(dst: Path) -> Path:
    """The checkout's source files, copied to ``dst`` (which must not exist)."""
    shutil.copytree(REPO, dst, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    return dst
