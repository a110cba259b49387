"""ledger: the tamper-evident register of exports."""

from __future__ import annotations

from pathlib import Path

import click

from securexport.cli import Context, pass_context


@click.group("ledger")
def ledger() -> None:
    """The export register: every export, signed and logged in a Merkle tree.

    \b
    Example:
      securexport ledger list
      securexport ledger verify
    """


@ledger.command("key")
@pass_context
def ledger_key(ctx: Context) -> None:
    """Print this ledger's verifier key (for approvals and recipients' trust stores).

    \b
    Example:
      securexport ledger key > ledger.vkey
    """
    from securexport.api import ledger_verifier_key

    key = ledger_verifier_key(ctx.env())
    ctx.emit({"verifier_key": key}, lambda: click.echo(key))


@ledger.command("list")
@click.option("--start", type=int, default=0, show_default=True, help="First entry index.")
@click.option("--limit", type=int, default=None, help="At most this many entries.")
@pass_context
def ledger_list(ctx: Context, start: int, limit: int | None) -> None:
    """List logged exports.

    \b
    Example:
      securexport --json ledger list --start 100 --limit 10
    """
    from securexport.api import ledger_entries

    entries = ledger_entries(ctx.env(), start=start, limit=limit)

    def human() -> None:
        for e in entries:
            click.echo(
                f"{e['index']:>6}  {e['created_at']}  {e['approval_id']} run {e['run']}  "
                f"{e.get('rows')} rows  by {e.get('exporter')}  to {', '.join(e.get('recipients') or [])}  "
                f"{e['export_id']}"
            )
        if not entries:
            click.echo("(no exports logged)")

    ctx.emit(entries, human)


@ledger.command("show")
@click.argument("entry")
@pass_context
def ledger_show(ctx: Context, entry: str) -> None:
    """Show one entry (by index or export id) with its manifest.

    \b
    Example:
      securexport ledger show 0
    """
    import json

    from securexport.api import ledger_show

    doc = ledger_show(ctx.env(), entry)
    ctx.emit(doc, lambda: click.echo(json.dumps(doc, indent=2, ensure_ascii=False)))


@ledger.command("verify")
@pass_context
def ledger_verify(ctx: Context) -> None:
    """Recompute the tree, check every checkpoint, signature and limit. Exits 5 on the first bad entry.

    \b
    Example:
      securexport ledger verify
    """
    from securexport.api import ledger_verify

    report = ledger_verify(ctx.env())
    ctx.emit(
        report,
        lambda: click.echo(
            f"ledger OK: {report['entries_checked']} entries, {report['checkpoints_checked']} checkpoints"
            + (f", root {report['root_hash'][:16]}…" if report.get("root_hash") else "")
        ),
    )


@ledger.command("checkpoint")
@pass_context
def ledger_checkpoint(ctx: Context) -> None:
    """Print the newest signed checkpoint (a C2SP signed note).

    \b
    Example:
      securexport ledger checkpoint > checkpoint.txt
    """
    from securexport.api import ledger_checkpoint

    note = ledger_checkpoint(ctx.env())
    ctx.emit({"checkpoint": note}, lambda: click.echo(note, nl=False))


@ledger.command("prove")
@click.argument("export_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the receipt here.",
)
@pass_context
def ledger_prove(ctx: Context, export_id: str, output: Path | None) -> None:
    """Print a fresh inclusion receipt for EXPORT_ID against the newest checkpoint.

    \b
    Example:
      securexport ledger prove 0b8f…-… -o receipt.tlog
    """
    from securexport.api import ledger_prove

    receipt = ledger_prove(ctx.env(), export_id)
    if output is not None:
        from securexport.fsutil import atomic_write

        atomic_write(output, receipt, mode=0o644)
    ctx.emit(
        {"export_id": export_id, "receipt": receipt.decode()},
        lambda: (
            click.echo(receipt.decode(), nl=False)
            if output is None
            else click.echo(f"wrote {output}")
        ),
    )


def register(group: click.Group) -> None:
    group.add_command(ledger)
