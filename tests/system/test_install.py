"""Installing securexport as the README says: hash locks, extras, the wheelhouse, the metadata.

- The locks (requirements/*.txt) follow pyproject.toml, and ``requirements/locks.py check``
  (``make lint``) fails, offline, when pyproject.toml gains a requirement the locks lack.
- Without psycopg (the ``postgres`` extra) a ``postgresql+psycopg://`` source or ledger is a
  usage error (exit 2) that names the extra.
- ``make wheelhouse``, run on a copy of the checkout with this venv, gives a directory from which
  ``pip install --no-index --find-links`` installs a working CLI into a fresh venv: the SQLite
  path works there, and the PostgreSQL one says which extra to add.  The same build's sdist and
  wheel pass ``twine check --strict`` and carry the PyPI metadata.  ``make install`` (its venv
  path, pipx being absent) links the console script into a bin directory on PATH.

The wheelhouse is built once per module (one xdist group): ~25 s, most of it downloading the
runtime wheels (hash-checked) and the build from the sdist.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from securexport.data.source import open_source
from securexport.errors import UsageError
from securexport.ledger.postgres_store import store_for_url
from tests.support.checkout import REPO, copy_checkout
from tests.support.cli import Runner, assert_one_line_error

NO_EXTRA = (
    "securexport: error: PostgreSQL support is not installed: pip install 'securexport[postgres]'"
)
PG_URL = "postgresql+psycopg://alice@localhost/db"
TIMEOUT = 600

pytestmark = pytest.mark.xdist_group("install")


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs
    )


# ---------------------------------------------------------------------------------------------
# The locks


def _check_locks(root: Path) -> subprocess.CompletedProcess[str]:
    """What ``make lint`` runs, on the checkout at ``root``."""
    return _run(
        [sys.executable, str(REPO / "requirements" / "locks.py"), "check", "--root", str(root)]
    )


def test_the_locks_follow_pyproject() -> None:
    done = _check_locks(REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "locks: requirements/*.txt follow pyproject.toml\n"


def test_every_pin_of_the_locks_has_hashes() -> None:
    for name in ("runtime.txt", "dev.txt", "tools.txt"):
        text = (REPO / "requirements" / name).read_text()
        entries = [e for e in text.split("\n") if "==" in e and not e.startswith("#")]
        assert entries, name
        assert all(e.endswith(" \\") for e in entries), name  # a --hash line follows each pin
    runtime = (REPO / "requirements" / "runtime.txt").read_text()
    # The core install is SQLite only: psycopg and its bundled libraries are not in it.
    assert "psycopg" not in runtime
    assert "\nclick==" in runtime
    dev = (REPO / "requirements" / "dev.txt").read_text()
    for pin in ("psycopg==", "psycopg-binary==", "build==", "twine==", "setuptools==", "pip=="):
        assert f"\n{pin}" in dev, pin


def _edited_checkout(tmp: Path, old: str, new: str, path: str = "pyproject.toml") -> Path:
    root = tmp / "checkout"
    (root / "requirements").mkdir(parents=True)
    for name in ("pyproject.toml", "requirements/runtime.txt", "requirements/dev.txt"):
        (root / name).write_text((REPO / name).read_text())
    text = (root / path).read_text()
    assert old in text, old
    (root / path).write_text(text.replace(old, new, 1))
    return root


def test_the_check_fails_when_pyproject_gains_a_dependency_the_locks_lack(tmp_path: Path) -> None:
    root = _edited_checkout(tmp_path, '  "click>=8.1",\n', '  "click>=8.1",\n  "attrs>=23",\n')
    done = _check_locks(root)
    assert done.returncode == 1, done.stdout
    assert done.stderr.splitlines() == [
        "locks: requirements/runtime.txt was not compiled from this pyproject.toml's requirements",
        "locks: requirements/runtime.txt does not pin attrs ('attrs>=23')",
        "locks: requirements/dev.txt was not compiled from this pyproject.toml's requirements",
        "locks: requirements/dev.txt does not pin attrs ('attrs>=23')",
        "locks: the lock files are stale; run `make lock`",
    ]


def test_the_check_fails_when_a_bound_excludes_the_pin(tmp_path: Path) -> None:
    root = _edited_checkout(tmp_path, '"pytest>=8"', '"pytest>=999"')
    done = _check_locks(root)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    # A dev-only change leaves the runtime lock current.
    assert not [line for line in lines if "runtime.txt" in line], lines
    assert (
        "locks: requirements/dev.txt was not compiled from this pyproject.toml's requirements"
        in lines
    )
    assert [line for line in lines if "dev.txt pins pytest==" in line and "'pytest>=999'" in line]


def test_the_check_fails_when_a_lock_is_edited_by_hand(tmp_path: Path) -> None:
    text = (REPO / "requirements" / "runtime.txt").read_text()
    pin = next(line for line in text.splitlines() if line.startswith("click=="))
    # The click pin, its hash lines dropped: pip would then install it unchecked.
    start = text.index(pin)
    end = text.index("\n    # via", start)
    root = _edited_checkout(
        tmp_path, text[start:end], pin.removesuffix(" \\"), "requirements/runtime.txt"
    )
    done = _check_locks(root)
    assert done.returncode == 1
    assert "locks: requirements/runtime.txt: click has no --hash" in done.stderr.splitlines()


# ---------------------------------------------------------------------------------------------
# psycopg is the postgres extra


@pytest.fixture
def no_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the postgres extra were not installed: ``import psycopg`` raises ImportError."""
    for name in [n for n in sys.modules if n == "psycopg" or n.startswith("psycopg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError):
        import psycopg  # noqa: F401


def test_a_postgresql_source_without_the_extra_names_it(no_psycopg: None) -> None:
    with pytest.raises(UsageError) as caught:
        open_source(PG_URL)
    assert f"securexport: error: {caught.value.message}" == NO_EXTRA
    assert caught.value.hint is None


def test_a_postgresql_ledger_without_the_extra_names_it(no_psycopg: None) -> None:
    with pytest.raises(UsageError) as caught:
        store_for_url(PG_URL)
    assert f"securexport: error: {caught.value.message}" == NO_EXTRA


def test_an_export_from_postgresql_without_the_extra_is_exit_2(
    no_psycopg: None, world: Any
) -> None:
    from securexport.cli import cli

    approval = world.write_approval()
    args = ["--home", str(world.exporter.home.path), "export", str(approval), "--source", PG_URL]
    env = {
        "SECUREXPORT_KEYSTORE": "file",
        "SECUREXPORT_PASSPHRASE_FILE": str(world.exporter.passphrase_file),
    }
    argv = [*args, "--as", "analyst", "-o", str(world.root / "out.sxb")]
    result = Runner().invoke(cli, argv, env=env)
    assert assert_one_line_error(result, 2) == NO_EXTRA
    assert not (world.root / "out.sxb").exists()


def test_the_sqlite_path_needs_no_psycopg(no_psycopg: None, world: Any) -> None:
    assert world.export().ledger_index == 0


# ---------------------------------------------------------------------------------------------
# The wheelhouse, the build, make install


@dataclass(frozen=True)
class Wheelhouse:
    src: Path  # the copy of the checkout make ran in
    path: Path
    dist: Path  # the sdist and wheel `python -m build` made for it
    tmp: Path


def _make(src: Path, *targets: str, **variables: str) -> subprocess.CompletedProcess[str]:
    # This venv stands for the checkout's own (make venv): -o keeps make from re-making it.
    venv = Path(sys.prefix)
    argv = ["make", "-C", str(src), "-o", f"{venv}/.installed", f"VENV={venv}"]
    argv += [f"{k}={v}" for k, v in variables.items()]
    return _run([*argv, *targets])


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    tmp = tmp_path_factory.mktemp("install")
    src = copy_checkout(tmp / "src")
    done = _make(src, "wheelhouse")
    assert done.returncode == 0, done.stdout + done.stderr
    return Wheelhouse(
        src=src, path=src / "wheelhouse", dist=src / "build" / "wheelhouse-dist", tmp=tmp
    )


def _fresh_venv(path: Path) -> Path:
    # From the base interpreter (none of this venv's packages), with its own pip.
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=TIMEOUT)
    return path / "bin"


def _outside_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECUREXPORT_", "PYTHON", "COV_CORE_", "PIP_")) and k != "VIRTUAL_ENV"
    }
    env["HOME"] = str(home)
    return env


