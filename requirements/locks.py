"""The hash-locked requirements: compile them from pyproject.toml, and check they follow it.

``python requirements/locks.py compile`` (``make lock``) resolves each lock with uv for the CI
machine (CPython 3.11 on x86_64 Linux), with a sha256 for every distribution, keeping the pins
an existing lock already has unless pyproject.toml no longer allows them.  Each lock's first
line records a hash of the dependency lists it was compiled from.

``python requirements/locks.py check`` (``make lint``) needs no network: it fails when a lock's
recorded hash no longer matches pyproject.toml (a requirement was added, removed or changed
without ``make lock``), or when a requirement of pyproject.toml is not pinned in the lock, or
pinned to a version its specifier excludes, or a pin has no hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.11"
PYTHON_PLATFORM = "x86_64-unknown-linux-gnu"
COMPILE_COMMAND = "make lock"
INPUTS_PREFIX = "# inputs-sha256: "


@dataclass(frozen=True)
class Lock:
    name: str  # the file under requirements/
    extras: tuple[str, ...]  # the extras of pyproject.toml it holds besides the dependencies


LOCKS = (
    Lock("runtime.txt", ()),
    Lock("dev.txt", ("dev", "postgres", "postgres-binary")),
)


def requirements_of(pyproject: dict[str, object], lock: Lock) -> list[str]:
    """The requirement strings of pyproject.toml that ``lock`` is compiled from."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    extras = project.get("optional-dependencies", {})
    found = list(project.get("dependencies", []))
    for extra in lock.extras:
        if extra not in extras:
            raise SystemExit(f"locks: pyproject.toml has no extra {extra!r}")
        found.extend(extras[extra])
    return found


def inputs_hash(pyproject: dict[str, object], lock: Lock) -> str:
    project = pyproject["project"]
    assert isinstance(project, dict)
    inputs = {
        "requirements": requirements_of(pyproject, lock),
        "requires-python": project.get("requires-python"),
        "python": PYTHON_VERSION,
        "platform": PYTHON_PLATFORM,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def load_pyproject(root: Path) -> dict[str, object]:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# compile


def compile_locks(root: Path, uv: str) -> None:
    pyproject = load_pyproject(root)
    for lock in LOCKS:
        out = root / "requirements" / lock.name
        argv = [uv, "pip", "compile", "--quiet", str(root / "pyproject.toml")]
        argv += [f"--extra={extra}" for extra in lock.extras]
        argv += [
            "--generate-hashes",
            f"--python-version={PYTHON_VERSION}",
            f"--python-platform={PYTHON_PLATFORM}",
            f"--custom-compile-command={COMPILE_COMMAND}",
            f"--output-file={out}",
        ]
        subprocess.run(argv, check=True, cwd=root)
        body = [line for line in out.read_text().splitlines() if not line.startswith(INPUTS_PREFIX)]
        first = f"{INPUTS_PREFIX}{inputs_hash(pyproject, lock)} (of pyproject.toml; make lint checks it)"
        out.write_text("\n".join([first, *body]) + "\n")
        print(f"locks: wrote requirements/{lock.name}")


# ---------------------------------------------------------------------------------------------
# check

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins_of(text: str) -> tuple[dict[str, str], list[str]]:
    """``{canonical name: version}`` of a lock's pins, and the names of pins without a hash."""
    pins: dict[str, str] = {}
    unhashed: list[str] = []
    entries = re.split(r"\n(?=\S)", text)
    for entry in entries:
        match = _PIN.match(entry)
        if match is None:
            continue
        name = _canonical(match.group(1))
        pins[name] = match.group(2)
        if "--hash=sha256:" not in entry:
            unhashed.append(name)
    return pins, unhashed


def problems_of(root: Path) -> list[str]:
    from packaging.requirements import Requirement

    pyproject = load_pyproject(root)
    problems: list[str] = []
    for lock in LOCKS:
        path = root / "requirements" / lock.name
        where = f"requirements/{lock.name}"
        if not path.is_file():
            problems.append(f"{where} is missing")
            continue
        text = path.read_text(encoding="utf-8")
        recorded = text.split("\n", 1)[0].removeprefix(INPUTS_PREFIX).split(" ", 1)[0]
        if not text.startswith(INPUTS_PREFIX) or recorded != inputs_hash(pyproject, lock):
            problems.append(f"{where} was not compiled from this pyproject.toml's requirements")
        pins, unhashed = pins_of(text)
        problems.extend(f"{where}: {name} has no --hash" for name in unhashed)
        for line in requirements_of(pyproject, lock):
            requirement = Requirement(line)
            name = _canonical(requirement.name)
            if name == "securexport" or not _applies(requirement.marker):
                continue
            if name not in pins:
                problems.append(f"{where} does not pin {requirement.name} ({line!r})")
            elif not requirement.specifier.contains(pins[name], prereleases=True):
                problems.append(f"{where} pins {name}=={pins[name]}, outside {line!r}")
    return problems


def _applies(marker: object) -> bool:
    """Whether a requirement's environment marker holds on the machine the locks are for."""
    if marker is None:
        return True
    environment = {
        "python_version": PYTHON_VERSION,
        "python_full_version": f"{PYTHON_VERSION}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    return bool(marker.evaluate(environment))  # type: ignore[attr-defined]


def check(root: Path) -> int:
    problems = problems_of(root)
    for problem in problems:
        print(f"locks: {problem}", file=sys.stderr)
    if problems:
        print(f"locks: the lock files are stale; run `{COMPILE_COMMAND}`", file=sys.stderr)
        return 1
    print("locks: requirements/*.txt follow pyproject.toml")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=("compile", "check"))
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    parser.add_argument("--uv", default="uv", help="the uv executable (compile)")
    args = parser.parse_args(argv)
    if args.command == "compile":
        compile_locks(args.root.resolve(), args.uv)
        return 0
    return check(args.root.resolve())


if __name__ == "__main__":
    sys.exit(main())
