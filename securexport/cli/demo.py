"""demo-db: the synthetic offender database the README's tour exports from."""

from __future__ import annotations

from pathlib import Path

import click

from securexport import api
from securexport.cli.context import Context, pass_context


@click.command("demo-db")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--people",
    type=click.IntRange(0, 10_000_000),
    default=30000,
    show_default=True,
    help="Invented people (some have more than one row).",
)
@click.option(
    "--seed",
    type=int,
    default=2026,
    show_default=True,
    help="The same seed and --people give the same rows.",
)
@pass_context
def demo_db(ctx: Context, path: Path, people: int, seed: int) -> None:
    """Write a synthetic offender-tracking SQLite database to PATH (never replaced).

    Every value is invented.  It holds table offenders, view offenders_v and the database id
    offender-tracking-demo, for trying securexport out: --source sqlite:///PATH.

    \b
    Example:
      securexport demo-db offenders.db --people 30000
    """
    made = api.make_demo_db(path, people=people, seed=seed)
    ctx.emit(
        made.to_json(),
        lambda: click.echo(f"wrote {made.rows} rows for {made.people} people to {made.path}"),
    )


def register(group: click.Group) -> None:
    group.add_command(demo_db)
