"""What every command gets: the global options, the environment they build, and rendering."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
        return self.make_env(home=self.home, interactive=not self.no_input, ledger_url=self.ledger)

    def emit(self, document: Any, human: Callable[[], None]) -> None:
        """Render: one JSON document on stdout with --json, else the human text."""
        if self.json:
            click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))
        elif not self.quiet:
            human()


pass_context = click.make_pass_decorator(Context)
