"""trust: which approvers (and ledgers) this installation trusts."""

from __future__ import annotations

import click

from securexport import api
from securexport.cli.context import Context, pass_context


@click.group("trust")
def trust() -> None:
    """The trust root: approver keys (allowed_signers) and ledger keys.

    \b
    Example:
      securexport trust add home-office-iao owner.pub --role approver
    """


@trust.command("add")
@click.argument("name")
@click.argument("key")
@click.option("--role", type=click.Choice(["approver", "ledger"]), required=True)
@pass_context
def trust_add(ctx: Context, name: str, key: str, role: str) -> None:
    """Trust KEY (an 'ssh-ed25519 …' line, a ledger verifier key, or a file holding one) as NAME.

    \b
    Examples:
      securexport trust add home-office-iao owner.pub --role approver
      securexport trust add exporter-ledger "$(cat ledger.vkey)" --role ledger
    """
    added = api.trust_add(ctx.env(), name, key, role)
    ctx.emit(
        {
            "name": added.name,
            "role": added.role,
            "key": added.key_text,
            "fingerprint": added.fingerprint,
        },
        lambda: click.echo(f"trusted {added.name} as {added.role} ({added.fingerprint})"),
    )


@trust.command("list")
@pass_context
def trust_list(ctx: Context) -> None:
    """List trusted keys.

    \b
    Example:
      securexport --json trust list
    """
    items = api.trust_list(ctx.env())
    ctx.emit(
        [
            {"name": t.name, "role": t.role, "key": t.key_text, "fingerprint": t.fingerprint}
            for t in items
        ],
        lambda: click.echo("\n".join(f"{t.name}\t{t.role}\t{t.fingerprint}" for t in items)),
    )


@trust.command("remove")
@click.argument("name")
@pass_context
def trust_remove(ctx: Context, name: str) -> None:
    """Stop trusting NAME.

    \b
    Example:
      securexport trust remove home-office-iao
    """
    removed = api.trust_remove(ctx.env(), name)
    ctx.emit(
        {"removed": removed.name, "role": removed.role},
        lambda: click.echo(f"removed {removed.name} ({removed.role})"),
    )


def register(group: click.Group) -> None:
    group.add_command(trust)
