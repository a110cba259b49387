"""securexport._crypto.agefile: X25519 files via pyrage, passphrase files in age's scrypt format."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pyrage
import pytest

from securexport._crypto import agefile
from securexport._crypto.sshkey import InvalidKeyError
from securexport.errors import KeyUnavailableError, SecurexportError, VerificationError
from tests.conftest import TEST_SCRYPT_LOG_N
from tests.support.agetool import age_decrypt_with_identity, age_decrypt_with_passphrase

PASS = b"correct horse battery staple"
CHUNK = agefile.CHUNK_BYTES


# --------------------------------------------------------------------------- keys


def test_identity_and_recipient() -> None:
    secret, recipient = agefile.generate_identity()
    assert secret.startswith("AGE-SECRET-KEY-1")
    assert recipient.startswith("age1")
    assert agefile.recipient_of(secret) == recipient
    assert agefile.check_recipient(recipient) == recipient


@pytest.mark.parametrize(
    "text",
    [
        "",
        "age1",
        "not a key",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX",
        " age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",
        "AGE1ZVKYG2LQZRAA2LNJVQEJ32NKUU0UES2S82HZRYE869XEEXVN73EQUNUJWJ",  # valid bech32, not canonical
        "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwk",  # bad checksum
    ],
)
def test_check_recipient_rejects(text: str) -> None:
    with pytest.raises(InvalidKeyError):
        agefile.check_recipient(text)


def test_recipient_of_rejects_garbage() -> None:
    with pytest.raises(InvalidKeyError):
        agefile.recipient_of("AGE-SECRET-KEY-1NOTAKEY")


# --------------------------------------------------------------------------- X25519 files


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK])
def test_round_trip_two_recipients(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    (s1, r1), (s2, r2) = agefile.generate_identity(), agefile.generate_identity()
    blob = agefile.encrypt(data, [r1, r2])
    assert agefile.x25519_stanza_count(blob) == 2
    assert agefile.decrypt(blob, [s1], max_bytes=size) == data
    assert agefile.decrypt(blob, [agefile.generate_identity()[0], s2], max_bytes=size) == data


def test_not_a_recipient() -> None:
    _, recipient = agefile.generate_identity()
    blob = agefile.encrypt(b"secret", [recipient])
    with pytest.raises(KeyUnavailableError, match="none of your keys is a recipient"):
        agefile.decrypt(blob, [agefile.generate_identity()[0]], max_bytes=100)
    with pytest.raises(KeyUnavailableError):
        agefile.decrypt(blob, [], max_bytes=100)


def test_max_bytes_refused_before_decrypting() -> None:
    secret, recipient = agefile.generate_identity()
    blob = agefile.encrypt(b"a" * 1001, [recipient])
    assert agefile.decrypt(blob, [secret], max_bytes=1001) == b"a" * 1001
    with pytest.raises(VerificationError, match="limit"):
        agefile.decrypt(blob, [secret], max_bytes=1000)


def test_duplicate_or_missing_recipients_refused() -> None:
    _, recipient = agefile.generate_identity()
    with pytest.raises(SecurexportError):
        agefile.encrypt(b"x", [recipient, recipient])
    with pytest.raises(SecurexportError):
        agefile.encrypt(b"x", [])


def test_every_flipped_byte_is_detected() -> None:
    secret, recipient = agefile.generate_identity()
    blob = agefile.encrypt(b"payload key", [recipient])
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            damaged = bytearray(blob)
            damaged[i] ^= bit
            with pytest.raises((VerificationError, KeyUnavailableError)):
                agefile.decrypt(bytes(damaged), [secret], max_bytes=100)
    for cut in range(len(blob)):
        with pytest.raises((VerificationError, KeyUnavailableError)):
            agefile.decrypt(blob[:cut], [secret], max_bytes=100)
    with pytest.raises(VerificationError):
        agefile.decrypt(blob + b"\x00", [secret], max_bytes=100)


# --------------------------------------------------------------------------- stanza count


def _header_with(stanza: bytes) -> bytes:
    mac = b"A" * 43
    return b"age-encryption.org/v1\n" + stanza + b"--- " + mac + b"\n" + bytes(32)


X25519_STANZA = b"-> X25519 " + b"A" * 43 + b"\n" + b"A" * 43 + b"\n"


def test_stanza_count_ignores_rage_grease() -> None:
    recipients = [agefile.generate_identity()[1] for _ in range(3)]
    blob = agefile.encrypt(b"k", recipients)
    # rage adds one grease stanza, sometimes with no arguments ("-> x-grease\n"); the count
    # must not see it
    assert re.search(rb"\n-> \S+-grease[ \n]", blob)
    assert agefile.x25519_stanza_count(blob) == 3
    grease = b"-> foo-grease }{ x\n" + b"A" * 10 + b"\n"
    assert agefile.x25519_stanza_count(_header_with(X25519_STANZA + grease + X25519_STANZA)) == 2


@pytest.mark.parametrize(
    "stanza",
    [
        b"-> scrypt " + b"A" * 22 + b" 10\n" + b"A" * 43 + b"\n",
        b"-> ssh-ed25519 abcd " + b"A" * 43 + b"\n" + b"A" * 43 + b"\n",
        b"-> mlkem768x25519 AAAA\n" + b"A" * 43 + b"\n",
        b"-> X25519 " + b"A" * 43 + b" extra\n" + b"A" * 43 + b"\n",  # extra argument
        b"-> X25519 " + b"A" * 42 + b"\n" + b"A" * 43 + b"\n",  # short share
        b"-> X25519 " + b"A" * 43 + b"\n" + b"A" * 44 + b"\n",  # long body
        b"-> X25519 " + b"A" * 43 + b"\n" + b"A" * 42 + b"B\n",  # non-canonical base64
        b"-> X25519  " + b"A" * 43 + b"\n" + b"A" * 43 + b"\n",  # empty argument
        b"-> X25519 " + b"A" * 43 + b"\r\n" + b"A" * 43 + b"\n",  # CR
        b"-> X25519 " + b"A" * 43 + b"\n" + b"A" * 64 + b"\n",  # missing final short line
        b"",  # no stanza at all
    ],
)
def test_stanza_count_refuses(stanza: bytes) -> None:
    with pytest.raises(VerificationError):
        agefile.x25519_stanza_count(_header_with(stanza))


def test_stanza_count_refuses_malformed_headers() -> None:
    good = _header_with(X25519_STANZA)
    assert agefile.x25519_stanza_count(good) == 1
    for bad in (
        b"",
        good.replace(b"v1", b"v2", 1),
        good.replace(b"--- ", b"---"),
        good.replace(b"--- " + b"A" * 43, b"--- " + b"A" * 42),
        good.split(b"---")[0],
    ):
        with pytest.raises(VerificationError):
            agefile.x25519_stanza_count(bad)


# --------------------------------------------------------------------------- passphrase files


@pytest.mark.parametrize("size", [0, 5, CHUNK, CHUNK + 1])
def test_passphrase_round_trip_and_pyrage_reads_ours(size: int) -> None:
    data = b"k" * size
    blob = agefile.passphrase_encrypt(data, PASS, log_n=TEST_SCRYPT_LOG_N)
    assert blob.startswith(b"age-encryption.org/v1\n-> scrypt ")
    assert agefile.scrypt_log_n(blob) == TEST_SCRYPT_LOG_N
    assert agefile.passphrase_decrypt(blob, PASS) == data
    assert pyrage.passphrase.decrypt(blob, PASS.decode()) == data


def test_default_work_factor_is_fixed_at_2_to_18() -> None:
    blob = agefile.passphrase_encrypt(b"identity", PASS)
    assert agefile.scrypt_log_n(blob) == 18
    assert agefile.passphrase_decrypt(blob, PASS) == b"identity"


def test_we_read_pyrage_passphrase_files_within_the_cap() -> None:
    blob = pyrage.passphrase.encrypt(b"from rage", PASS.decode())
    log_n = agefile.scrypt_log_n(blob, max_log_n=64)
    if log_n <= 18:
        assert agefile.passphrase_decrypt(blob, PASS) == b"from rage"
    else:  # rage timed its work factor above our cap (2^19 on our machines): refused
        with pytest.raises(VerificationError, match="above the limit"):
            agefile.passphrase_decrypt(blob, PASS)
        assert agefile.passphrase_decrypt(blob, PASS, max_log_n=log_n) == b"from rage"


def test_wrong_passphrase() -> None:
    blob = agefile.passphrase_encrypt(b"x", PASS, log_n=TEST_SCRYPT_LOG_N)
    with pytest.raises(KeyUnavailableError, match="wrong passphrase or damaged key file"):
        agefile.passphrase_decrypt(blob, b"Correct horse battery staple")


def test_huge_work_factor_refused_before_any_kdf_work() -> None:
    blob = agefile.passphrase_encrypt(b"x", PASS, log_n=TEST_SCRYPT_LOG_N)
    hostile = blob.replace(b" %d\n" % TEST_SCRYPT_LOG_N, b" 40\n", 1)
    assert hostile != blob
    start = time.monotonic()
    with pytest.raises(VerificationError, match="above the limit"):
        agefile.passphrase_decrypt(hostile, PASS)
    assert time.monotonic() - start < 1.0
    # One above the cap is refused too; the cap is configurable downwards.
    with pytest.raises(VerificationError):
        agefile.passphrase_decrypt(blob.replace(b" 10\n", b" 19\n", 1), PASS)
    with pytest.raises(VerificationError):
        agefile.passphrase_decrypt(blob, PASS, max_log_n=9)


@pytest.mark.parametrize(
    "factor", [b"0", b"010", b"+10", b"0x0a", b"1e1", b"99999999999999999999", b""]
)
def test_malformed_work_factor(factor: bytes) -> None:
    blob = agefile.passphrase_encrypt(b"x", PASS, log_n=TEST_SCRYPT_LOG_N)
    hostile = blob.replace(b" 10\n", b" " + factor + b"\n", 1)
    with pytest.raises(VerificationError):
        agefile.passphrase_decrypt(hostile, PASS)


def test_scrypt_must_be_alone_and_x25519_files_are_not_passphrase_files() -> None:
    blob = agefile.passphrase_encrypt(b"x", PASS, log_n=TEST_SCRYPT_LOG_N)
    mixed = blob.replace(b"\n---", b"\n" + X25519_STANZA.rstrip(b"\n") + b"\n---", 1)
    with pytest.raises(VerificationError, match="alone"):
        agefile.passphrase_decrypt(mixed, PASS)
    with pytest.raises(VerificationError, match="alone"):
        agefile.decrypt(mixed, [agefile.generate_identity()[0]], max_bytes=10)
    with pytest.raises(KeyUnavailableError):  # a passphrase file is not for any identity
        agefile.decrypt(blob, [agefile.generate_identity()[0]], max_bytes=10)
    with pytest.raises(KeyUnavailableError):  # and an X25519 file is not for any passphrase
        agefile.passphrase_decrypt(agefile.encrypt(b"x", [agefile.generate_identity()[1]]), PASS)


def test_passphrase_file_flipped_bytes() -> None:
    blob = agefile.passphrase_encrypt(b"AGE-SECRET-KEY-1...", PASS, log_n=TEST_SCRYPT_LOG_N)
    for i in range(len(blob)):
        damaged = bytearray(blob)
        damaged[i] ^= 0x01
        with pytest.raises((VerificationError, KeyUnavailableError)):
            agefile.passphrase_decrypt(bytes(damaged), PASS)
    for cut in range(0, len(blob), 7):
        with pytest.raises((VerificationError, KeyUnavailableError)):
            agefile.passphrase_decrypt(blob[:cut], PASS)


# --------------------------------------------------------------------------- the age CLI


@pytest.mark.tools
def test_age_cli_opens_our_x25519_file(tmp_path: Path) -> None:
    secret, recipient = agefile.generate_identity()
    identity_file = tmp_path / "identity.txt"
    identity_file.write_text(f"# public key: {recipient}\n{secret}\n")
    identity_file.chmod(0o600)
    data = b"\x00payload password\xff" * 5000
    encrypted = tmp_path / "payload.key.age"
    encrypted.write_bytes(agefile.encrypt(data, [agefile.generate_identity()[1], recipient]))
    assert age_decrypt_with_identity(encrypted, identity_file) == data


@pytest.mark.tools
def test_we_open_what_age_cli_encrypts(tmp_path: Path) -> None:
    secret, recipient = agefile.generate_identity()
    other_secret, other = agefile.generate_identity()
    data = b"from the age CLI\n" * 9000
    result = subprocess.run(
        ["age", "-r", recipient, "-r", other], input=data, capture_output=True, check=True
    )
    assert agefile.x25519_stanza_count(result.stdout) == 2
    assert agefile.decrypt(result.stdout, [secret], max_bytes=len(data)) == data
    assert agefile.decrypt(result.stdout, [other_secret], max_bytes=len(data)) == data


@pytest.mark.tools
def test_age_cli_opens_our_passphrase_file(tmp_path: Path) -> None:
    data = b"AGE-SECRET-KEY-1 inside\n" * 3000  # more than one chunk
    encrypted = tmp_path / "key.age"
    encrypted.write_bytes(agefile.passphrase_encrypt(data, PASS, log_n=TEST_SCRYPT_LOG_N))
    out = tmp_path / "out"
    code, transcript = age_decrypt_with_passphrase(encrypted, PASS, out)
    assert code == 0, transcript
    assert out.read_bytes() == data
    # The pty is real: a wrong passphrase makes age fail.
    bad_out = tmp_path / "bad"
    code, _ = age_decrypt_with_passphrase(encrypted, b"wrong", bad_out)
    assert code != 0
