"""ledger: the tamper-evident register of exports (filled in with the ledger module)."""

from __future__ import annotations

import click


@click.group("ledger")
def ledger() -> None:
    """The export register: list, show, verify, checkpoint, prove."""


def register(group: click.Group) -> None:
    group.add_command(ledger)
