"""The documentation users rely on stays true: the CLI reference is current, every command's
help has an example, and the standard-tools procedure really opens a real bundle."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import subprocess
import zipfile
from pathlib import Path
from types import ModuleType

import click
import pytest

from securexport import api
from securexport.cli import cli
from securexport.home.keystore import KeyStore
from tests.support.world import TEST_LOG_N, World

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
STANDARD_TOOLS = DOCS / "open-with-standard-tools.md"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _leaf_commands(
    command: click.Command, path: tuple[str, ...] = ("securexport",)
) -> list[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        found = []
        for name in sorted(command.commands):
            found += _leaf_commands(command.commands[name], (*path, name))
        return found
    return [(" ".join(path), command)]


# --------------------------------------------------------------------------- CLI reference


def test_cli_md_is_what_the_generator_prints() -> None:
    expected = _generator().render(cli)
    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert current == expected, "docs/cli.md is stale: run `make docs-cli`"


def test_cli_md_covers_every_command() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for path, _command in _leaf_commands(cli):
        assert f"## {path}\n" in text


def test_every_command_help_has_an_example() -> None:
    missing = [
        path for path, command in _leaf_commands(cli) if "Example" not in (command.help or "")
    ]
    assert missing == [], f"commands whose --help has no example: {missing}"


def test_generator_renders_help_blocks_as_code() -> None:
    gen = _generator()
    text = gen.help_markdown("Do it.\n\n    \b\n    Example:\n      securexport x --y\n")
    assert text == "Do it.\n\n```\nExample:\n  securexport x --y\n```"


# --------------------------------------------------------------------------- documented commands


def _code_blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    """The contents of the fenced code blocks whose info string is one of ``languages``."""
    blocks: list[str] = []
    current: list[str] | None = None
    keep = False
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current, keep = [], line[3:].strip() in languages
            else:
                if keep:
                    blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _documented_commands() -> list[list[str]]:
    """Every `securexport …` command line in the README's and the quickstarts' sh blocks."""
    found = []
    for path in [ROOT / "README.md", *sorted(DOCS.glob("quickstart-*.md"))]:
        for block in _code_blocks(path.read_text(encoding="utf-8"), ("sh", "bash", "console")):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ")
                if not line.startswith("securexport "):
                    continue
                words = shlex.split(line, comments=True)[1:]
                stop = [i for i, w in enumerate(words) if w in ("|", ">", "<", "&&", ";")]
                found.append(words[: stop[0]] if stop else words)
    return found


def _options(command: click.Command) -> dict[str, click.Option]:
    return {
        name: p
        for p in command.params
        if isinstance(p, click.Option)
        for name in (*p.opts, *p.secondary_opts)
    } | {"-h": None, "--help": None}  # type: ignore[dict-item]


def test_documented_commands_match_the_current_cli() -> None:
    """Each documented command line names real commands, options and required options."""
    commands = _documented_commands()
    assert len(commands) >= 20
    for words in commands:
        line = "securexport " + " ".join(words)
        i = 0
        command: click.Command = cli
        while i < len(words) and words[i].startswith("-"):  # global options
            option = _options(cli).get(words[i])
            assert words[i] in _options(cli), f"unknown global option {words[i]}: {line}"
            i += 1 if option is None or option.is_flag else 2
        while isinstance(command, click.Group):
            assert i < len(words), f"no command: {line}"
            sub = command.commands.get(words[i])
            assert sub is not None, f"unknown command {words[i]!r}: {line}"
            command, i = sub, i + 1
        given = {w.split("=", 1)[0] for w in words[i:] if w.startswith("-") and w != "-"}
        known = _options(command)
        assert given <= set(known), f"unknown option {sorted(given - set(known))}: {line}"
        for p in command.params:
            if isinstance(p, click.Option) and p.required:
                assert set(p.opts) & given, f"missing required {p.opts[-1]}: {line}"


# --------------------------------------------------------------------------- standard tools


def _procedure() -> str:
    """The ```bash blocks of docs/open-with-standard-tools.md, in order, as one script."""
    blocks = _code_blocks(STANDARD_TOOLS.read_text(encoding="utf-8"), ("bash",))
    assert len(blocks) >= 6
    return "set -euo pipefail\n" + "\n".join(blocks)


def _run_procedure(
    world: World, bundle: Path, work: Path, id_file: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work.parent),
        "LC_ALL": "C.UTF-8",
        "BUNDLE": str(bundle),
        "AGE_IDENTITY": str(id_file),
        "ALLOWED_SIGNERS": str(world.recipient.home.allowed_signers),
        "APPROVER": "owner",
        "EXPORTER_SSH": world.ids["exporter"].signing_key.to_line(),
        "WORK": str(work),
    }
    return subprocess.run(
        ["bash", "-c", _procedure()],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.tools
def test_standard_tools_procedure_opens_a_real_bundle(world: World, tmp_path: Path) -> None:
    result = world.export()
    identity = KeyStore(world.recipient, scrypt_log_n=TEST_LOG_N).age_identity("force")
    id_file = tmp_path / "id.txt"
    id_file.write_text(identity + "\n")
    id_file.chmod(0o600)

    work = tmp_path / "work"
    run = _run_procedure(world, result.bundle, work, id_file)
    assert run.returncode == 0, run.stderr + run.stdout
    assert 'Good "securexport-approval-v1" signature for owner' in run.stdout
    assert 'Good "securexport-manifest-v1" signature' in run.stdout
    assert "payload.zip: OK" in run.stdout and "payload.key.age: OK" in run.stdout
    assert "data/offenders.csv: HMAC OK" in run.stdout

    # What 7z extracted is byte for byte what securexport decrypt writes.
    ours = tmp_path / "ours"
    api.decrypt(world.recipient, result.bundle, "force", ours)
    extracted = work / "data" / "offenders.csv"
    assert extracted.read_bytes() == (ours / "data" / "offenders.csv").read_bytes()
    assert extracted.read_bytes().startswith(b"offender,birth_year,district,convictions,")

    # The manifest's sha256 values are plain SHA-256 over the unzipped members.
    unpacked = work / "bundle"
    manifest = json.loads((unpacked / "manifest.json").read_bytes())
    payload = (unpacked / "payload.zip").read_bytes()
    assert hashlib.sha256(payload).hexdigest() == manifest["payload"]["sha256"]
    assert len(payload) == manifest["payload"]["bytes"]
    key_file = (unpacked / "payload.key.age").read_bytes()
    assert hashlib.sha256(key_file).hexdigest() == manifest["key_file"]["sha256"]
    with zipfile.ZipFile(result.bundle) as zf:
        for name in zf.namelist():
            assert zf.read(name) == (unpacked / name).read_bytes()
            assert zf.getinfo(name).date_time == (1980, 1, 1, 0, 0, 0)
            assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED


@pytest.mark.tools
def test_standard_tools_procedure_stops_on_a_changed_manifest(world: World, tmp_path: Path) -> None:
    result = world.export()
    identity = KeyStore(world.recipient, scrypt_log_n=TEST_LOG_N).age_identity("force")
    id_file = tmp_path / "id.txt"
    id_file.write_text(identity + "\n")
    id_file.chmod(0o600)

    tampered = tmp_path / "tampered.sxb"
    with zipfile.ZipFile(result.bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "manifest.json":
                data = data.replace(b'"written":', b'"written":1', 1)
            dst.writestr(info, data)

    run = _run_procedure(world, tampered, tmp_path / "work", id_file)
    assert run.returncode != 0
    assert "securexport-manifest-v1" not in run.stdout  # the manifest signature check failed
    assert not (tmp_path / "work" / "data").exists()  # nothing was decrypted
