"""Cosignatures as securexport uses them: the witness's key name, and the check verify and
decrypt make of a bundle's ``receipt.cosig`` against the approval's ``[witness]`` table."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from securexport._crypto.cosignature import verify_cosignature
from securexport._crypto.ed25519 import SigningKey, public_key_bytes
from securexport.errors import SecurexportError, VerificationError
from securexport.ledger.receipt import verify_receipt
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy.approval import Witness
from securexport.policy.times import from_unix


def witness_name(private_key: SigningKey) -> str:
    """The witness's key name: ``securexport.witness/<16 hex of SHA-256(public key)>``."""
    raw = public_key_bytes(private_key)
    return f"securexport.witness/{hashlib.sha256(raw).hexdigest()[:16]}"


def note_text(note: str) -> str:
    """A signed note's text, without its signature lines."""
    return note[: note.rfind("\n\n") + 1]


def check_cosignature(
    cosig: bytes | None,
    manifest_raw: bytes,
    ledger_keys: Sequence[str],
    origin: str,
    witness_cfg: Witness | None,
    limits: Limits = DEFAULT_LIMITS,
) -> str | None:
    """For verify/decrypt: a check line, or None if there is nothing to check.

    With ``[witness] required = true`` a missing or bad cosignature is a VerificationError; with
    ``required = false`` a present one must still verify.
    """
    if witness_cfg is None:
        return None
    if cosig is None:
        if witness_cfg.required:
            raise VerificationError(
                "the approval requires the data owner's witness cosignature, and the bundle has "
                "none (receipt.cosig)",
                hint="the exporter adds it with: securexport ledger cosign BUNDLE COSIG_FILE",
            )
        return None
    try:
        verdict = verify_receipt(
            cosig, manifest_raw, ledger_keys, origin=origin, max_bytes=limits.max_receipt_bytes
        )
        _, timestamp = verify_cosignature(verdict.checkpoint_note, witness_cfg.key)
    except SecurexportError as exc:
        raise VerificationError(
            f"the witness cosignature does not verify: {exc.message}",
        ) from exc
    return (
        f"witness cosignature at {from_unix(timestamp)} over a checkpoint of size {verdict.size} "
        f"including entry {verdict.index}"
    )
