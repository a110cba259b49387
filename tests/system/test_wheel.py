"""The product as users install it: the wheel built from this checkout, in a fresh venv.

The wheel holds the library and nothing else (no test package, no test hook), and the installed
``securexport`` honours no test-only variable: with ``SECUREXPORT_TEST_SCRYPT_LOG_N=10`` and
``SECUREXPORT_TEST_CRASH_AT=after-count`` in its environment it still writes key files at the
documented scrypt cost 2^18 (DESIGN.md) and runs an export to the end.  Those variables are
read by the suite's own launcher (tests/support/cli_process.py) and nowhere in securexport.

The wheel is built and installed once per test process (tests/support/wheel.py, shared with
test_man.py); the tests share one xdist group so that ``-n 2 --dist loadgroup`` does it once
per run.  All of it takes about 20 s on an idle machine: the isolated build ~7 s (the same
build ``pip install -e .`` does), the offline install of the wheel alone ~2 s, two key files
at 2^18 and an export.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from securexport import api
from tests.support.checkout import REPO
from tests.support.wheel import WHEEL_GROUP, Installed, installed_wheel

SUBPACKAGES = ("cli", "api", "home", "ledger", "bundle", "data", "policy", "_crypto")

pytestmark = pytest.mark.xdist_group(WHEEL_GROUP)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel, installed alone into a fresh venv (tests/support/wheel.py)."""
    return installed_wheel(tmp_path_factory.getbasetemp())


# ---------------------------------------------------------------------------------------------
# The wheel's contents


def test_the_wheel_holds_the_library_and_nothing_else(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    source = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "securexport").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert "securexport/_testhooks.py" not in names
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert "securexport/py.typed" in names
    for sub in SUBPACKAGES:
        assert f"securexport/{sub}/__init__.py" in names, sub
    # Every source file and only those (a stale or generated module would show here).
    assert {n for n in names if n.startswith("securexport/")} == source
    # Besides the package, only the man pages (data files, installed into <prefix>/share).
    pages = {p.name for p in (REPO / "man" / "man1").glob("*.1")}
    data = "securexport-0.1.0.data/data/share/man/man1/"
    assert {n.removeprefix(data) for n in names if n.startswith(data)} == pages
    assert {n.split("/")[0] for n in names} == {
        "securexport",
        "securexport-0.1.0.dist-info",
        "securexport-0.1.0.data",
    }
    assert not [n for n in names if n.startswith("securexport-0.1.0.data/") and data not in n]
    with zipfile.ZipFile(installed.wheel) as wheel:
        entry_points = wheel.read("securexport-0.1.0.dist-info/entry_points.txt").decode()
    assert "securexport = securexport.cli:entry" in entry_points


def test_no_installed_file_names_a_test_hook(installed: Installed) -> None:
    files = [
        *installed.site_packages.joinpath("securexport").rglob("*"),
        *installed.site_packages.joinpath("securexport-0.1.0.dist-info").rglob("*"),
        installed.console_script,
        *installed.venv.joinpath("share", "man").rglob("*"),
    ]
    files = [p for p in files if p.is_file()]
    assert len(files) > 60
    # The .pyc files pip compiled too: a name built at run time is a constant there.
    naming = [p for p in files if re.search(rb"SECUREXPORT_TEST_|_testhooks", p.read_bytes())]
    assert naming == []


# ---------------------------------------------------------------------------------------------
# The installed product


def test_it_imports_from_the_venv_not_the_checkout(installed: Installed) -> None:
    probe = (
        "import json, sys, securexport, securexport.cli;"
        "print(json.dumps({'files': [securexport.__file__, securexport.cli.__file__],"
        " 'path': sys.path,"
        " 'finders': [type(f).__module__ for f in sys.meta_path]}))"
    )
    done = installed.run([str(installed.python), "-c", probe])
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    for file in seen["files"]:
        assert Path(file).resolve().is_relative_to(installed.site_packages.resolve()), file
    assert str(REPO) not in [str(Path(p).resolve()) for p in seen["path"] if p]
    assert not [f for f in seen["finders"] if "editable" in f], seen["finders"]


def _scrypt_log_n(key_file: bytes) -> int:
    """The work factor of an age passphrase file, read from its header without the product:
    the one stanza ``-> scrypt <salt> <log_n>`` (age-encryption.org/v1)."""
    header = key_file.split(b"\n--- ", 1)[0].decode("ascii").splitlines()
    assert header[0] == "age-encryption.org/v1", header
    stanzas = [line.split() for line in header[1:] if line.startswith("-> ")]
    assert len(stanzas) == 1 and stanzas[0][1] == "scrypt", stanzas
    return int(stanzas[0][3])


def test_key_files_cost_scrypt_2_to_18_whatever_the_environment_says(
    installed: Installed,
) -> None:
    home = installed.outside / "home"
    passphrase = installed.outside / "passphrase"
    passphrase.write_bytes(b"correct horse battery staple\n")
    passphrase.chmod(0o600)
    done = installed.run(
        [str(installed.console_script), "--home", str(home), "keys", "new", "alice"],
        SECUREXPORT_KEYSTORE="file",
        SECUREXPORT_PASSPHRASE_FILE=str(passphrase),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created identity alice (file)\n"), done.stdout
    key_files = sorted((home / "keys").glob("alice.*.age"))
    assert len(key_files) == 2, key_files
    for path in key_files:
        assert _scrypt_log_n(path.read_bytes()) == 18, path


def test_an_export_runs_past_the_crash_stage_the_environment_names(
    installed: Installed, world: Any
) -> None:
    approval = world.write_approval()
    out = world.root / "out.sxb"
    args = [
        "export",
        str(approval),
        "--source",
        world.source_url,
        "--as",
        "analyst",
        "-o",
        str(out),
    ]
    done = installed.run(
        [str(installed.console_script), "--home", str(world.exporter.home.path), *args],
        SECUREXPORT_KEYSTORE="file",
        SECUREXPORT_PASSPHRASE_FILE=str(world.exporter.passphrase_file),
    )
    assert done.returncode == 0, done.stderr
    assert api.verify(world.recipient, out).ledger_index == 0
