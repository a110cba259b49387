"""securexport._crypto.ed25519: signing keys, their raw public bytes and OpenSSH PEM files.

ssh-keygen is the independent checker: it reads the PEM we write, and we read the one it writes.
(That ``ssh-keygen -Y sign`` signs with a key-store key is tests/home/test_keystore.py's.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from securexport._crypto import ed25519
from securexport._crypto.sshkey import SshPublicKey


def test_generate_makes_distinct_ed25519_keys() -> None:
    one, two = ed25519.generate(), ed25519.generate()
    assert isinstance(one, Ed25519PrivateKey)
    assert ed25519.public_key_bytes(one) != ed25519.public_key_bytes(two)


def test_public_key_bytes_of_a_signing_key_its_public_key_and_raw_bytes() -> None:
    key = ed25519.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(raw) == 32
    assert ed25519.public_key_bytes(key) == raw
    assert ed25519.public_key_bytes(key.public_key()) == raw
    assert ed25519.public_key_bytes(raw) == raw


def test_pem_round_trip() -> None:
    key = ed25519.generate()
    pem = ed25519.to_openssh_pem(key)
    assert pem.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    again = ed25519.from_openssh_pem(pem)
    assert ed25519.public_key_bytes(again) == ed25519.public_key_bytes(key)
    assert again.sign(b"m") == key.sign(b"m")  # Ed25519 signatures are deterministic


def test_ssh_keygen_reads_our_pem_and_we_read_its(tmp_path: Path) -> None:
    key = ed25519.generate()
    ours = tmp_path / "ours"
    ours.write_text(ed25519.to_openssh_pem(key))
    ours.chmod(0o600)
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(ours)], check=True, capture_output=True, text=True
    ).stdout
    assert SshPublicKey.parse(derived) == SshPublicKey(ed25519.public_key_bytes(key))

    theirs = tmp_path / "theirs"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "x", "-f", str(theirs)], check=True
    )
    loaded = ed25519.from_openssh_pem(theirs.read_text())
    public = SshPublicKey.parse((tmp_path / "theirs.pub").read_text())
    assert SshPublicKey(ed25519.public_key_bytes(loaded)) == public


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a key\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        "caf\u00e9\n",  # not ASCII
    ],
)
def test_an_unreadable_pem_is_one_opaque_error(pem: str) -> None:
    with pytest.raises(ed25519.PrivateKeyError) as info:
        ed25519.from_openssh_pem(pem)
    assert not isinstance(info.value, ed25519.NotEd25519Error)


def test_a_passphrase_protected_pem_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", str(path)], check=True)
    with pytest.raises(ed25519.PrivateKeyError) as info:
        ed25519.from_openssh_pem(path.read_text())
    assert not isinstance(info.value, ed25519.NotEd25519Error)


def test_another_key_type_is_not_ed25519() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    with pytest.raises(ed25519.NotEd25519Error):
        ed25519.from_openssh_pem(pem.decode())
