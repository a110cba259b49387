"""OpenSSH ``ssh-ed25519`` public keys: strict parsing, formatting, fingerprints.

Small-order and non-canonical Ed25519 points are rejected wherever a key enters (trust store,
approval): ``cryptography`` accepts forged signatures for the all-zero key and the identity point
(DESIGN.md §9).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from securexport._crypto.ed25519 import public_key_bytes

KEY_TYPE = "ssh-ed25519"
_P = 2**255 - 19
# y-coordinates of the eight small-order points of edwards25519 (either sign bit is rejected).
_SMALL_ORDER_Y = frozenset(
    {
        0,
        1,
        _P - 1,
        int.from_bytes(
            bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
            "little",
        )
        & ((1 << 255) - 1),
        int.from_bytes(
            bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
            "little",
        )
        & ((1 << 255) - 1),
    }
)


class InvalidKeyError(ValueError):
    """A public key is malformed, of the wrong type, small-order or non-canonical."""


def check_ed25519_point(raw: bytes) -> None:
    """Reject encodings that are not canonical or that lie in the small-order subgroup."""
    if len(raw) != 32:
        raise InvalidKeyError("an Ed25519 public key is 32 bytes")
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise InvalidKeyError("non-canonical Ed25519 public key")
    if y in _SMALL_ORDER_Y:
        raise InvalidKeyError("small-order Ed25519 public key (forgeable)")
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:  # not a point on the curve
        raise InvalidKeyError("invalid Ed25519 public key") from exc


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def read_ssh_string(buf: bytes, offset: int) -> tuple[bytes, int]:
    """Read one SSH wire-format string at ``offset``; return it and the next offset."""
    if offset + 4 > len(buf):
        raise InvalidKeyError("truncated SSH string")
    (length,) = struct.unpack_from(">I", buf, offset)
    start = offset + 4
    end = start + length
    if end > len(buf):
        raise InvalidKeyError("truncated SSH string")
    return buf[start:end], end


@dataclass(frozen=True, order=True)
class SshPublicKey:
    """An Ed25519 public key as OpenSSH writes it.  Compared by key bytes, never by comment."""

    raw: bytes

    def __post_init__(self) -> None:
        check_ed25519_point(self.raw)

    @property
    def blob(self) -> bytes:
        """The SSH wire encoding: string "ssh-ed25519" || string key."""
        return _ssh_string(KEY_TYPE.encode()) + _ssh_string(self.raw)

    def to_line(self, comment: str = "") -> str:
        """``ssh-ed25519 AAAA… [comment]``: one authorized_keys / allowed_signers key."""
        line = f"{KEY_TYPE} {base64.b64encode(self.blob).decode()}"
        return f"{line} {comment}" if comment else line

    def fingerprint(self) -> str:
        """OpenSSH's ``SHA256:…`` fingerprint (base64 without padding)."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def cryptography_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.raw)

    @classmethod
    def from_blob(cls, blob: bytes) -> SshPublicKey:
        key_type, offset = read_ssh_string(blob, 0)
        if key_type != KEY_TYPE.encode():
            raise InvalidKeyError("only ssh-ed25519 keys are accepted")
        raw, offset = read_ssh_string(blob, offset)
        if offset != len(blob):
            raise InvalidKeyError("trailing bytes after the SSH public key")
        return cls(raw)

    @classmethod
    def parse(cls, text: str) -> SshPublicKey:
        """Parse ``ssh-ed25519 <base64> [comment]`` strictly (one line, no options)."""
        parts = text.strip().split(None, 2)
        if len(parts) < 2 or "\n" in text.strip():
            raise InvalidKeyError("expected one line 'ssh-ed25519 AAAA… [comment]'")
        if parts[0] != KEY_TYPE:
            raise InvalidKeyError("only ssh-ed25519 keys are accepted")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidKeyError("the key is not valid base64") from exc
        return cls.from_blob(blob)

    @classmethod
    def from_cryptography(cls, key: Ed25519PublicKey) -> SshPublicKey:
        return cls(public_key_bytes(key))
