"""The command line: a thin click client of :mod:`securexport.api`.

Each command parses, calls one library function, renders.  Errors are one line
(``securexport: error: …`` plus an optional ``securexport: hint: …``) with the exit codes of
DESIGN.md §7; a traceback only with ``-v``.  stdout stays empty on failure.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import click

from securexport import __version__
from securexport.cli.context import Context
from securexport.environment import Environment
from securexport.errors import Interrupted, SecurexportError, UsageError


def harden_process() -> None:
    """No core dumps, not ptrace-able by the same user (DESIGN.md §8.1)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_dumpable = 4
            libc.prctl(pr_set_dumpable, 0, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def _closed_pipe() -> int:
    """Whoever read stdout has gone (``securexport ledger list | head -1``): stop quietly with
    141, the status a shell reports for a process killed by SIGPIPE.

    Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError.  We catch it
    rather than restore SIGPIPE's default disposition: dying of the signal would skip the
    ``finally`` blocks that remove partial output.  stdout is pointed at /dev/null so that the
    interpreter's last flush of the unwritten buffer does not complain.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (embedded use)
        pass
    return 128 + signal.SIGPIPE


def _error(exc: SecurexportError) -> None:
    click.echo(f"securexport: error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"securexport: hint: {exc.hint}", err=True)


class _ClosedPipe(Exception):
    """BrokenPipeError on its way past click, which would turn it into exit 1."""


class SecurexportGroup(click.Group):
    """A click group that maps every failure to one line and an exit code (DESIGN.md §7)."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:  # --help and --version print while the arguments are parsed
            return super().make_context(*args, **kwargs)
        except BrokenPipeError as exc:
            raise _ClosedPipe from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _ClosedPipe from exc

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(args) if args is not None else sys.argv[1:]
        options = argv[: argv.index("--")] if "--" in argv else argv
        verbose = "-v" in options or "--verbose" in options
        _spread_global_options(self)
        harden_process()
        try:
            signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread (embedded use)
            pass
        code = 0
        try:
            result = super().main(
                argv, prog_name or "securexport", complete_var, standalone_mode=False, **extra
            )
            if isinstance(result, int):
                code = result
        except (BrokenPipeError, _ClosedPipe):
            code = _closed_pipe()
        except SecurexportError as exc:
            if verbose:
                traceback.print_exc()
            _error(exc)
            code = exc.exit_code
        except (click.exceptions.Abort, KeyboardInterrupt):
            _error(Interrupted("interrupted; partial output removed"))
            code = 130
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            _error(UsageError(exc.format_message()))
            code = 2
        except Exception as exc:  # noqa: BLE001  (a bug: one line, details only with -v)
            if verbose:
                traceback.print_exc()
            click.echo(
                f"securexport: error: unexpected {type(exc).__name__}; run with -v for details",
                err=True,
            )
            code = 1
        try:
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        except BrokenPipeError:
            code = _closed_pipe()
        sys.exit(code)


# The global options: (parameter declarations, click keywords, the Context field they set).
# They are the group's, and also every subcommand's (hidden there), so that they work before or
# after the command: `securexport keys show NAME --json`.
_GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any], str], ...] = (
    (
        ("--home",),
        {
            "type": click.Path(file_okay=False),
            "help": "State directory (default: $SECUREXPORT_HOME or the platform's user data dir).",
        },
        "home",
    ),
    (
        ("--json", "as_json"),
        {"is_flag": True, "help": "Print one JSON document on stdout."},
        "json",
    ),
    (
        ("-q", "--quiet"),
        {"is_flag": True, "help": "Print nothing on success, and no progress bar."},
        "quiet",
    ),
    (
        ("-v", "--verbose"),
        {"is_flag": True, "help": "Show tracebacks for unexpected errors."},
        "verbose",
    ),
    (
        ("--no-input",),
        {
            "is_flag": True,
            "help": "Never prompt; fail if a passphrase is needed and no file is set.",
        },
        "no_input",
    ),
    (
        ("--ledger", "ledger_url"),
        {
            "metavar": "URL",
            "help": "A shared team ledger (postgresql+psycopg://…, no password) instead of "
            "$SECUREXPORT_HOME/ledger.db.",
        },
        "ledger",
    ),
)


