"""C2SP signed notes (Ed25519) and tlog checkpoints (hazardous layer).

Formats: https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint, as implemented by
``golang.org/x/mod/sumdb/note`` (whose published example this module reproduces byte for byte).

    verifier key   <name>+<8 hex key id>+base64(0x01 || 32-byte Ed25519 public key)
    key id         SHA-256(name || "\\n" || 0x01 || public key)[:4]
    signed note    text (ending in "\\n") || "\\n" || one or more signature lines
    signature line "— <name> base64(key id || Ed25519 signature)\\n"
    checkpoint     origin "\\n" size "\\n" base64(root hash) "\\n" [extension lines]

Parsing is strict and rejects rather than guesses.  Signature failures are one opaque
:class:`~securexport.errors.VerificationError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from securexport._crypto.ed25519 import public_key_bytes
from securexport._crypto.sshkey import InvalidKeyError, check_ed25519_point
from securexport.errors import VerificationError

ALG_ED25519 = 0x01
EM_DASH = "\u2014"
MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note; the spec asks for at least 16
MAX_NOTE_BYTES = 1 << 20
_HASH_SIZE = 32
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,19}")
_KEY_ID_RE = re.compile(r"[0-9a-f]{8}")
_MALFORMED = "malformed signed note"


def _b64decode(text: str) -> bytes:
    """Strict standard base64: padded, canonical (re-encodes to the same text)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("invalid base64") from exc
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


def check_name(name: str) -> None:
    """Key names: non-empty, no Unicode space, no '+', no control characters."""
    if (
        not name
        or "+" in name
        or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name)
    ):
        raise ValueError(f"invalid key name {name!r}")


def key_id(name: str, public_key: Ed25519PublicKey | bytes) -> int:
    """The 32-bit key ID of an Ed25519 note key."""
    digest = hashlib.sha256(
        name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key_bytes(public_key)
    ).digest()
    (value,) = struct.unpack(">I", digest[:4])
    return int(value)


@dataclass(frozen=True)
class VerifierKey:
    """A parsed Ed25519 note verifier key."""

    name: str
    key_id: int
    public_key: bytes  # 32 raw bytes

    def to_text(self) -> str:
        blob = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{blob}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def make_verifier_key(name: str, public_key: Ed25519PublicKey | bytes) -> str:
    """``<name>+<key id hex>+<base64(0x01 || key)>`` for an Ed25519 public key."""
    check_name(name)
    raw = public_key_bytes(public_key)
    check_ed25519_point(raw)
    return VerifierKey(name, key_id(name, raw), raw).to_text()


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse a verifier key strictly; small-order or non-canonical keys are refused."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key is <name>+<key id>+<key>")
    name, hex_id, blob = parts
    check_name(name)
    if not _KEY_ID_RE.fullmatch(hex_id):
        raise ValueError("the key id of a verifier key is 8 lower-case hex digits")
    raw = _b64decode(blob)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise ValueError("only Ed25519 (type 0x01) verifier keys are supported")
    try:
        check_ed25519_point(raw[1:])
    except InvalidKeyError as exc:
        raise ValueError(str(exc)) from exc
    if key_id(name, raw[1:]) != int(hex_id, 16):
        raise ValueError("the key id does not match the key")
    return VerifierKey(name, int(hex_id, 16), raw[1:])


def _check_text(text: str) -> None:
    if not text.endswith("\n") or any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise ValueError("note text must end in a newline and hold no control characters")


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign ``text`` (which ends in a newline) as a one-signature note by key ``name``."""
    _check_text(text)
    check_name(name)
    kid = key_id(name, private_key.public_key())
    signature = private_key.sign(text.encode())
    blob = base64.b64encode(struct.pack(">I", kid) + signature).decode()
    return f"{text}\n{EM_DASH} {name} {blob}\n"


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signature by at least one known key verified."""

    text: str
    verified_by: tuple[str, ...]  # names of the known keys whose signatures verified


def split_note(note: str) -> tuple[str, list[tuple[str, int, bytes]]]:
    if len(note.encode()) > MAX_NOTE_BYTES:
        raise VerificationError(_MALFORMED + " (too large)")
    if not note.endswith("\n") or any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise VerificationError(_MALFORMED)
    cut = note.rfind("\n\n")
    if cut < 0:
        raise VerificationError(_MALFORMED)
    text, sig_block = note[: cut + 1], note[cut + 2 :]
    lines = sig_block.split("\n")[:-1]  # sig_block ends with "\n"
    if not lines or len(lines) > MAX_SIGNATURES:
        raise VerificationError(_MALFORMED)
    sigs: list[tuple[str, int, bytes]] = []
    for line in lines:
        prefix = EM_DASH + " "
        if not line.startswith(prefix):
            raise VerificationError(_MALFORMED)
        fields = line[len(prefix) :].split(" ")
        if len(fields) != 2:
            raise VerificationError(_MALFORMED)
        name, blob = fields
        try:
            check_name(name)
            raw = _b64decode(blob)
        except ValueError as exc:
            raise VerificationError(_MALFORMED) from exc
        if len(raw) < 5:
            raise VerificationError(_MALFORMED)
        (kid,) = struct.unpack(">I", raw[:4])
        sigs.append((name, int(kid), raw[4:]))
    return text, sigs


def open_note(note: str, verifier_keys: Sequence[str]) -> OpenedNote:
    """Verify ``note`` against trusted verifier keys and return its text and verified signers.

    Signatures by unknown keys (name and key id not both known) are ignored; a signature by a
    known key must verify, or the whole note is rejected; at least one must verify.
    """
    known: dict[tuple[str, int], VerifierKey] = {}
    for text_key in verifier_keys:
        try:
            key = parse_verifier_key(text_key)
        except ValueError as exc:
            raise VerificationError(f"invalid trusted verifier key: {exc}") from exc
        previous = known.setdefault((key.name, key.key_id), key)
        if previous != key:
            raise VerificationError(f"ambiguous verifier keys for {key.name}+{key.key_id:08x}")
    text, sigs = split_note(note)
    message = text.encode()
    verified: list[str] = []
    for name, kid, signature in sigs:
        key_found = known.get((name, kid))
        if key_found is None:
            continue
        if not key_found.verify(message, signature):
            raise VerificationError("signed note does not verify")
        if name not in verified:
            verified.append(name)
    if not verified:
        raise VerificationError("signed note has no signature by a trusted key")
    return OpenedNote(text, tuple(verified))


def verify_note(note: str, verifier_keys: Sequence[str]) -> str:
    """The text of ``note`` if a trusted key signed it (see :func:`open_note`)."""
    return open_note(note, verifier_keys).text


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog checkpoint body: origin, tree size, RFC 6962 root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or any(ord(c) < 0x20 for c in self.origin):
            raise ValueError("invalid checkpoint origin")
        if not 0 <= self.size < 2**64 or len(self.root_hash) != _HASH_SIZE:
            raise ValueError("invalid checkpoint size or root hash")
        for ext in self.extensions:
            if not ext or "\n" in ext or any(ord(c) < 0x20 for c in ext):
                raise ValueError("invalid checkpoint extension line")

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise VerificationError("malformed checkpoint")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise VerificationError("malformed checkpoint")
        origin, size_text, root_text, *extensions = lines
        if not _SIZE_RE.fullmatch(size_text):
            raise VerificationError("malformed checkpoint size")
        try:
            root_hash = _b64decode(root_text)
            return cls(origin, int(size_text), root_hash, tuple(extensions))
        except ValueError as exc:
            raise VerificationError("malformed checkpoint") from exc
