"""export, inspect, verify, decrypt: the bundle's life."""

from __future__ import annotations

from pathlib import Path

import click

from securexport import api
from securexport.cli.context import Context, pass_context, stdin_or

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("export")
@click.argument("approval", type=_FILE)
@click.option(
    "--source", required=True, help="SQLAlchemy URL, opened read-only (no password inside)."
)
@click.option("--as", "as_name", required=True, help="Your exporter identity.")
@click.option(
    "-o", "--output", required=True, type=_FILE, help="The bundle to write (must not exist)."
)
@pass_context
def export_cmd(ctx: Context, approval: Path, source: str, as_name: str, output: Path) -> None:
    """Run a signed APPROVAL against --source into an encrypted, signed, logged bundle.

    \b
    Example:
      securexport export ppo-extract.toml --source sqlite:///offenders.db \\
          --as pa-analyst -o ppo-2026-06.sxb
    """
    result = api.export(ctx.env(), approval, source, as_name, output)
    doc = {
        "bundle": str(result.bundle),
        "export_id": result.export_id,
        "run": result.run,
        "rows_written": result.rows_written,
        "matching_rows": result.matching_rows,
        "suppressed_rows": result.suppressed_rows,
        "k_achieved": result.k_achieved,
        "payload_sha256": result.payload_sha256,
        "ledger_index": result.ledger_index,
    }
    ctx.emit(
        doc,
        lambda: click.echo(
            f"wrote {result.bundle}: {result.rows_written} rows "
            f"({result.matching_rows} matched, {result.suppressed_rows} suppressed, k achieved {result.k_achieved}); "
            f"run {result.run}; ledger entry {result.ledger_index}; export {result.export_id}"
        ),
    )


@click.command("inspect")
@click.argument("bundle", type=_FILE)
@pass_context
def inspect_cmd(ctx: Context, bundle: Path) -> None:
    """Show a bundle's manifest (no keys needed, nothing verified: use verify).

    BUNDLE may be - (standard input).

    \b
    Example:
      securexport inspect ppo-2026-06.sxb
    """
    inspected = api.inspect(stdin_or(bundle))
    manifest = inspected.manifest

    def human() -> None:
        click.echo("(unverified — run `securexport verify` to check signatures and hashes)")
        click.echo(f"export {manifest.export_id} created {manifest.created_at}")
        click.echo(
            f"approval {manifest.approval_id} run {manifest.run}, signed by {inspected.approval_signer}"
        )
        click.echo(
            f"exporter {manifest.operator_name} ({inspected.exporter_fingerprint}) on {inspected.exporter_host}"
        )
        click.echo(
            f"rows: {manifest.rows_written} written of {inspected.matching_rows} matching; k achieved {inspected.k_achieved}"
        )
        for col in inspected.columns:
            click.echo(f"  column {col.name} <- {col.source} [{col.transform}]")
        click.echo("recipients: " + ", ".join(name for name, _ in manifest.recipients))
        if manifest.auditors:
            click.echo("auditors: " + ", ".join(name for name, _ in manifest.auditors))

    ctx.emit(inspected.to_json(), human)


@click.command("verify")
@click.argument("bundle", type=_FILE)
@pass_context
def verify_cmd(ctx: Context, bundle: Path) -> None:
    """Verify a bundle without decrypting: signatures, trust, approval, hashes, receipt.

    Exits 5 if anything fails.  BUNDLE may be - (standard input).

    \b
    Example:
      securexport verify ppo-2026-06.sxb
      curl -s https://files.example/ppo-2026-06.sxb | securexport verify -
    """
    verdict = api.verify(ctx.env(), stdin_or(bundle))

    def human() -> None:
        click.echo(f"OK: export {verdict.export_id} of approval {verdict.approval_id}")
        click.echo(
            f"  approved by {verdict.approver}; exported by {verdict.exporter} at {verdict.created_at}"
        )
        click.echo(f"  {verdict.rows} rows for {', '.join(verdict.recipients)}")
        if verdict.auditors:
            click.echo(f"  auditors: {', '.join(verdict.auditors)}")
        for check in verdict.checks:
            click.echo(f"  checked: {check}")

    ctx.emit(verdict.to_json(), human)


@click.command("decrypt")
@click.argument("bundle", type=_FILE)
@click.option("--as", "as_name", required=True, help="Your recipient identity.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to create (must not exist, or be empty; never - : no plaintext on stdout).",
)
@pass_context
def decrypt_cmd(ctx: Context, bundle: Path, as_name: str, output: Path) -> None:
    """Verify everything, then decrypt into DIR (files 0600), checking every byte.

    \b
    Example:
      securexport decrypt ppo-2026-06.sxb --as wmp-iom -o extract/
    """
    result = api.decrypt(ctx.env(), bundle, as_name, output)
    ctx.emit(
        {
            "directory": str(result.directory),
            "files": [str(f) for f in result.files],
            "rows": result.rows,
            "verified": result.verdict.to_json(),
        },
        lambda: click.echo(
            f"verified and decrypted {result.rows} rows into {result.directory}: "
            + ", ".join(str(f) for f in result.files)
        ),
    )


def register(group: click.Group) -> None:
    for command in (export_cmd, inspect_cmd, verify_cmd, decrypt_cmd):
        group.add_command(command)
