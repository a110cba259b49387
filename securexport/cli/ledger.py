"""ledger: the tamper-evident register of exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from securexport import api
from securexport.cli.context import STREAM, Context, pass_context


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
    key = api.ledger_verifier_key(ctx.env())
    ctx.emit({"verifier_key": key}, lambda: click.echo(key))


@ledger.command("list")
@click.option(
    "--start",
    type=click.IntRange(0, 2**62),
    default=0,
    show_default=True,
    help="First entry index.",
)
@click.option(
    "--limit", type=click.IntRange(0, 2**62), default=None, help="At most this many entries."
)
@pass_context
def ledger_list(ctx: Context, start: int, limit: int | None) -> None:
    """List logged exports.

    \b
    Example:
      securexport --json ledger list --start 100 --limit 10
    """
    entries = api.ledger_entries(ctx.env(), start=start, limit=limit)

    def human() -> None:
        for e in entries:
            click.echo(
                f"{e.index:>6}  {e.created_at}  {e.approval_id} run {e.run}  "
                f"{e.rows} rows  by {e.exporter}  to {', '.join(e.recipients or [])}  "
                f"{e.export_id}" + ("" if e.bundle == "written" else f"  bundle {e.bundle}")
            )
        if not entries:
            click.echo("(no exports logged)")

    ctx.emit([e.to_json() for e in entries], human)


@ledger.command("show")
@click.argument("entry")
@pass_context
def ledger_show(ctx: Context, entry: str) -> None:
    """Show one entry (by index or export id) with its manifest.

    \b
    Example:
      securexport ledger show 0
    """
    doc = api.ledger_show(ctx.env(), entry).to_json()
    ctx.emit(doc, lambda: click.echo(json.dumps(doc, indent=2, ensure_ascii=False)))


@ledger.command("verify")
@pass_context
def ledger_verify(ctx: Context) -> None:
    """Recompute the tree, check every checkpoint, signature and limit. Exits 5 on the first bad entry.

    \b
    Example:
      securexport ledger verify
    """
    report = api.ledger_verify(ctx.env())

    def human() -> None:
        click.echo(
            f"ledger OK: {report.entries_checked} entries, {report.checkpoints_checked} checkpoints"
            + (f", root {report.root_hash.hex()[:16]}…" if report.root_hash is not None else "")
        )
        if report.checkpoint_key == "pinned":
            click.echo(
                "note: checkpoints were checked against the key the ledger records; trust the "
                "ledger's key (`trust add NAME KEY --role ledger`) to hold it to an outside copy"
            )
        for m in report.missing_bundles:
            click.echo(
                f"note: entry {m.index} (run {m.run}, export {m.export_id}) has no "
                "bundle: its export was interrupted after the entry was committed"
            )

    ctx.emit(report.to_json(), human)


@ledger.command("checkpoint")
@pass_context
def ledger_checkpoint(ctx: Context) -> None:
    """Print the newest signed checkpoint (a C2SP signed note).

    \b
    Example:
      securexport ledger checkpoint > checkpoint.txt
    """
    note = api.ledger_checkpoint(ctx.env())
    ctx.emit({"checkpoint": note}, lambda: click.echo(note, nl=False))


@ledger.command("prove")
@click.argument("export_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the receipt here (default, or -: stdout).",
)
@pass_context
def ledger_prove(ctx: Context, export_id: str, output: Path | None) -> None:
    """Print a fresh inclusion receipt for EXPORT_ID against the newest checkpoint.

    \b
    Example:
      securexport ledger prove 0b8f…-… -o receipt.tlog
    """
    if output == STREAM:
        output = None
    receipt = api.ledger_prove(ctx.env(), export_id, output)
    ctx.emit(
        {"export_id": export_id, "receipt": receipt.decode()},
        lambda: (
            click.echo(receipt.decode(), nl=False)
            if output is None
            else click.echo(f"wrote {output}")
        ),
    )


@ledger.command("witness-key")
@pass_context
def ledger_witness_key(ctx: Context) -> None:
    """Print the data owner's witness key (for approvals' [witness] key), creating it once.

    \b
    Example:
      securexport ledger witness-key
    """
    key = api.witness_verifier_key(ctx.env())
    ctx.emit({"witness_key": key}, lambda: click.echo(key))


@ledger.command("sync")
@click.option("--since", type=int, required=True, help="The size the owner's witness last saw.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The sync file to write (send it to the data owner).",
)
@pass_context
def ledger_sync(ctx: Context, since: int, output: Path) -> None:
    """Exporter: write the entries since SIZE, the newest checkpoint and a consistency proof.

    \b
    Example:
      securexport ledger sync --since 0 -o ledger-sync.json
    """
    written = api.write_sync(ctx.env(), since, output)
    ctx.emit(
        written.to_json(),
        lambda: click.echo(f"wrote {output}: entries {since}..{written.size - 1}"),
    )


@ledger.command("witness")
@click.argument("sync_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--log", "log_name", required=True, help="The ledger's name in the trust store.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Cosignature file to write (default: SYNC_FILE with .cosig).",
)
@click.option(
    "--approval",
    "approvals",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An approval (FILE.sig beside it) missing from the sync file; repeatable.",
)
@click.option(
    "--max-delay-days",
    type=click.IntRange(1, 3650),
    default=31,
    show_default=True,
    help="Refuse exports dated longer ago than this (backdating).",
)
@pass_context
def ledger_witness(
    ctx: Context,
    sync_file: Path,
    log_name: str,
    output: Path | None,
    approvals: tuple[Path, ...],
    max_delay_days: int,
) -> None:
    """Data owner: check a sync file against what you saw before and every new export
    against its approval; if all is well, cosign the checkpoint.  Exit 5 if the log was rolled
    back or forked, 3 if an export broke its approval.

    \b
    Example:
      securexport ledger witness ledger-sync.json --log contractor -o ledger.cosig
    """
    out = output or sync_file.with_name(sync_file.stem + ".cosig")
    report = api.witness(
        ctx.env(),
        sync_file,
        log_name,
        out,
        approvals=approvals,
        max_delay=timedelta(days=max_delay_days),
    )
    ctx.emit(
        report.to_json(),
        lambda: click.echo(
            f"cosigned {log_name} at size {report.new_size} "
            f"({report.new_entries} new exports checked): wrote {out}"
        ),
    )


@ledger.command("cosign")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("cosig_file", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def ledger_cosign(ctx: Context, bundle: Path, cosig_file: Path) -> None:
    """Exporter: add the owner's cosigned checkpoint to BUNDLE (as receipt.cosig).

    \b
    Example:
      securexport ledger cosign out.sxb ledger.cosig
    """
    added = api.cosign_bundle(ctx.env(), bundle, cosig_file)
    ctx.emit(added.to_json(), lambda: click.echo(f"added the witness cosignature to {bundle}"))


@ledger.command("breach")
@click.option("--export-id", "export_ids", multiple=True, help="A leaked export; repeatable.")
@click.option(
    "--bundle",
    "bundles",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A leaked bundle (its export id is read from it); repeatable.",
)
@click.option("--log", "log_name", help="Query your witness mirror of this ledger (data owner).")
@click.option("--as", "as_name", help="Your identity: opens the sealed entity lists (data owner).")
@click.option(
    "--candidates",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file of entity ids, one a line, to name the people in the leaked exports.",
)
@click.option(
    "--recipient",
    help="Every export sent to this recipient or auditor (a name or age1… key): a lost laptop.",
)
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ"]),
    help="With --recipient: exports made on or after this UTC date (YYYY-MM-DD).",
)
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ"]),
    help="With --recipient: exports made before the end of this UTC date (YYYY-MM-DD).",
)
@pass_context
def ledger_breach(
    ctx: Context,
    export_ids: tuple[str, ...],
    bundles: tuple[Path, ...],
    log_name: str | None,
    as_name: str | None,
    candidates: Path | None,
    recipient: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Breach response: which exports, approvals, recipients, how many people, and — with the
    owner's key and candidate ids — which people.

    \b
    Examples:
      securexport ledger breach --bundle lost.sxb --log contractor --as owner --candidates ids.txt
      securexport ledger breach --recipient wmp-iom --since 2026-10-01 --log contractor
    """
    if until is not None and until.hour == until.minute == until.second == 0:
        until += timedelta(days=1, seconds=-1)  # a date means the whole of that day
    report = api.breach_report(
        ctx.env(),
        export_ids=export_ids,
        bundles=bundles,
        log=log_name,
        as_name=as_name,
        candidates=candidates,
        recipient=recipient,
        since=None if since is None else since.replace(tzinfo=UTC),
        until=None if until is None else until.replace(tzinfo=UTC),
    )
    doc = report.to_json()

    def human() -> None:
        click.echo(f"exports:    {len(report.exports)}")
        click.echo(f"approvals:  {', '.join(report.approvals)}")
        click.echo(
            "recipients: " + ", ".join(f"{r['name']} ({r['role']})" for r in report.recipients)
        )
        click.echo(f"people:     at most {report.people_at_most}")
        if report.named is not None:
            click.echo(f"named:      {len(report.named)} of the candidates")
            for name in report.named:
                click.echo(f"  {name}")
        if report.missing_lists:
            click.echo(f"no sealed list for: {', '.join(report.missing_lists)}")

    ctx.emit(doc, human)


def register(group: click.Group) -> None:
    group.add_command(ledger)
