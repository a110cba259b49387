"""keys, pseudonym-key: identities (age + Ed25519) and pseudonymisation keys."""

from __future__ import annotations

from pathlib import Path

import click

from securexport import api
from securexport.cli.context import Context, pass_context
from securexport.errors import UsageError


@click.group("keys")
def keys() -> None:
    """Your identities: an age key to receive, an Ed25519 key to sign.

    \b
    Example:
      securexport keys new pa-analyst
      securexport keys show pa-analyst --json
    """


@keys.command("new")
@click.argument("name")
@pass_context
def keys_new(ctx: Context, name: str) -> None:
    """Create identity NAME (private keys in the OS keyring, else in passphrase files).

    \b
    Example:
      SECUREXPORT_PASSPHRASE_FILE=~/.sx-pass securexport keys new owner
    """
    ident = api.create_identity(ctx.env(), name)
    doc = ident.to_json()
    ctx.emit(
        doc,
        lambda: click.echo(
            f"created identity {name} ({ident.store})\n"
            f"  age recipient: {ident.age_recipient}\n"
            f"  signing key:   {ident.signing_key.to_line(name)}\n"
            f"  fingerprint:   {ident.signing_key.fingerprint()}"
        ),
    )


@keys.command("list")
@pass_context
def keys_list(ctx: Context) -> None:
    """List your identities.

    \b
    Example:
      securexport --json keys list
    """
    idents = api.list_identities(ctx.env())
    ctx.emit(
        [i.to_json() for i in idents],
        lambda: click.echo(
            "\n".join(
                f"{i.name}\t{i.signing_key.fingerprint()}\t{i.age_recipient}\t{i.store}"
                for i in idents
            )
        ),
    )


@keys.command("show")
@click.argument("name")
@pass_context
def keys_show(ctx: Context, name: str) -> None:
    """Show identity NAME's public keys.

    \b
    Example:
      securexport keys show pa-analyst --json
    """
    ident = api.public_identity(ctx.env(), name)
    ctx.emit(
        ident.to_json(),
        lambda: click.echo(
            f"name:          {ident.name}\nage recipient: {ident.age_recipient}\n"
            f"signing key:   {ident.signing_key.to_line(ident.name)}\n"
            f"fingerprint:   {ident.signing_key.fingerprint()}\nstore:         {ident.store}"
        ),
    )


@keys.command("export")
@click.argument("name")
@click.option(
    "--age", "age_only", is_flag=True, help="Print the age recipient instead of the SSH key."
)
@pass_context
def keys_export(ctx: Context, name: str, age_only: bool) -> None:
    """Print NAME's public key for others: the SSH signing key (default) or the age recipient.

    \b
    Example (the data owner trusts you as an approver, or names you in an approval):
      securexport keys export owner > owner.pub
      securexport trust add owner owner.pub --role approver
    """
    ident = api.public_identity(ctx.env(), name)
    text = ident.age_recipient if age_only else ident.signing_key.to_line(ident.name)
    ctx.emit(ident.to_json(), lambda: click.echo(text))


@keys.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def keys_delete(ctx: Context, name: str, yes: bool) -> None:
    """Delete identity NAME (its private keys are destroyed).

    \b
    Example:
      securexport keys delete old-laptop --yes
    """
    env = ctx.env()
    api.public_identity(env, name)
    if not yes:
        if ctx.no_input:
            raise UsageError("refusing to delete without --yes when prompts are disabled")
        if not env.stdin_isatty:  # click.confirm would read end-of-file and abort (130)
            raise UsageError(
                f"deleting identity {name} asks for confirmation: that needs a terminal, "
                "or pass --yes"
            )
        if not click.confirm(f"Delete identity {name} and its private keys?", err=True):
            raise UsageError(f"identity {name} was not deleted: not confirmed")
    api.delete_identity(env, name)
    ctx.emit({"deleted": name}, lambda: click.echo(f"deleted identity {name}"))


@click.group("pseudonym-key")
def pseudonym_key() -> None:
    """Keys for pseudonyms: created by the data owner, sent only to named exporters.

    \b
    Example:
      securexport pseudonym-key new wmp-iom-2026
    """


@pseudonym_key.command("new")
@click.argument("key_id")
@pass_context
def pk_new(ctx: Context, key_id: str) -> None:
    """Create pseudonym key KEY_ID and print the key_check to put in the approval.

    \b
    Example:
      securexport pseudonym-key new wmp-iom-2026
    """
    check = api.create_pseudonym_key(ctx.env(), key_id)
    ctx.emit(
        {"key_id": key_id, "key_check": check},
        lambda: click.echo(
            f'created pseudonym key {key_id}\nkey_check = "{check}"   # put this in [pseudonymisation]'
        ),
    )


@pseudonym_key.command("export")
@click.argument("key_id")
@click.option("--to", "recipient", required=True, help="The exporter's age recipient (age1…).")
@click.option(
    "--approval",
    "approval_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A signed approval that uses the key and names that exporter.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the encrypted key file.",
)
@pass_context
def pk_export(ctx: Context, key_id: str, recipient: str, approval_path: Path, output: Path) -> None:
    """Encrypt KEY_ID to an exporter named in a signed approval that uses it.

    \b
    Example:
      securexport pseudonym-key export wmp-iom-2026 --to age1… --approval a.toml -o key.age
    """
    api.write_pseudonym_key(ctx.env(), key_id, recipient, approval_path, output)
    ctx.emit(
        {"key_id": key_id, "to": recipient, "file": str(output)},
        lambda: click.echo(f"wrote {output} (pseudonym key {key_id}, encrypted to {recipient})"),
    )


@pseudonym_key.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def pk_import(ctx: Context, file: Path) -> None:
    """Import a pseudonym key file sent to one of your identities.

    \b
    Example:
      securexport pseudonym-key import key.age
    """
    key_id, check = api.import_pseudonym_key(ctx.env(), file)
    ctx.emit(
        {"key_id": key_id, "key_check": check},
        lambda: click.echo(f"imported pseudonym key {key_id} (key_check {check})"),
    )


def register(group: click.Group) -> None:
    group.add_command(keys)
    group.add_command(pseudonym_key)
