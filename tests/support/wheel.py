"""The product as users install it: the wheel built from this checkout, in a fresh venv.

Built and installed once per test process (:func:`installed_wheel`), for tests/system/
test_wheel.py and test_man.py, which share the xdist group ``"wheel"`` so that
``-n 2 --dist loadgroup`` builds it once per run: the isolated build ~7 s (the same build
``pip install -e .`` does), the offline install of the wheel alone ~2 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tests.support.checkout import copy_checkout
from tests.support.cli import CRASH_VAR, SCRYPT_VAR

PIP_TIMEOUT = 300
WHEEL_GROUP = "wheel"  # the xdist group of every module that uses the installed wheel


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    site_packages: Path
    outside: Path  # a directory outside the checkout: cwd and $HOME of every run

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def console_script(self) -> Path:
        return self.venv / "bin" / "securexport"

    def environ(self, **extra: str) -> dict[str, str]:
        """The caller's environment less anything that could lead Python or the product
        elsewhere, plus the test hooks the product must ignore, plus ``extra``."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SECUREXPORT_", "PYTHON", "COV_CORE_")) and k != "VIRTUAL_ENV"
        }
        env.update({SCRYPT_VAR: "10", CRASH_VAR: "after-count", "HOME": str(self.outside)})
        env.update(extra)
        return env

    def run(self, argv: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.outside,
            env=self.environ(**extra),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def build_wheel(tmp: Path) -> Path:
    # From a copy (tests/support/checkout.py says why).  Build isolation fetches setuptools>=77
    # (pyproject's PEP 639 license string needs it), as a user's `pip install .` does; make venv
    # and make wheelhouse build with the locked setuptools instead (tests/system/test_install.py).
    src = copy_checkout(tmp / "src")
    dist = tmp / "dist"
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(src))
    (wheel,) = dist.glob("securexport-*.whl")
    return wheel


def runtime_dependency_dirs() -> list[Path]:
    """Where this interpreter finds securexport's runtime dependencies (its site-packages)."""
    requires = metadata.requires("securexport") or []
    names = [re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r]
    assert "click" in names, requires
    dirs = {Path(str(metadata.distribution(name).locate_file(""))).resolve() for name in names}
    return sorted(dirs)


def install_wheel(tmp: Path) -> Installed:
    """The wheel, installed alone (``--no-deps --no-index``) into a fresh venv under ``tmp``.

    Its dependencies come from this interpreter's site-packages, added by a .pth file: offline
    and ~2 s, where resolving and installing them again takes ~30 s and tests pip, not us.  A
    path a .pth adds is not itself a site directory, so the .pth files there (the editable
    install's finder pointing at the checkout) are never run;
    test_it_imports_from_the_venv_not_the_checkout proves it.
    """
    wheel = build_wheel(tmp)
    venv = tmp / "venv"
    # venv makes it from the base interpreter (sys._base_executable): none of this venv's
    # packages are in it, and it needs no ensurepip.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    _pip("--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel))
    probe = [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    site_packages = Path(subprocess.check_output(probe, text=True).strip())
    (site_packages / "securexport-test-deps.pth").write_text(
        "".join(f"{d}\n" for d in runtime_dependency_dirs())
    )
    outside = tmp / "outside"
    outside.mkdir()
    return Installed(wheel=wheel, venv=venv, site_packages=site_packages, outside=outside)


_INSTALLED: dict[Path, Installed] = {}


def installed_wheel(base_temp: Path) -> Installed:
    """:func:`install_wheel` once per process (per pytest base temp directory): every module's
    fixture gets the same venv.  Tests must not change it."""
    if base_temp not in _INSTALLED:
        tmp = base_temp / "wheel"
        tmp.mkdir()
        _INSTALLED[base_temp] = install_wheel(tmp)
    return _INSTALLED[base_temp]
