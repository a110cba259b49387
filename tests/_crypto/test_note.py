"""C2SP signed notes and checkpoints: the Go reference example, round trips, rejections."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from securexport._crypto import note
from securexport._crypto.note import Checkpoint
from securexport.errors import VerificationError

GO = json.loads((Path(__file__).parents[1] / "vectors" / "note" / "go-sumdb-note.json").read_text())
PETER = GO["verifier_keys"]["PeterNeumann"]
ENOCH = GO["verifier_keys"]["EnochRoot"]
TEXT: str = GO["text"]
PETER_SIG: str = GO["peter_sig"]
ENOCH_SIG: str = GO["enoch_sig"]


def _go_private_key() -> Ed25519PrivateKey:
    # PRIVATE+KEY+<name>+<id>+base64(0x01 || 32-byte seed)
    parts = GO["signer_key"].split("+", 4)
    assert parts[:3] == ["PRIVATE", "KEY", "PeterNeumann"]
    raw = base64.b64decode(parts[4])
    assert raw[0] == note.ALG_ED25519
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


# ---- the golang.org/x/mod/sumdb/note example ---------------------------------------------------


def test_go_verifier_key_is_reproduced() -> None:
    key = _go_private_key()
    assert note.make_verifier_key("PeterNeumann", key.public_key()) == PETER
    parsed = note.parse_verifier_key(PETER)
    assert (parsed.name, parsed.key_id) == ("PeterNeumann", 0xC74F20A3)


def test_go_signature_is_reproduced_byte_for_byte() -> None:
    assert note.sign_note(TEXT, "PeterNeumann", _go_private_key()) == TEXT + "\n" + PETER_SIG


def test_go_note_verifies() -> None:
    assert note.verify_note(TEXT + "\n" + PETER_SIG, [PETER]) == TEXT


def test_go_note_with_two_signatures() -> None:
    both = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert note.open_note(both, [PETER]).verified_by == ("PeterNeumann",)  # Enoch unknown: ignored
    assert note.open_note(both, [PETER, ENOCH]).verified_by == ("PeterNeumann", "EnochRoot")
    assert note.open_note(both, [ENOCH]).verified_by == ("EnochRoot",)
    with pytest.raises(VerificationError):
        note.open_note(both, [])


@pytest.mark.parametrize("vkey", GO["bad_verifier_keys"])
def test_go_bad_verifier_keys_are_rejected(vkey: str) -> None:
    with pytest.raises(ValueError):
        note.parse_verifier_key(vkey)


def test_every_single_byte_change_of_the_go_key_is_rejected() -> None:
    raw = bytearray(PETER.encode())
    for i in range(len(raw)):
        raw[i] += 1
        with pytest.raises(ValueError):
            note.parse_verifier_key(raw.decode("latin-1"))
        raw[i] -= 1


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
    ],
    ids=[
        "no-sigs",
        "blank-only",
        "no-final-newline",
        "control-char",
        "bad-name",
        "trailing-junk",
        "101-sigs",
    ],
)
def test_go_malformed_notes_are_rejected(message: str) -> None:
    with pytest.raises(VerificationError):
        note.verify_note(message, [PETER])


def test_go_corrupted_signature_is_rejected() -> None:
    corrupt = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(VerificationError):
        note.verify_note(corrupt, [PETER])


def test_known_key_with_bad_signature_rejects_whole_note() -> None:
    corrupt_enoch = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    with pytest.raises(VerificationError):
        note.verify_note(TEXT + "\n" + PETER_SIG + corrupt_enoch, [PETER, ENOCH])
    # but an unknown signer's bad signature is ignored
    assert note.verify_note(TEXT + "\n" + PETER_SIG + corrupt_enoch, [PETER]) == TEXT


# ---- our own keys -----------------------------------------------------------------------------


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(min_codepoint=0x20, codec="utf-8"),
            min_size=1,
            max_size=40,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_round_trip(lines: list[str]) -> None:
    key = Ed25519PrivateKey.generate()
    text = "\n".join(lines) + "\n"
    vkey = note.make_verifier_key("example.com/log", key.public_key())
    signed = note.sign_note(text, "example.com/log", key)
    assert note.verify_note(signed, [vkey]) == text


def test_wrong_key_same_name(key: Ed25519PrivateKey) -> None:
    signed = note.sign_note("hello\n", "example.com/log", key)
    other = note.make_verifier_key("example.com/log", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(VerificationError):
        note.verify_note(signed, [other])


def test_same_key_other_name(key: Ed25519PrivateKey) -> None:
    signed = note.sign_note("hello\n", "example.com/log", key)
    renamed = note.make_verifier_key("example.com/other", key.public_key())
    with pytest.raises(VerificationError):
        note.verify_note(signed, [renamed])


def test_forged_name_with_right_key_id_fails(key: Ed25519PrivateKey) -> None:
    signed = note.sign_note("hello\n", "example.com/log", key)
    forged = signed.replace("— example.com/log ", "— example.com/other ")
    vkey = note.make_verifier_key("example.com/log", key.public_key())
    with pytest.raises(VerificationError):
        note.verify_note(forged, [vkey])


@pytest.mark.parametrize("position", [0, 3, 5, 8])
def test_modified_text_fails(key: Ed25519PrivateKey, position: int) -> None:
    text = "origin\n42\nroot\n"
    signed = note.sign_note(text, "n", key)
    tampered = signed[:position] + chr(ord(signed[position]) ^ 1) + signed[position + 1 :]
    with pytest.raises(VerificationError):
        note.verify_note(tampered, [note.make_verifier_key("n", key.public_key())])


@pytest.mark.parametrize("junk", ["x", "\n", "\nmore\n", "— n AAAA\n", " "])
def test_trailing_junk_fails(key: Ed25519PrivateKey, junk: str) -> None:
    signed = note.sign_note("hello\n", "n", key)
    with pytest.raises(VerificationError):
        note.verify_note(signed + junk, [note.make_verifier_key("n", key.public_key())])


@pytest.mark.parametrize("text", ["", "no newline", "tab\there\n", "\r\n"])
def test_sign_rejects_bad_text(key: Ed25519PrivateKey, text: str) -> None:
    with pytest.raises(ValueError):
        note.sign_note(text, "n", key)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\nb"])
def test_bad_names_rejected(key: Ed25519PrivateKey, name: str) -> None:
    with pytest.raises(ValueError):
        note.sign_note("hello\n", name, key)
    with pytest.raises(ValueError):
        note.make_verifier_key(name, key.public_key())


def test_small_order_keys_rejected() -> None:
    with pytest.raises(ValueError):
        note.make_verifier_key("n", bytes(32))
    identity = b"\x01" + bytes(31)
    blob = base64.b64encode(b"\x01" + identity).decode()
    with pytest.raises(ValueError):
        note.parse_verifier_key(f"n+{note.key_id('n', identity):08x}+{blob}")


def test_duplicate_trusted_key_is_accepted(key: Ed25519PrivateKey) -> None:
    good = note.make_verifier_key("n", key.public_key())
    signed = note.sign_note("hello\n", "n", key)
    # identical keys twice are fine
    assert note.verify_note(signed, [good, good]) == "hello\n"


# ---- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_round_trip() -> None:
    cp = Checkpoint("example.com/log", 20852163, bytes(range(32)))
    text = cp.to_text()
    assert text == "example.com/log\n20852163\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert Checkpoint.parse(text) == cp
    with_ext = Checkpoint("o", 0, bytes(32), ("ext one",))
    assert Checkpoint.parse(with_ext.to_text()) == with_ext


def test_spec_example_checkpoint_parses() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = Checkpoint.parse(text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.to_text() == text


@pytest.mark.parametrize(
    "text",
    [
        "o\n1\n" + "A" * 43 + "=",  # no final newline
        "o\n1\n",  # no root
        "\n1\n" + base64.b64encode(bytes(32)).decode() + "\n",  # empty origin
        "o\n01\n" + base64.b64encode(bytes(32)).decode() + "\n",  # leading zero
        "o\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",  # short hash
        "o\n1\n" + base64.b64encode(bytes(32)).decode().rstrip("=") + "\n",  # unpadded
        "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n",  # empty extension line
    ],
)
def test_malformed_checkpoints_rejected(text: str) -> None:
    with pytest.raises(VerificationError):
        Checkpoint.parse(text)
