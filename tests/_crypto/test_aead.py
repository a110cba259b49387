"""securexport._crypto.aead: the spool's AES-256-GCM over numbered records.

The spool's own tests (tests/data/test_spool.py) refuse flipped, swapped and truncated records;
the Wycheproof AES-GCM vectors and the parameters the spool passes are test_wycheproof.py's.
These pin the scheme: record ``n`` is sealed under the 12-byte big-endian nonce ``n``, no
associated data, the ciphertext followed by the 16-byte tag.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from securexport._crypto import aead

KEY = bytes(range(32))


def _cipher_with(key: bytes) -> aead.RecordCipher:
    cipher = aead.RecordCipher()
    cipher._aead = AESGCM(key)  # a known key, to compare with AESGCM called directly
    return cipher


@pytest.mark.parametrize("n", [0, 1, 255, 256, 2**64, 2**96 - 1])
def test_record_n_is_gcm_under_nonce_n(n: int) -> None:
    sealed = _cipher_with(KEY).seal(n, b"record")
    assert sealed == AESGCM(KEY).encrypt(n.to_bytes(12, "big"), b"record", None)
    assert len(sealed) == len(b"record") + aead.TAG_BYTES


@settings(max_examples=50, deadline=None)
@given(record=st.binary(max_size=300), n=st.integers(0, 2**96 - 1), data=st.data())
def test_round_trip_and_any_flipped_byte_is_refused(
    record: bytes, n: int, data: st.DataObject
) -> None:
    cipher = aead.RecordCipher()
    sealed = cipher.seal(n, record)
    assert cipher.open(n, sealed) == record
    at = data.draw(st.integers(0, len(sealed) - 1))
    flipped = bytearray(sealed)
    flipped[at] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(aead.RecordError):
        cipher.open(n, bytes(flipped))


def test_another_number_or_key_does_not_open() -> None:
    cipher = aead.RecordCipher()
    sealed = cipher.seal(7, b"x")
    with pytest.raises(aead.RecordError, match=r"^the record does not open$"):
        cipher.open(8, sealed)
    with pytest.raises(aead.RecordError):
        aead.RecordCipher().open(7, sealed)  # every cipher draws its own key
    with pytest.raises(aead.RecordError):
        cipher.open(7, sealed[:-1])
