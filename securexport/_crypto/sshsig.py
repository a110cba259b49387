"""OpenSSH SSHSIG signatures (PROTOCOL.sshsig): Ed25519 only, detached, armored.

This is the hazardous layer: a small encoder and a strict decoder around ``cryptography``'s
Ed25519 primitives.  ``ssh-keygen -Y sign`` / ``-Y verify`` make and check the same bytes.

The decoder accepts exactly one form, the one ``ssh-keygen`` writes: the BEGIN line, the blob's
canonical base64 wrapped at 70 columns, the END line, and one final newline.  Since the armor is
canonical and every field of the blob is covered by the signature (or is the verifying key),
changing any byte of a signature makes it fail.  Every failure raises the same
:class:`~securexport.errors.VerificationError` with one opaque message: no oracle detail.

Wire format (all strings are uint32 length-prefixed)::

    signature blob  = "SSHSIG" || uint32 1 || string publickey || string namespace
                      || string reserved || string hash_algorithm || string signature
    signed data     = "SSHSIG" || string namespace || string reserved
                      || string hash_algorithm || string H(message)
    signature       = string "ssh-ed25519" || string sig[64]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from securexport._crypto.sshkey import KEY_TYPE, InvalidKeyError, SshPublicKey, read_ssh_string
from securexport.errors import VerificationError

NAMESPACE_APPROVAL = "securexport-approval-v1"
NAMESPACE_MANIFEST = "securexport-manifest-v1"
NAMESPACE_REVOCATION = "securexport-revocation-v1"

MAGIC = b"SSHSIG"
VERSION = 1
BEGIN = b"-----BEGIN SSH SIGNATURE-----\n"
END = b"-----END SSH SIGNATURE-----\n"
WRAP = 70  # ssh-keygen's line width for the armored body
DEFAULT_MAX_BYTES = 16 * 1024
SIGN_HASH = "sha512"
_HASHES = {"sha512": hashlib.sha512, "sha256": hashlib.sha256}
_SIG_LEN = 64

INVALID = "signature is invalid or malformed"


class _Malformed(Exception):
    """Internal: any parse failure; turned into the one opaque VerificationError."""


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _signed_data(namespace: bytes, reserved: bytes, hash_alg: bytes, digest: bytes) -> bytes:
    return MAGIC + _string(namespace) + _string(reserved) + _string(hash_alg) + _string(digest)


def _armor(blob: bytes) -> bytes:
    body = base64.b64encode(blob)
    lines = [body[i : i + WRAP] + b"\n" for i in range(0, len(body), WRAP)]
    return BEGIN + b"".join(lines) + END


def _namespace_bytes(namespace: str) -> bytes:
    if not namespace:
        raise ValueError("an SSHSIG namespace must not be empty")
    return namespace.encode("utf-8")


def sign(private_key: Ed25519PrivateKey, message: bytes, namespace: str) -> bytes:
    """Sign ``message`` under ``namespace``; return the armored SSHSIG ``ssh-keygen`` writes."""
    ns = _namespace_bytes(namespace)
    public = SshPublicKey.from_cryptography(private_key.public_key())
    hash_alg = SIGN_HASH.encode()
    digest = _HASHES[SIGN_HASH](message).digest()
    raw_sig = private_key.sign(_signed_data(ns, b"", hash_alg, digest))
    sig_field = _string(KEY_TYPE.encode()) + _string(raw_sig)
    blob = (
        MAGIC
        + struct.pack(">I", VERSION)
        + _string(public.blob)
        + _string(ns)
        + _string(b"")
        + _string(hash_alg)
        + _string(sig_field)
    )
    return _armor(blob)


@dataclass(frozen=True)
class _Parsed:
    signer: SshPublicKey
    namespace: bytes
    reserved: bytes
    hash_alg: bytes
    raw_sig: bytes


def _dearmor(signature: bytes, max_bytes: int) -> bytes:
    if len(signature) > max_bytes:
        raise _Malformed
    if not (signature.startswith(BEGIN) and signature.endswith(END)):
        raise _Malformed
    body = signature[len(BEGIN) : len(signature) - len(END)]
    try:
        blob = base64.b64decode(body.replace(b"\n", b""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Malformed from exc
    # Only the canonical encoding and wrapping is accepted, so the armored text is unique.
    if _armor(blob) != signature:
        raise _Malformed
    return blob


def _read(buf: bytes, offset: int) -> tuple[bytes, int]:
    try:
        return read_ssh_string(buf, offset)
    except InvalidKeyError as exc:
        raise _Malformed from exc


def _parse(signature: bytes, max_bytes: int) -> _Parsed:
    blob = _dearmor(signature, max_bytes)
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise _Malformed
    (version,) = struct.unpack_from(">I", blob, len(MAGIC))
    if version != VERSION:
        raise _Malformed
    offset = len(MAGIC) + 4
    key_blob, offset = _read(blob, offset)
    namespace, offset = _read(blob, offset)
    reserved, offset = _read(blob, offset)
    hash_alg, offset = _read(blob, offset)
    sig_field, offset = _read(blob, offset)
    if (
        offset != len(blob)
        or not namespace
        or reserved
        or hash_alg.decode("latin-1") not in _HASHES
    ):
        raise _Malformed
    sig_type, sig_offset = _read(sig_field, 0)
    raw_sig, sig_offset = _read(sig_field, sig_offset)
    if sig_type != KEY_TYPE.encode() or len(raw_sig) != _SIG_LEN or sig_offset != len(sig_field):
        raise _Malformed
    try:
        signer = SshPublicKey.from_blob(key_blob)  # rejects small-order and non-canonical keys
    except InvalidKeyError as exc:
        raise _Malformed from exc
    return _Parsed(signer, namespace, reserved, hash_alg, raw_sig)


def ed25519_verify(raw_key: bytes, raw_sig: bytes, data: bytes) -> bool:
    """The one Ed25519 check every SSHSIG goes through: key policy, then ``cryptography``.

    Small-order and non-canonical keys are refused before ``cryptography`` sees them (it accepts
    forged signatures for some of them, DESIGN.md §9).  Exposed for the Wycheproof tests.
    """
    try:
        SshPublicKey(raw_key)
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_sig, data)
    except (InvalidKeyError, InvalidSignature, ValueError):
        return False
    return True


def signer_of(signature: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> SshPublicKey:
    """The key a signature *claims* to be made by (parse only; nothing is verified).

    Use it to look up the claimed signer, then call :func:`verify`.  Raises
    :class:`VerificationError` when the signature is malformed.
    """
    try:
        return _parse(signature, max_bytes).signer
    except _Malformed:
        raise VerificationError(INVALID) from None


def verify(
    signature: bytes, message: bytes, namespace: str, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> SshPublicKey:
    """Check an armored SSHSIG over ``message`` under ``namespace``; return the signer's key.

    The caller must still decide whether it trusts the returned key.  Any failure raises
    :class:`VerificationError` with the same message.
    """
    try:
        parsed = _parse(signature, max_bytes)
        if not namespace or parsed.namespace != namespace.encode("utf-8"):
            raise _Malformed
        digest = _HASHES[parsed.hash_alg.decode("ascii")](message).digest()
        data = _signed_data(parsed.namespace, parsed.reserved, parsed.hash_alg, digest)
        if not ed25519_verify(parsed.signer.raw, parsed.raw_sig, data):
            raise _Malformed
    except _Malformed:
        raise VerificationError(INVALID) from None
    return parsed.signer
