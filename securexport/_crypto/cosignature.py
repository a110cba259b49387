"""C2SP tlog-cosignature/v1 witness cosignatures (Ed25519) over checkpoints (hazardous layer).

Format: https://c2sp.org/tlog-cosignature (the witness protocol's cosignature/v1):

    verifier key   <name>+<8 hex key id>+base64(0x04 || 32-byte Ed25519 public key)
    key id         SHA-256(name || "\\n" || 0x04 || public key)[:4]
    signed message "cosignature/v1\\n" "time " <decimal seconds since the epoch> "\\n" <checkpoint>
    signature line "— <name> base64(key id || uint64 timestamp, big-endian || Ed25519 sig)\\n"

A cosignature line is an ordinary signed-note signature line, so a cosigned checkpoint is the
log's signed note with one more line; verifiers that do not know the witness key ignore it.
The timestamp is the witness's clock when it cosigned: the trusted time of DESIGN.md §12.
Failures are one opaque :class:`~securexport.errors.VerificationError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from securexport._crypto.ed25519 import public_key_bytes
from securexport._crypto.note import EM_DASH, check_name, split_note
from securexport._crypto.sshkey import InvalidKeyError, check_ed25519_point
from securexport.errors import VerificationError

ALG_COSIGNATURE_V1 = 0x04
_INVALID = "the witness cosignature is invalid or missing"


def _key_id(name: str, raw: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + raw).digest()[:4]


def _message(checkpoint_text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def make_cosigner_key(name: str, public_key: Ed25519PublicKey | bytes) -> str:
    """The verifier key ``<name>+<key id>+base64(0x04 || key)`` of a witness key."""
    check_name(name)
    raw = public_key_bytes(public_key)
    check_ed25519_point(raw)
    blob = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + raw).decode()
    return f"{name}+{_key_id(name, raw).hex()}+{blob}"


@dataclass(frozen=True)
class CosignerKey:
    name: str
    key_id: bytes
    public_key: bytes


def parse_cosigner_key(text: str) -> CosignerKey:
    """Parse a cosignature/v1 verifier key strictly (ValueError on anything else)."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key is <name>+<key id>+<key>")
    name, hex_id, blob = parts
    check_name(name)
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("invalid base64 in the verifier key") from exc
    if base64.b64encode(raw).decode() != blob:
        raise ValueError("non-canonical base64 in the verifier key")
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise ValueError("not a cosignature/v1 (type 0x04) Ed25519 witness key")
    try:
        check_ed25519_point(raw[1:])
    except InvalidKeyError as exc:
        raise ValueError(str(exc)) from exc
    if _key_id(name, raw[1:]).hex() != hex_id:
        raise ValueError("the key id does not match the key")
    return CosignerKey(name, bytes.fromhex(hex_id), raw[1:])


def cosign(checkpoint_text: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """One cosignature line (ending in a newline) over ``checkpoint_text`` at ``timestamp``."""
    check_name(name)
    if not checkpoint_text.endswith("\n") or not 0 <= timestamp < 2**63:
        raise ValueError("bad checkpoint text or timestamp")
    signature = private_key.sign(_message(checkpoint_text, timestamp))
    kid = _key_id(name, public_key_bytes(private_key))
    blob = base64.b64encode(kid + struct.pack(">Q", timestamp) + signature).decode()
    return f"{EM_DASH} {name} {blob}\n"


def add_cosignature(note: str, line: str) -> str:
    """The signed ``note`` with one more signature line."""
    if not note.endswith("\n") or not line.endswith("\n"):
        raise ValueError("notes and signature lines end in a newline")
    return note + line


def verify_cosignature(note: str, witness_key: str) -> tuple[str, int]:
    """The checkpoint text and cosigning time if ``note`` carries a valid cosignature by
    ``witness_key``; else one opaque VerificationError."""
    try:
        key = parse_cosigner_key(witness_key)
    except ValueError as exc:
        raise VerificationError(f"the witness key is unusable: {exc}") from exc
    text, sigs = split_note(note)
    found: int | None = None
    for name, kid, blob in sigs:
        if name != key.name or kid.to_bytes(4, "big") != key.key_id:
            continue
        if len(blob) != 8 + 64:
            raise VerificationError(_INVALID)
        (timestamp,) = struct.unpack(">Q", blob[:8])
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(
                blob[8:], _message(text, timestamp)
            )
        except InvalidSignature:
            raise VerificationError(_INVALID) from None
        found = timestamp if found is None else max(found, timestamp)
    if found is None:
        raise VerificationError(_INVALID)
    return text, found
