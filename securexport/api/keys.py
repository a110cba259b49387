"""Keys: identities (an age key to receive, an Ed25519 key to sign) and pseudonym keys.

The key store itself is securexport.home.keystore; these are the recipes the ``keys`` and
``pseudonym-key`` commands call.
"""

from __future__ import annotations

from pathlib import Path

from securexport._crypto import agefile
from securexport._crypto.sshkey import InvalidKeyError
from securexport.api.approvals import load_for_run
from securexport.data import transforms
from securexport.environment import Environment
from securexport.errors import PolicyError, UsageError
from securexport.fsutil import atomic_write, read_limited
from securexport.home.keystore import PublicIdentity, open_keystore
from securexport.limits import DEFAULT_LIMITS, Limits


def create_identity(env: Environment, name: str) -> PublicIdentity:
    """A new identity NAME: private keys in the OS keyring, else in passphrase files."""
    return open_keystore(env).create_identity(name)


def list_identities(env: Environment) -> list[PublicIdentity]:
    return open_keystore(env).list_identities()


def public_identity(env: Environment, name: str) -> PublicIdentity:
    """Identity NAME's public keys (an error if there is no such identity)."""
    return open_keystore(env).public_identity(name)


def delete_identity(env: Environment, name: str) -> None:
    """Destroy identity NAME's private keys and forget it."""
    open_keystore(env).delete_identity(name)


def create_pseudonym_key(env: Environment, key_id: str) -> str:
    """A new pseudonym key KEY_ID; returns the key_check to put in the approval."""
    return open_keystore(env).create_pseudonym_key(key_id)


def import_pseudonym_key(
    env: Environment, path: Path, limits: Limits = DEFAULT_LIMITS
) -> tuple[str, str]:
    """Import a pseudonym key file sent to one of this home's identities: (key id, key_check)."""
    return open_keystore(env).import_pseudonym_key(
        read_limited(path, limits.max_key_file_bytes, "key file")
    )


def export_pseudonym_key(
    env: Environment,
    key_id: str,
    recipient: str,
    approval_path: Path,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Encrypt a pseudonym key to an exporter named in a signed approval that uses the key."""
    signed, _raw, _sig = load_for_run(env, approval_path, limits)
    approval = signed.approval
    if approval.pseudonym_key_id != key_id:
        raise PolicyError(f"approval {approval.id} does not use pseudonym key {key_id!r}")
    try:
        recipient = agefile.check_recipient(recipient)
    except InvalidKeyError as exc:
        raise UsageError(f"--to is not an age recipient: {exc}") from None
    if not any(e.age == recipient for e in approval.exporters):
        raise PolicyError(
            f"{recipient} is not the age key of an exporter named in approval {approval.id}",
            hint="pseudonym keys go only to the approval's exporters, never to recipients",
        )
    store = open_keystore(env)
    # The same key id is not enough: the approval must name this very key (its key_check).
    if transforms.key_check(store.pseudonym_key(key_id)) != approval.pseudonym_key_check:
        raise PolicyError(
            f"approval {approval.id} names pseudonym key {key_id!r} with another key_check: "
            "it does not use the key held here",
        )
    return store.export_pseudonym_key(key_id, recipient)


def write_pseudonym_key(
    env: Environment,
    key_id: str,
    recipient: str,
    approval_path: Path,
    output: Path,
    limits: Limits = DEFAULT_LIMITS,
) -> Path:
    """:func:`export_pseudonym_key` into ``output``, which must not exist (never replaced)."""
    data = export_pseudonym_key(env, key_id, recipient, approval_path, limits)
    atomic_write(output, data, overwrite=False)
    return output
