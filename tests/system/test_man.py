"""The man pages: one per command and group, current with the code, installed with the wheel
where ``man`` finds them from PATH alone (man-db maps ``<prefix>/bin`` to
``<prefix>/share/man``), with the environment, files and exit codes in securexport(1)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from types import ModuleType

import click
import pytest

from securexport import __version__, errors
from securexport.cli import cli
from tests.support.checkout import REPO
from tests.support.wheel import WHEEL_GROUP, Installed, installed_wheel

PAGES = REPO / "man" / "man1"

pytestmark = pytest.mark.xdist_group(WHEEL_GROUP)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_man", REPO / "scripts" / "gen_man.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _command_paths(command: click.Command, path: str = "securexport") -> list[str]:
    paths = [path]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                paths += _command_paths(sub, f"{path} {name}")
    return paths


def _man(installed: Installed, page: str, path: str) -> subprocess.CompletedProcess[str]:
    man = shutil.which("man")
    assert man is not None, "man is missing: run `make system-deps` (Debian package man-db)"
    env = installed.environ(PATH=path, MANPAGER="cat", MANWIDTH="100", LC_ALL="C.UTF-8")
    env.pop("MANPATH", None)  # man-db derives the search path from PATH, as for a user
    return subprocess.run(
        [man, page],
        cwd=installed.outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return installed_wheel(tmp_path_factory.getbasetemp())


# --------------------------------------------------------------------------- the committed pages


def test_man_pages_are_what_the_generator_writes() -> None:
    expected = _generator().render_pages(cli, __version__)
    current = {p.name: p.read_text(encoding="utf-8") for p in PAGES.glob("*.1")}
    assert sorted(current) == sorted(expected), (
        "man/man1 is stale: run `.venv/bin/python scripts/gen_man.py man/man1`"
    )
    for name, text in expected.items():
        assert current[name] == text, (
            f"man/man1/{name} is stale: run `.venv/bin/python scripts/gen_man.py man/man1`"
        )


def test_one_page_per_command_and_group() -> None:
    names = {p.name for p in PAGES.glob("*.1")}
    wanted = {path.replace(" ", "-") + ".1" for path in _command_paths(cli)}
    assert names == wanted
    assert {"securexport.1", "securexport-export.1", "securexport-keys.1"} <= names
    assert "securexport-keys-new.1" in names
    page = (PAGES / "securexport-keys-new.1").read_text(encoding="utf-8")
    assert page.startswith('.TH "SECUREXPORT\\-KEYS\\-NEW" "1" ')
    assert "\n.B securexport keys new\n[OPTIONS] NAME\n" in page


def test_the_root_page_has_the_environment_files_and_exit_codes() -> None:
    page = (PAGES / "securexport.1").read_text(encoding="utf-8").replace("\\-", "-")
    sections = page.split("\n.SH ")
    titles = [s.split("\n", 1)[0] for s in sections[1:]]
    assert titles == [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "SEE ALSO",
    ]
    environment, files, exits = sections[6], sections[7], sections[8]
    for var in (
        "SECUREXPORT_HOME",
        "SECUREXPORT_PASSPHRASE_FILE",
        "SECUREXPORT_KEYSTORE",
        "NO_COLOR",
    ):
        assert f".TP\n\\fB{var}\\fR\n" in environment, var
    for name in (
        "config.toml",
        "allowed_signers",
        "trusted_logs",
        "keys/",
        "ledger.db",
        "revocations/",
        "witness/",
    ):
        assert f".TP\n\\fB$SECUREXPORT_HOME/{name}\\fR\n" in files, name
    codes = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.SecurexportError)
    }
    for code in {0, *codes}:
        assert f".TP\n\\fB{code}\\fR\n" in exits, code
    # Subcommand pages point there rather than repeat it.
    export = (PAGES / "securexport-export.1").read_text(encoding="utf-8")
    assert "securexport(1)." in export and ".SH ENVIRONMENT" not in export


def test_help_text_becomes_safe_roff() -> None:
    gen = _generator()
    text = "Do it -- now.\n.not a request\n\n\b\nExample:\n  securexport x --y a\\\n    'b'\n"
    assert gen.help_roff(text) == [
        ".PP",
        "Do it \\-\\- now. .not a request",
        ".PP",
        ".nf",
        ".RS 4",
        "Example:\n  securexport x \\-\\-y a\\e\n    'b'",
        ".RE",
        ".fi",
    ]
    assert gen.esc(".TH x\n'br\nok") == "\\&.TH x\n\\&'br\nok"


# --------------------------------------------------------------------------- installed


def test_man_shows_the_page_of_the_installed_package(installed: Installed) -> None:
    assert (installed.venv / "share" / "man" / "man1" / "securexport-export.1").is_file()
    done = _man(installed, "securexport-export", f"{installed.venv / 'bin'}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("SECUREXPORT-EXPORT(1)"), out[:200]
    assert "securexport export [OPTIONS] APPROVAL" in out
    assert "Run a signed APPROVAL against --source into an encrypted, signed, logged" in out
    assert "-o, --output FILE" in out
    assert "securexport export ppo-extract.toml --source sqlite:///offenders.db \\" in out

    top = _man(installed, "securexport", f"{installed.venv / 'bin'}:/usr/bin:/bin")
    assert top.returncode == 0, top.stderr
    for heading in ("ENVIRONMENT", "FILES", "EXIT STATUS"):
        assert f"\n{heading}\n" in top.stdout
    assert "SECUREXPORT_PASSPHRASE_FILE" in top.stdout


def test_without_the_venv_on_path_man_has_no_such_page(installed: Installed) -> None:
    # The control: the page above came from the venv, not from a system directory.
    done = _man(installed, "securexport-export", "/usr/bin:/bin")
    assert done.returncode != 0
    assert "No manual entry for securexport-export" in done.stderr
