"""HKDF-SHA256 (RFC 5869), as the bundle derives its per-file HMAC key (hazardous layer).

A thin wrapper over ``cryptography``'s :class:`~cryptography.hazmat.primitives.kdf.hkdf.HKDF`
with SHA-256; nothing here is new cryptography.  Tested against RFC 5869 (tests/bundle) and the
Wycheproof HKDF-SHA256 vectors (tests/_crypto/test_wycheproof.py).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def hkdf_sha256(ikm: bytes, *, info: bytes, salt: bytes | None = None, length: int = 32) -> bytes:
    """``length`` bytes of HKDF-SHA256 output key material (``salt=None``: RFC 5869's zero salt).

    More than 255 × 32 bytes is a :class:`ValueError`, as RFC 5869 says.
    """
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)
