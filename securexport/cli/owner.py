"""revoke: the data owner's revocations of approvals, exporter keys and recipients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from securexport import api
from securexport.cli.context import Context, pass_context

_OUT = click.Path(dir_okay=False, path_type=Path)


@click.group("revoke")
def revoke() -> None:
    """Revoke an approval, an exporter key or a recipient (signed by an approver).

    \b
    Example:
      securexport revoke approval APR-2026-0042 --as owner -o apr42.revoked.json
      securexport revoke import apr42.revoked.json
    """


def _make(
    ctx: Context, kind: str, target: str, as_name: str, output: Path, reason: str | None
) -> None:
    revocation = api.revoke(ctx.env(), kind, target, as_name, output, reason=reason)
    doc: dict[str, Any] = {
        **revocation.to_json(),
        "output": str(output),
        "signature": str(output) + ".sig",
    }
    ctx.emit(
        doc,
        lambda: click.echo(f"revoked {revocation.target()}: wrote {output} and {output}.sig"),
    )


_as = click.option("--as", "as_name", required=True, help="The approver identity that signs.")
_output = click.option(
    "-o", "--output", type=_OUT, required=True, help="Revocation file to write (and FILE.sig)."
)
_reason = click.option("--reason", help="Why (recorded in the signed revocation).")


@revoke.command("approval")
@click.argument("target")
@_as
@_output
@_reason
@pass_context
def revoke_approval(
    ctx: Context, target: str, as_name: str, output: Path, reason: str | None
) -> None:
    """Revoke an approval by ID (every version) or by the SHA-256 of its file (one version).

    \b
    Example:
      securexport revoke approval APR-2026-0042 --as owner -o apr42.revoked.json
    """
    _make(ctx, "approval", target, as_name, output, reason)


@revoke.command("exporter")
@click.argument("sshkey")
@_as
@_output
@_reason
@pass_context
def revoke_exporter(
    ctx: Context, sshkey: str, as_name: str, output: Path, reason: str | None
) -> None:
    """Revoke an exporter's signing key ('ssh-ed25519 AAAA…' or a .pub file).

    \b
    Example:
      securexport revoke exporter analyst.pub --as owner -o analyst.revoked.json
    """
    path = Path(sshkey)
    if not sshkey.startswith("ssh-") and path.is_file():
        sshkey = path.read_text(encoding="utf-8").strip()
    _make(ctx, "exporter", sshkey, as_name, output, reason)


@revoke.command("recipient")
@click.argument("age_recipient", metavar="AGE1…")
@_as
@_output
@_reason
@pass_context
def revoke_recipient(
    ctx: Context, age_recipient: str, as_name: str, output: Path, reason: str | None
) -> None:
    """Revoke a recipient's (or auditor's) age key.

    \b
    Example:
      securexport revoke recipient age1… --as owner -o force.revoked.json
    """
    _make(ctx, "recipient", age_recipient, as_name, output, reason)


@revoke.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def revoke_import(ctx: Context, file: Path) -> None:
    """Check a revocation (FILE and FILE.sig) against the trusted approvers and store it.

    \b
    Example:
      securexport revoke import apr42.revoked.json
    """

    revocation, approver, added = api.import_revocation(ctx.env(), file)
    doc = {**revocation.to_json(), "approver": approver, "new": added}
    ctx.emit(
        doc,
        lambda: click.echo(
            f"{'imported' if added else 'already imported'}: {revocation.target()} "
            f"(revoked by {approver} at {revocation.revoked_at})"
        ),
    )


@revoke.command("list")
@pass_context
def revoke_list(ctx: Context) -> None:
    """List the imported revocations.

    \b
    Example:
      securexport --json revoke list
    """

    items = api.list_revocations(ctx.env())

    def human() -> None:
        for r in items:
            click.echo(f"{r.revoked_at}  {r.target()}" + (f"  ({r.reason})" if r.reason else ""))
        if not items:
            click.echo("(no revocations)")

    ctx.emit([r.to_json() for r in items], human)


def register(group: click.Group) -> None:
    group.add_command(revoke)