def test_the_wheelhouse_holds_the_wheel_and_the_locked_runtime_wheels(
    wheelhouse: Wheelhouse,
) -> None:
    names = sorted(p.name for p in wheelhouse.path.iterdir())
    assert all(n.endswith(".whl") for n in names), names
    assert "securexport-0.1.0-py3-none-any.whl" in names
    locked = [
        line.split("==")[0]
        for line in (REPO / "requirements" / "runtime.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    ]
    assert len(names) == len(locked) + 1, (names, locked)
    assert not [n for n in names if n.startswith("psycopg")]


def test_an_offline_install_from_the_wheelhouse_works_without_the_postgres_extra(
    wheelhouse: Wheelhouse,
) -> None:
    bin_dir = _fresh_venv(wheelhouse.tmp / "fresh")
    outside = wheelhouse.tmp / "outside"
    outside.mkdir()
    env = _outside_env(outside)
    # --isolated: no pip configuration of this machine (its find-links) takes part.
    install = [str(bin_dir / "python"), "-m", "pip", "--isolated", "install", "--no-index"]
    done = _run(
        [*install, "--find-links", str(wheelhouse.path), "securexport"], cwd=outside, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    securexport = str(bin_dir / "securexport")

    done = _run([securexport, "--version"], cwd=outside, env=env)
    assert (done.returncode, done.stdout) == (0, "securexport, version 0.1.0\n"), done.stderr
    home = outside / "H"
    done = _run([securexport, "--home", str(home), "approval", "init"], cwd=outside, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# securexport approval (schema securexport.approval/1)")
    done = _run([securexport, "--home", str(home), "keys", "list"], cwd=outside, env=env)
    assert done.returncode == 0, done.stderr
    done = _run([securexport, "--home", str(home), "ledger", "list"], cwd=outside, env=env)
    assert done.returncode == 0, done.stderr  # the SQLite ledger in $HOME

    probe = _run([str(bin_dir / "python"), "-c", "import psycopg"], cwd=outside, env=env)
    assert probe.returncode == 1 and "ModuleNotFoundError" in probe.stderr
    done = _run(
        [securexport, "--home", str(home), "--ledger", PG_URL, "ledger", "list"],
        cwd=outside,
        env=env,
    )
    assert (done.returncode, done.stdout, done.stderr) == (2, "", NO_EXTRA + "\n")


def test_the_build_passes_twine_check_and_carries_the_pypi_metadata(wheelhouse: Wheelhouse) -> None:
    dist = sorted(wheelhouse.dist.iterdir())
    assert [p.name for p in dist] == [
        "securexport-0.1.0-py3-none-any.whl",
        "securexport-0.1.0.tar.gz",
    ]
    twine = Path(sys.prefix) / "bin" / "twine"
    done = _run([str(twine), "check", "--strict", *map(str, dist)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout

    with zipfile.ZipFile(dist[0]) as wheel:
        meta = email.message_from_bytes(wheel.read("securexport-0.1.0.dist-info/METADATA"))
        assert "securexport-0.1.0.dist-info/licenses/LICENSE" in wheel.namelist()
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    classifiers = meta.get_all("Classifier")
    for classifier in (
        "Operating System :: POSIX",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Typing :: Typed",
    ):
        assert classifier in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: the expression
    assert meta["Requires-Python"] == ">=3.11"
    urls = meta.get_all("Project-URL")
    assert [u for u in urls if u.startswith("Homepage, https://")], urls
    requires = meta.get_all("Requires-Dist")
    assert 'psycopg>=3.1; extra == "postgres"' in requires
    assert 'psycopg[binary]>=3.1; extra == "postgres-binary"' in requires
    assert not [r for r in requires if r.startswith("psycopg") and "extra ==" not in r]
    with tarfile.open(dist[1]) as sdist:
        assert "securexport-0.1.0/LICENSE" in sdist.getnames()


def test_make_install_without_pipx_links_the_cli_into_a_bindir_on_path(
    wheelhouse: Wheelhouse,
) -> None:
    home = wheelhouse.tmp / "user"
    bindir = home / ".local" / "bin"
    target = home / ".local" / "share" / "securexport" / "venv"
    env = _outside_env(home)
    # The wheelhouse is made: -o keeps make from making it again.
    argv = ["make", "-C", str(wheelhouse.src), "-o", f"{sys.prefix}/.installed", "-o", "wheelhouse"]
    argv += [f"VENV={sys.prefix}", "NO_PIPX=1", f"HOME={home}"]
    env["PATH"] = f"{bindir}:{env['PATH']}"
    done = _run([*argv, "install"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"installed: {bindir}/securexport -> {target}/bin/securexport\n" in done.stdout
    assert (bindir / "securexport").resolve() == (target / "bin" / "securexport").resolve()
    ran = _run(["securexport", "--version"], cwd=home, env=env)
    assert (ran.returncode, ran.stdout) == (0, "securexport, version 0.1.0\n"), ran.stderr
