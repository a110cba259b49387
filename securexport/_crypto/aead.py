"""AES-256-GCM over numbered records: the encrypted scratch spool's cipher (hazardous layer).

A thin wrapper over ``cryptography``'s :class:`~cryptography.hazmat.primitives.ciphers.aead.AESGCM`;
nothing here is new cryptography.  One :class:`RecordCipher` holds a fresh random 256-bit key
that exists only in this process's memory (a forked child shares it, by copy).  Record ``n`` is
sealed under the 96-bit nonce ``n`` (big-endian) with no associated data, so a record read back
under another number does not open: that is how the spool refuses a reordered, dropped or
replayed record.  The sealed bytes are GCM's ciphertext followed by its 128-bit tag.

A record that does not open (wrong number, any altered byte) is one opaque
:class:`RecordError`, never a reason.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TAG_BYTES = 16  # GCM's tag, appended to each sealed record
_NONCE_BYTES = 12


class RecordError(Exception):
    """A sealed record did not open (it is not the one sealed under this number and key)."""


def _nonce(n: int) -> bytes:
    return n.to_bytes(_NONCE_BYTES, "big")


class RecordCipher:
    """Seal and open records numbered 0, 1, 2, … under one random key of its own.

    Each number must be sealed once only (a repeated GCM nonce breaks it); the caller numbers
    its records in order.
    """

    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def seal(self, n: int, record: bytes) -> bytes:
        """Record ``n``, encrypted and authenticated: ``len(record) + TAG_BYTES`` bytes."""
        return self._aead.encrypt(_nonce(n), record, None)

    def open(self, n: int, sealed: bytes) -> bytes:
        """The record sealed as number ``n``, or :class:`RecordError`."""
        try:
            return self._aead.decrypt(_nonce(n), sealed, None)
        except InvalidTag:
            raise RecordError("the record does not open") from None
