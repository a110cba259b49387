"""README.md's tour runs as written, and ``securexport demo-db`` makes the database it uses.

The README's ```bash blocks, in order, in one bash (``set -euo pipefail``), from a directory
outside the checkout with a fresh ``HOME`` and no ``SECUREXPORT_*`` variable: the README itself
sets ``SECUREXPORT_HOME``, ``SECUREXPORT_PASSPHRASE_FILE`` and ``SECUREXPORT_KEYSTORE``.  The
checkout's venv is on PATH, as ``. .venv/bin/activate`` puts it.  Only the blocks that build
or check this checkout (``make …``, the activate line) are skipped, each marked in the README
with ``<!-- not run by tests: … -->``; a marked block with anything else in it fails the test.
Key files cost scrypt 2^18, as for a user: about 20 s on an idle machine.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from securexport import api
from securexport.cli import cli
from securexport.errors import UsageError
from tests.support.cli import Runner, assert_one_line_error

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SKIP_MARK = "<!-- not run by tests:"
# What a skipped block may hold: building and checking the checkout, entering its venv.
CHECKOUT_ONLY = ("make ", ". .venv/bin/activate")


def readme_blocks(text: str) -> list[tuple[bool, str]]:
    """Each ```bash block of ``text`` in order, with whether the line before it skips it."""
    blocks: list[tuple[bool, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            skipped = i > 0 and lines[i - 1].startswith(SKIP_MARK)
            end = lines.index("```", i + 1)
            blocks.append((skipped, "\n".join(lines[i + 1 : end]) + "\n"))
            i = end
        i += 1
    return blocks


def _commands(block: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip()]


def tour_script(text: str) -> str:
    """The blocks that run, as one script; each announces itself on stderr first."""
    parts = ["set -euo pipefail"]
    for number, (skipped, block) in enumerate(readme_blocks(text), 1):
        if not skipped:
            parts += [f"echo '::: README block {number}' >&2", block]
    return "\n".join(parts) + "\n"


def test_only_the_checkout_s_own_make_steps_are_skipped() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    skipped = [block for skip, block in blocks if skip]
    run = [block for skip, block in blocks if not skip]
    assert skipped, "the README's first step (make demo) is marked as not run"
    for block in skipped:
        for line in _commands(block):
            assert line.startswith(CHECKOUT_ONLY), f"a skipped README block runs {line!r}"
    for block in run:
        for line in _commands(block):
            assert not line.startswith("make "), f"unmarked README block runs {line!r}"
    assert len(run) >= 7
    assert "securexport demo-db offenders.db" in "".join(run)
    assert "make demo " in skipped[0] and ". .venv/bin/activate" in skipped[0]


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "securexport").is_file(), f"no securexport in {venv_bin}"
    home = tmp_path / "home"
    start = tmp_path / "start"
    home.mkdir()
    start.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECUREXPORT_", "PYTHON", "DBUS_", "_SECUREXPORT"))
        and k not in ("VIRTUAL_ENV", "MANPATH")
    }
    env.update(PATH=f"{venv_bin}:/usr/bin:/bin", HOME=str(home), LC_ALL="C.UTF-8")
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", tour_script(README.read_text(encoding="utf-8"))],
        cwd=start,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    blocks = [line for line in done.stderr.splitlines() if line.startswith("::: README block")]
    assert done.returncode == 0, (
        f"{blocks[-1] if blocks else 'before the first block'} exited {done.returncode}:\n"
        + done.stderr[-3000:]
    )
    out = done.stdout
    tour = home / "securexport-tour"
    assert "exit 3: not signed yet" in out  # approval check before it was signed
    assert "OK: export " in out  # verify
    csv = (tour / "extract" / "data" / "offenders.csv").read_text(encoding="utf-8")
    assert csv.startswith("offender,age_band,area,convictions\n")
    assert out.count("offender,age_band,area,convictions\n") == 1  # head -n 3
    for made in ("ppo-2026-06.sxb", "ppo-extract.toml.sig", "checkpoint.txt", "receipt.tlog"):
        assert (tour / made).is_file(), made
    assert sorted(p.name for p in tour.iterdir() if p.is_dir()) == [
        "extract",
        "owner",
        "pa-analyst",
        "wmp-iom",
    ]
    # Everything the tour made is in its directory: nothing where it started.
    assert list(start.iterdir()) == []


# --------------------------------------------------------------------------- demo-db


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM offenders ORDER BY rowid").fetchall()


def test_demo_db_writes_the_synthetic_database(tmp_path: Path) -> None:
    path = tmp_path / "offenders.db"
    result = Runner().invoke(cli, ["demo-db", str(path), "--people", "40", "--seed", "7"])
    assert result.exit_code == 0, result.stderr
    rows = _rows(path)
    assert 40 <= len(rows) <= 120  # some people have more than one custody episode
    assert result.stdout == f"wrote {len(rows)} rows for 40 people to {path}\n"
    assert result.stderr == ""
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id FROM securexport_database").fetchall() == [
            ("offender-tracking-demo",)
        ]
        assert db.execute("SELECT count(*) FROM offenders_v").fetchone() == (len(rows),)

    again = tmp_path / "again.db"
    as_json = Runner().invoke(
        cli, ["--json", "demo-db", str(again), "--people", "40", "--seed", "7"]
    )
    assert as_json.exit_code == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "path": str(again),
        "people": 40,
        "rows": len(rows),
        "seed": 7,
        "database_id": "offender-tracking-demo",
    }
    assert _rows(again) == rows  # the same seed, the same rows
    other = tmp_path / "other.db"
    assert Runner().invoke(cli, ["demo-db", str(other), "--people", "40"]).exit_code == 0
    assert _rows(other) != rows


def test_demo_db_never_replaces_a_file(tmp_path: Path) -> None:
    path = tmp_path / "offenders.db"
    path.write_bytes(b"precious")
    result = Runner().invoke(cli, ["demo-db", str(path), "--people", "5"])
    line = assert_one_line_error(result, 7)
    assert line == f"securexport: error: {path} exists already"
    assert path.read_bytes() == b"precious"

    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "elsewhere.db")  # dangling: SQLite would create its target
    assert_one_line_error(Runner().invoke(cli, ["demo-db", str(link), "--people", "5"]), 7)
    assert not (tmp_path / "elsewhere.db").exists()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--people", "-1"], 2),
        (["--people", "many"], 2),
        (["--seed", "x"], 2),
    ],
)
def test_demo_db_usage_errors(tmp_path: Path, args: list[str], code: int) -> None:
    path = tmp_path / "offenders.db"
    assert_one_line_error(Runner().invoke(cli, ["demo-db", str(path), *args]), code)
    assert not path.exists()


def test_demo_db_in_a_missing_directory_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "offenders.db"
    line = assert_one_line_error(Runner().invoke(cli, ["demo-db", str(path)]), 7)
    assert line.startswith(f"securexport: error: cannot write {path}: ")
    assert not path.parent.exists()


def test_make_demo_db_refuses_a_negative_count(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--people must be 0 or more, not -1"):
        api.make_demo_db(tmp_path / "x.db", people=-1)
    assert not (tmp_path / "x.db").exists()
