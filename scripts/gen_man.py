"""Write man/man1/*.1: one man page per securexport command and group, from click itself.

    .venv/bin/python scripts/gen_man.py man/man1

The pages are committed and installed with the package into ``<prefix>/share/man/man1``
(pyproject's ``[tool.setuptools.data-files]``), where ``man securexport-export`` finds them
when ``<prefix>/bin`` is on PATH.  tests/system/test_man.py fails when a page is stale.  The
output depends only on the command tree and the version (no date, no terminal width).

Not click-man: with click 8.5 it copies help text into roff unescaped (click's ``\\b`` marker
as a raw backspace, a trailing ``\\`` joining two example lines, a leading ``.`` read as a
request), stamps the build date, and has no ENVIRONMENT, FILES or EXIT STATUS section.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click

SCRIPTS = Path(__file__).resolve().parent


def _cli_docs() -> ModuleType:
    """scripts/gen_cli_docs.py, for the one walk of the command tree both generators use."""
    spec = importlib.util.spec_from_file_location("gen_cli_docs", SCRIPTS / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The installation's environment and files: (name, what it is), for securexport(1).
ENVIRONMENT = [
    (
        "SECUREXPORT_HOME",
        "The state directory (trust store, keys, ledger, config), when --home is not given. "
        "Default: the platform's user data directory (on Linux ~/.local/share/securexport).",
    ),
    (
        "SECUREXPORT_PASSPHRASE_FILE",
        "A file (mode 0600) whose first line is the passphrase of the key files. Without it "
        "the passphrase is asked on the terminal; a passphrase is never taken from an option "
        "or from an environment value.",
    ),
    (
        "SECUREXPORT_KEYSTORE",
        "Where private keys are kept: auto (the default: the desktop keyring if a secure one "
        "is available, else passphrase-encrypted key files), keyring (the keyring or an "
        "error), or file (key files only).",
    ),
    ("NO_COLOR", "When set to anything, no colour or terminal styling in the output."),
]

FILES = [
    (
        "$SECUREXPORT_HOME/config.toml",
        'Settings: [ledger] url = "postgresql+psycopg://…", a '
        "shared team ledger instead of ledger.db.",
    ),
    (
        "$SECUREXPORT_HOME/allowed_signers",
        "The approvers this installation trusts, in "
        "OpenSSH allowed_signers format (securexport trust add NAME KEY --role approver).",
    ),
    (
        "$SECUREXPORT_HOME/trusted_logs",
        "The ledgers it trusts: one NAME KEY line per "
        "verifier key (securexport trust add NAME KEY --role ledger).",
    ),
    (
        "$SECUREXPORT_HOME/keys/",
        "Private keys, each an age file encrypted with the passphrase "
        "(scrypt 2^18) when no keyring is used: NAME.age-key.age, NAME.ssh-key.age, "
        "pseudonym/KEY_ID.key.age, ledger.ssh-key.age, witness/ssh-key.age.",
    ),
    (
        "$SECUREXPORT_HOME/ledger.db",
        "The export ledger (SQLite): every export, its signed manifest and the signed checkpoints.",
    ),
    (
        "$SECUREXPORT_HOME/revocations/",
        "Revocations imported with securexport revoke import, one SHA256.json each.",
    ),
    (
        "$SECUREXPORT_HOME/witness/",
        "The data owner's mirrors of the ledgers it cosigned, one ORIGIN.db each.",
    ),
]

SEE_ALSO_ROOT = ["age(1)", "ssh-keygen(1)", "sqlite3(1)"]


# --------------------------------------------------------------------------- roff


def esc(text: str) -> str:
    """Text as roff: backslashes and hyphen-minus escaped (an option stays a copyable
    ``-``), and no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n")
    )


def bold(text: str) -> str:
    return f"\\fB{esc(text)}\\fR"


def page_name(command_path: str) -> str:
    return command_path.replace(" ", "-")


def help_roff(text: str) -> list[str]:
    """Click help text as roff paragraphs; ``\\b`` paragraphs (verbatim in click) unfilled."""
    out: list[str] = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines = paragraph.split("\n")
        if lines and lines[0].strip() == "\b":
            body = textwrap.dedent("\n".join(lines[1:])).strip("\n")
            out += [".PP", ".nf", ".RS 4", esc(body), ".RE", ".fi"]
        elif paragraph.strip():
            out += [".PP", esc(" ".join(line.strip() for line in lines if line.strip()))]
    return out