def _global_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for decls, kwargs, _ in reversed(_GLOBAL_OPTIONS):
        command = click.option(*decls, **kwargs)(command)
    return command


def _set_late(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A subcommand's copy of a global option: set the group's Context field when given."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        target = ctx.find_object(Context)
        if target is not None and value not in (None, False):
            setattr(target, field, value)

    return callback


def _spread_global_options(group: click.Group) -> None:
    """Give every subcommand, at any depth, hidden copies of the global options (once)."""
    for command in group.commands.values():
        names = {opt for p in command.params for opt in getattr(p, "opts", ())}
        for decls, kwargs, field in _GLOBAL_OPTIONS:
            flags = tuple(d for d in decls if d.startswith("-"))
            if names & set(flags):
                continue  # spread already (or the command's own: never shadowed)
            command.params.append(
                click.Option(
                    flags,
                    is_flag=kwargs.get("is_flag", False),
                    type=kwargs.get("type"),
                    hidden=True,
                    expose_value=False,
                    callback=_set_late(field),
                )
            )
        if isinstance(command, click.Group):
            _spread_global_options(command)


_EPILOG = """\b
Global options may also follow the command: securexport keys show NAME --json.
A FILE given as - is standard input (verify -, inspect -, approval check -) or standard
output (approval init -o -, ledger prove -o -); decrypted data never goes to stdout.

\b
Environment:
  SECUREXPORT_HOME             the state directory (overridden by --home)
  SECUREXPORT_PASSPHRASE_FILE  a 0600 file whose first line is the key files' passphrase
  SECUREXPORT_KEYSTORE         auto (default), keyring (the OS keyring only) or file
  NO_COLOR                     set and not empty: no colour (https://no-color.org)

\b
Files in $SECUREXPORT_HOME:
  config.toml       [ledger] url = the shared team ledger (like --ledger)
  allowed_signers   trusted approver keys (trust add … --role approver)
  trusted_logs      trusted ledger keys (trust add … --role ledger)
  keys/             passphrase-encrypted key files (without an OS keyring)
  ledger.db         the local ledger
  revocations/      imported revocations
  witness/          the data owner's mirrors of the ledgers it witnesses
"""


@click.group(
    cls=SecurexportGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_EPILOG,
)
@click.version_option(__version__, "--version", prog_name="securexport")
@_global_options
@click.pass_context
def cli(
    ctx: click.Context,
    home: str | None,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    no_input: bool,
    ledger_url: str | None,
) -> None:
    """Approved, minimised, encrypted and logged exports of personal data.

    \b
    Data owner:  keys new owner; approval init > a.toml; approval sign a.toml --as owner
    Exporter:    export a.toml --source sqlite:///db.sqlite --as analyst -o out.sxb
    Recipient:   verify out.sxb; decrypt out.sxb --as force -o extract/
    """
    # A program embedding the CLI may pass obj=<a callable like Environment.from_os> to
    # cli.main to build the environment itself (the test suite passes a cheaper key cost).
    make_env = ctx.obj if callable(ctx.obj) else Environment.from_os
    ctx.obj = Context(
        home=home,
        json=as_json,
        quiet=quiet,
        verbose=verbose,
        no_input=no_input,
        ledger=ledger_url,
        make_env=make_env,
    )


def _register() -> None:
    from securexport.cli import approval, bundle, completion, demo, keys, ledger, owner, trust

    for module in (keys, trust, approval, bundle, ledger, owner, demo, completion):
        module.register(cli)


_register()


def main(
    argv: list[str] | None = None, environment: Callable[..., Environment] | None = None
) -> NoReturn:
    """Run the command line and exit.  ``environment`` builds the Environment from the global
    options (default :meth:`Environment.from_os`)."""
    cli.main(argv, obj=environment)
    raise AssertionError("unreachable")


def entry() -> NoReturn:
    main()
