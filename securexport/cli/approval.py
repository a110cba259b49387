"""approval: write, check, sign and plan approvals."""

from __future__ import annotations

from pathlib import Path

import click

from securexport import api
from securexport.cli.context import STREAM, Context, pass_context, stdin_or
from securexport.errors import PolicyError

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.group("approval")
def approval() -> None:
    """Approvals: what may leave, to whom, under which limits (signed by the data owner).

    \b
    Example:
      securexport approval init -o a.toml && securexport approval sign a.toml --as owner
    """


@approval.command("init")
@click.option("-o", "--output", type=_FILE, help="Write the template here (default, or -: stdout).")
@pass_context
def approval_init(ctx: Context, output: Path | None) -> None:
    """Print a commented approval template to fill in.

    \b
    Example:
      securexport approval init -o ppo-extract.toml
    """

    if output is None or output == STREAM:
        text = api.init_approval()
        ctx.emit({"template": text}, lambda: click.echo(text, nl=False))
        return
    api.write_approval_template(output)
    ctx.emit({"written": str(output)}, lambda: click.echo(f"wrote {output}"))


@approval.command("check")
@click.argument("file", type=_FILE)
@pass_context
def approval_check(ctx: Context, file: Path) -> None:
    """Parse FILE strictly and report its signature and validity window.

    Exits 3 if the approval could not authorise a run now.  FILE may be - (standard input:
    the syntax is checked, but there is no FILE.sig beside it, so it is reported unsigned).

    \b
    Example:
      securexport approval check ppo-extract.toml
    """

    result = api.check_approval(ctx.env(), stdin_or(file))
    a = result.approval
    doc = {
        "id": a.id,
        "sha256": a.sha256,
        "signed": result.signed,
        "signer": result.signer,
        "window": result.window,
        "not_before": a.not_before.isoformat(),
        "expires": a.expires.isoformat(),
        "dataset": a.dataset,
        "columns": [c.name for c in a.columns],
        "recipients": [p.name for p in a.recipients],
        "exporters": [e.name for e in a.exporters],
        "problems": list(result.problems),
    }

    def human(err: bool = False) -> None:
        click.echo(f"approval {a.id}: syntax and schema OK (sha256 {a.sha256[:16]}…)", err=err)
        click.echo(f"  dataset {a.dataset}, {len(a.columns)} columns, row cap {a.row_cap}", err=err)
        click.echo(f"  signed by: {result.signer or '-'}; window: {result.window}", err=err)
        for problem in result.problems:
            click.echo(f"  problem: {problem}", err=err)

    if result.problems:
        if not ctx.json:
            human(err=True)  # stdout stays empty on failure (DESIGN.md §11)
        raise PolicyError(f"approval {a.id} cannot authorise a run now: {result.problems[0]}")
    ctx.emit(doc, human)


@approval.command("sign")
@click.argument("file", type=_FILE)
@click.option("--as", "as_name", required=True, help="Your identity (a trusted approver key).")
@pass_context
def approval_sign(ctx: Context, file: Path, as_name: str) -> None:
    """Sign FILE; the detached signature goes to FILE.sig.

    \b
    Example:
      securexport approval sign ppo-extract.toml --as home-office-iao
    """

    sig = api.sign_approval(ctx.env(), file, as_name)
    ctx.emit({"signature": str(sig)}, lambda: click.echo(f"wrote {sig}"))


@approval.command("plan")
@click.argument("file", type=_FILE)
@click.option(
    "--source", required=True, help="SQLAlchemy URL, opened read-only (sqlite:///db.sqlite)."
)
@pass_context
def approval_plan(ctx: Context, file: Path, source: str) -> None:
    """Show what an export would do — counts, k, suppression — writing no data.

    Exits 3 if the export would be refused.

    \b
    Example:
      securexport approval plan ppo-extract.toml --source sqlite:///offenders.db
    """

    report = api.plan(ctx.env(), file, source)

    def human(err: bool = False) -> None:
        click.echo(
            f"plan for approval {report.approval_id} (signed by {report.signer}), run date {report.run_date}",
            err=err,
        )
        click.echo(f"  matching rows:  {report.matching_rows} (row cap {report.row_cap})", err=err)
        if report.k is not None:
            click.echo(
                f"  k = {report.k}; smallest class {report.k_achieved}; classes below k: {report.suppressed_classes}",
                err=err,
            )
            hist = ", ".join(f"{s}:{n}" for s, n in sorted(report.histogram.items())[:12])
            click.echo(
                f"  class sizes (size:classes): {hist}{' …' if len(report.histogram) > 12 else ''}",
                err=err,
            )
            click.echo(
                f"  suppressed rows: {report.suppressed_rows} (fraction {report.suppressed_fraction})",
                err=err,
            )
        if report.invalid_suppressed_rows:
            click.echo(
                f"  rows dropped by on_invalid = suppress_row: {report.invalid_suppressed_rows}",
                err=err,
            )
        click.echo(f"  rows to write:  {report.written_rows} (min_rows {report.min_rows})", err=err)
        for warning in report.warnings:
            click.echo(f"  warning: {warning}", err=err)
        click.echo(f"  verdict: {report.verdict}", err=err)

    if report.verdict != "ok":
        if not ctx.json:
            human(err=True)  # stdout stays empty on failure (DESIGN.md §11)
        raise PolicyError(f"the export would be refused: {report.verdict}")
    ctx.emit(report.to_json(), human)


def register(group: click.Group) -> None:
    group.add_command(approval)