def _definitions(items: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for term, text in items:
        out += [".TP", bold(term), esc(text)]
    return out


def exit_statuses() -> list[tuple[str, str]]:
    """0, 1 and each exit code of securexport.errors, with the first class that has it."""
    from securexport import errors

    found = {0: "Success.", 1: "Unexpected: a bug (run again with -v for the traceback)."}
    for _name, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.SecurexportError) and cls is not errors.SecurexportError:
            doc = (cls.__doc__ or "").strip().split("\n")[0]
            code = cls.exit_code
            if code not in found or cls.__mro__[1] is errors.SecurexportError:
                found[code] = doc
    return [(str(code), found[code]) for code in sorted(found)]


# --------------------------------------------------------------------------- pages


def render_page(command: click.Command, ctx: click.Context, version: str) -> str:
    path = ctx.command_path
    name = page_name(path)
    short = command.get_short_help_str(limit=200).rstrip(".")
    lines = [
        f'.TH "{esc(name.upper())}" "1" "" "securexport {esc(version)}" "securexport manual"',
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{esc(name)} \\- {esc(short)}",
        ".SH SYNOPSIS",
        f".B {esc(path)}",
        esc(" ".join(command.collect_usage_pieces(ctx))),
        ".SH DESCRIPTION",
        *help_roff(command.help or short),
    ]
    if command.epilog:
        lines += help_roff(command.epilog)
    options = [
        record
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden
        for record in [param.get_help_record(ctx)]
        if record is not None
    ]
    # Not get_params' help option: click makes it once per command, with the option names of
    # whichever context asked first (another generator's, in the test suite).
    options.append((", ".join(ctx.help_option_names), "Show this message and exit."))
    if options:
        lines += [".SH OPTIONS", *_definitions(options)]
    if ctx.parent is not None:
        lines += [
            ".PP",
            esc(
                "The global options (--home, --json, -q, -v, --no-input, --ledger), the "
                "environment and the files are in securexport(1)."
            ),
        ]
    if isinstance(command, click.Group):
        lines.append(".SH COMMANDS")
        for sub_name, sub in sorted(command.commands.items()):
            if sub.hidden:
                continue
            lines += [
                ".TP",
                bold(sub_name),
                esc(sub.get_short_help_str(limit=200)),
                f"See {bold(page_name(f'{path} {sub_name}'))}(1).",
            ]
    if ctx.parent is None:
        lines += [".SH ENVIRONMENT", *_definitions(ENVIRONMENT)]
        lines += [".SH FILES", *_definitions(FILES)]
        lines += [".SH EXIT STATUS", *_definitions(exit_statuses())]
        see_also = SEE_ALSO_ROOT
    else:
        parents = []
        parent: click.Context | None = ctx.parent
        while parent is not None:
            parents.append(page_name(parent.command_path) + "(1)")
            parent = parent.parent
        see_also = parents
    lines += [".SH SEE ALSO", ", ".join(bold(p[:-3]) + p[-3:] for p in see_also)]
    return "\n".join(lines) + "\n"


def render_pages(root: click.Command, version: str) -> dict[str, str]:
    """``{"securexport-export.1": roff, …}``: every command and group, hidden ones left out."""
    walk = _cli_docs().walk
    # The root's context_settings (-h beside --help) reach every page, as they reach --help.
    top = click.Context(root, info_name="securexport", **root.context_settings)
    pages: dict[str, str] = {}
    for command, ctx in walk(root, top):
        pages[page_name(ctx.command_path) + ".1"] = render_page(command, ctx, version)
    return pages


def _pages() -> Iterator[tuple[str, str]]:
    from securexport import __version__
    from securexport.cli import cli

    yield from sorted(render_pages(cli, __version__).items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path, help="where to write the pages (man/man1)")
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    wanted = dict(_pages())
    for stale in sorted(args.directory.glob("securexport*.1")):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (args.directory / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} pages to {args.directory}", file=sys.stderr)


if __name__ == "__main__":
    main()
