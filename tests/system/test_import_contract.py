"""The house's import contract holds, and it would catch a break.

``lint-imports`` (import-linter, configured in pyproject.toml's ``[tool.importlinter]``) runs on
the package as it is, then on copies with one planted import each: an upward import, the CLI
reaching ``_crypto``, ``policy`` reaching an I/O package through a lower room, and a new room that
has no place in the layers.  Each copy is analysed, not the installed package: the copy's
directory is the working directory and the first entry of ``PYTHONPATH``, and a planted import
the linter did not see would leave it passing, which these tests refuse.

Two rules import-linter does not state are checked here by an AST walk over ``securexport/``:
no import cycle among its modules (inside a room too, and counting imports inside functions),
and no private name (``_x``) imported from, or reached through, a module of another room.  Each
is also run on the parsed package with one line planted, and must find it.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "securexport"
# The venv's own, as `make lint` runs it ($(BIN)/lint-imports).
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

LAYERS = "The rooms: arrows point down"
CLI_API_ONLY = "The CLI reaches the rooms only through the api"
POLICY_PURE = "policy is pure: no database, ZIP, keyring or file I/O, not even indirectly"
PRIMITIVES = "Only _crypto touches cryptographic primitives (cryptography, pyrage)"
CONTRACTS = (LAYERS, CLI_API_ONLY, PRIMITIVES, POLICY_PURE)


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the package under ``root``, with ``root``'s pyproject.toml."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy_house(tmp_path: Path) -> Path:
    root = tmp_path / "house"
    shutil.copytree(ROOT / PACKAGE, root / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _plant(root: Path, module: str, line: str) -> None:
    path = root / PACKAGE / module
    with path.open("a", encoding="utf-8") as f:
        f.write(f"\n{line}  # planted\n")


def _status(output: str, contract: str) -> str:
    for line in output.splitlines():
        if line.startswith(contract + " "):
            return line.removeprefix(contract + " ")
    raise AssertionError(f"{contract!r} not reported:\n{output}")


# --------------------------------------------------------------------------- import-linter


def test_the_package_keeps_every_contract() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    for contract in CONTRACTS:
        assert _status(done.stdout, contract) == "KEPT"


@pytest.mark.parametrize(
    ("module", "line", "broken", "evidence"),
    [
        pytest.param(
            "policy/approval.py",
            "from securexport.api import export",
            {LAYERS, POLICY_PURE},  # and through the api policy reaches every I/O package
            "securexport.policy.approval -> securexport.api",
            id="upward-policy-to-api",
        ),
        pytest.param(
            "cli/keys.py",
            "from securexport._crypto import agefile",
            {CLI_API_ONLY},  # downward, so the layers alone would allow it
            "securexport.cli.keys -> securexport._crypto.agefile",
            id="cli-to-crypto",
        ),
        pytest.param(
            "_crypto/note.py",
            "import sqlalchemy",
            {POLICY_PURE},
            "securexport._crypto.note -> sqlalchemy",
            id="policy-to-sqlalchemy-through-crypto",
        ),
        pytest.param(
            "data/spool.py",
            "from cryptography.hazmat.primitives.ciphers.aead import AESGCM",
            {PRIMITIVES},  # the layers know nothing of external packages
            "securexport.data.spool -> cryptography",
            id="primitive-outside-crypto",
        ),
        pytest.param(
            "reports.py",
            "import json",
            {LAYERS},
            "- securexport.reports",
            id="a-room-without-a-place",
        ),
    ],
)
def test_a_planted_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, broken: set[str], evidence: str
) -> None:
    root = _copy_house(tmp_path)
    _plant(root, module, line)
    done = _lint(root)
    assert done.returncode != 0, done.stdout + done.stderr
    for contract in CONTRACTS:
        assert _status(done.stdout, contract) == ("BROKEN" if contract in broken else "KEPT")
    assert evidence in done.stdout


# --------------------------------------------------------------------------- the AST walk


@dataclass(frozen=True)
class _Module:
    name: str
    is_package: bool
    source: str
    tree: ast.Module


def _modules(root: Path) -> dict[str, _Module]:
    """Every module of the package under ``root``, by dotted name, parsed once."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        source = path.read_text(encoding="utf-8")
        found[name] = _Module(name, is_package, source, ast.parse(source, str(path)))
    return found


