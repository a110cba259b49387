"""What every command gets: the global options, the environment they build, and rendering."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import click

from securexport.environment import Environment


@dataclass
class Context:
    home: str | None
    json: bool
    quiet: bool
    verbose: bool
    no_input: bool
    ledger: str | None = None
    make_env: Callable[..., Environment] = Environment.from_os

    def env(self) -> Environment:
        env = self.make_env(home=self.home, interactive=not self.no_input, ledger_url=self.ledger)
        if self.quiet:
            env.progress = False  # -q: nothing on stderr but errors and warnings
        return env

    def emit(self, document: Any, human: Callable[[], None]) -> None:
        """Render: one JSON document on stdout with --json, else the human text."""
        if self.json:
            click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))
        elif not self.quiet:
            human()


pass_context = click.make_pass_decorator(Context)

STREAM = Path("-")
"""A FILE argument ``-``: standard input (or, for ``-o``, standard output)."""


def stdin_or(path: Path) -> Path | BinaryIO:
    """``-`` as standard input's bytes (for the api to read), any other path as it is."""
    if path != STREAM:
        return path
    return sys.stdin.buffer
