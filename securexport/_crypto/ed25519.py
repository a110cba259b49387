"""Ed25519 signing keys: generate, raw public bytes, the OpenSSH PEM files (hazardous layer).

A thin wrapper over ``cryptography``'s Ed25519 and OpenSSH serialization; nothing here is new
cryptography.  Outside :mod:`securexport._crypto` a key is an opaque :data:`SigningKey`: it is
made and stored here, and handed to the format code that signs with it (:mod:`.sshsig`,
:mod:`.note`, :mod:`.cosignature`); its public half leaves as 32 raw bytes
(:func:`public_key_bytes`).

A private key is kept as an unencrypted OpenSSH PEM (``-----BEGIN OPENSSH PRIVATE KEY-----``),
the file ``ssh-keygen -Y sign`` takes; the key store wraps it in age.  A PEM that does not load
is one opaque :class:`PrivateKeyError`; a readable OpenSSH key of another type is its subclass
:class:`NotEd25519Error`.
"""

from __future__ import annotations

from typing import TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SigningKey: TypeAlias = Ed25519PrivateKey
PublicKey: TypeAlias = Ed25519PublicKey


class PrivateKeyError(ValueError):
    """Not an unencrypted OpenSSH Ed25519 private key."""


class NotEd25519Error(PrivateKeyError):
    """An OpenSSH private key, but not an Ed25519 one."""


def generate() -> SigningKey:
    """A new random Ed25519 signing key."""
    return Ed25519PrivateKey.generate()


def public_key_bytes(key: SigningKey | PublicKey | bytes) -> bytes:
    """The 32 raw bytes of an Ed25519 public key, or of a signing key's (bytes pass through)."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return bytes(key)


def to_openssh_pem(key: SigningKey) -> str:
    """The key as an unencrypted OpenSSH private key file."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode("ascii")


def from_openssh_pem(pem: str) -> SigningKey:
    """The Ed25519 key of an unencrypted OpenSSH private key file (inverse of the above)."""
    try:
        key = serialization.load_ssh_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise PrivateKeyError("not a readable OpenSSH private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise NotEd25519Error("not an Ed25519 key")
    return key