def _with_planted(modules: dict[str, _Module], name: str, line: str) -> dict[str, _Module]:
    """The parsed package with ``line`` appended to module ``name``."""
    module = modules[name]
    source = f"{module.source}\n{line}  # planted\n"
    return {**modules, name: replace(module, source=source, tree=ast.parse(source))}


@pytest.fixture(scope="module")
def house() -> dict[str, _Module]:
    return _modules(ROOT)


def _room(module: str) -> str:
    """securexport.<room>[...]: the room a module is in (a top-level module is its own)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _imports(module: _Module, modules: dict[str, _Module]) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for each import of the package anywhere in
    the module, including those inside functions and ``TYPE_CHECKING`` blocks."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    found: list[tuple[str, str, int]] = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    found.append((sub, "", node.lineno))
                else:
                    found.append((base, alias.name, node.lineno))
    return [item for item in found if item[0].split(".")[0] == PACKAGE]


def _graph(modules: dict[str, _Module]) -> dict[str, set[str]]:
    return {
        name: {imported for imported, _, _ in _imports(module, modules)} - {name}
        for name, module in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _private_crossings(modules: dict[str, _Module]) -> list[str]:
    """Each private name one room takes from another: imported by name, imported as a private
    module, or reached as an attribute of a module imported from another room."""
    found = []
    for name, module in modules.items():
        room = _room(name)
        for imported, imported_name, line in _imports(module, modules):
            if _room(imported) == room:
                continue
            # The room's own name may be private (_crypto); the names inside it may not.
            inside = imported.split(".")[2:] + ([imported_name] if imported_name else [])
            if any(_is_private(part) for part in inside):
                found.append(f"{name}:{line} imports {imported} {imported_name}".rstrip())
        foreign: dict[str, str] = {}  # a local name bound to another room's module
        attributes: list[ast.Attribute] = []
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                bound = [(a.asname, a.name) for a in node.names if a.asname]
            elif isinstance(node, ast.ImportFrom):
                bound = [(a.asname or a.name, f"{node.module}.{a.name}") for a in node.names]
            else:
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    attributes.append(node)
                continue
            for local, target in bound:
                if target in modules and _room(target) != room:
                    foreign[local] = target
        for node in attributes:
            assert isinstance(node.value, ast.Name)
            if node.value.id in foreign and _is_private(node.attr):
                found.append(f"{name}:{node.lineno} uses {foreign[node.value.id]}.{node.attr}")
    return found


def test_no_import_cycle_among_the_modules(house: dict[str, _Module]) -> None:
    graph = _graph(house)
    assert len(graph) > 50  # the walk saw the package
    assert _cycles(graph) == []


def test_no_private_name_crosses_a_room(house: dict[str, _Module]) -> None:
    assert _private_crossings(house) == []


def test_the_walk_finds_a_planted_cycle(house: dict[str, _Module]) -> None:
    # data.pipeline imports data.spool; importing it back closes a cycle, inside a function,
    # and inside one room, where the layers contract does not look.
    planted = _with_planted(
        house,
        "securexport.data.spool",
        "def _late() -> None:\n    from securexport.data import pipeline",
    )
    assert _cycles(_graph(planted)) == [["securexport.data.pipeline", "securexport.data.spool"]]


@pytest.mark.parametrize(
    ("module", "line", "evidence"),
    [
        pytest.param(
            "securexport.api.keys",
            "from securexport.home.keystore import _private_helper",
            "imports securexport.home.keystore _private_helper",
            id="by-name",
        ),
        pytest.param(
            "securexport.bundle.zipcheck",
            "from securexport.policy import approval as _a\n_a._private_helper",
            "uses securexport.policy.approval._private_helper",
            id="as-attribute",
        ),
        pytest.param(
            "securexport.cli.keys",
            "import securexport.api._internal",
            "imports securexport.api._internal",
            id="a-private-module",
        ),
    ],
)
def test_the_walk_finds_a_planted_private_import(
    house: dict[str, _Module], module: str, line: str, evidence: str
) -> None:
    found = _private_crossings(_with_planted(house, module, line))
    assert len(found) == 1, found
    assert evidence in found[0]
