"""The command line: a thin click client of :mod:`securexport.api`.

Each command parses, calls one library function, renders.  Errors are one line
(``securexport: error: …`` plus an optional ``securexport: hint: …``) with the exit codes of
DESIGN.md §7; a traceback only with ``-v``.  stdout stays empty on failure.
"""

from __future__ import annotations

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


def _error(exc: SecurexportError) -> None:
    click.echo(f"securexport: error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"securexport: hint: {exc.hint}", err=True)


class SecurexportGroup(click.Group):
    """A click group that maps every failure to one line and an exit code (DESIGN.md §7)."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(args) if args is not None else sys.argv[1:]
        verbose = "-v" in argv or "--verbose" in argv
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
        sys.exit(code)


@click.group(
    cls=SecurexportGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="securexport")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar=None,
    help="State directory (default: $SECUREXPORT_HOME or the platform's user data dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.option(
    "--no-input",
    is_flag=True,
    help="Never prompt; fail if a passphrase is needed and no file is set.",
)
@click.option(
    "--ledger",
    "ledger_url",
    metavar="URL",
    help="A shared team ledger (postgresql+psycopg://…, no password) instead of $SECUREXPORT_HOME/ledger.db.",
)
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
