"""age v1 files: X25519 recipients through ``pyrage``, passphrase files written and read here.

What lives here and why:

* :func:`encrypt` / :func:`decrypt` — binary age to X25519 recipients.  Encryption is
  ``pyrage``'s; decryption first parses the header strictly with our own parser (malformed
  headers, mixed ``scrypt`` stanzas and oversized payloads are refused before any key is
  tried), then lets ``pyrage.decrypt`` unwrap in memory, so no partial plaintext is ever
  released (``pyrage.decrypt_file`` leaves one behind, DESIGN.md §9).
* :func:`check_recipient_strictly` / :func:`recipient_bytes` — an ``age1…`` recipient decoded
  by our own Bech32 code, refused with the reason (checksum, padding, a non-canonical or
  low-order X25519 key) for an approval's messages; :func:`check_recipient` is pyrage's parse.
* :func:`x25519_stanza_count` — how many X25519 recipients a file names, without decrypting,
  ignoring rage's ``…-grease`` stanzas and refusing anything else.
* :func:`passphrase_encrypt` / :func:`passphrase_decrypt` — age's ``scrypt`` recipient format
  (so ``age -d`` opens our key files), written over ``cryptography``'s primitives because
  ``pyrage.passphrase.encrypt`` picks its work factor by timing.  The work factor is fixed when
  writing (2^18 by default) and capped *before any KDF work* when reading.

Errors are deliberately coarse: :class:`AgeHeaderError`, :class:`AgeMacError` and
:class:`AgePayloadError` are :class:`~securexport.errors.VerificationError` subclasses;
"none of our keys / wrong passphrase" is a :class:`~securexport.errors.KeyUnavailableError`.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyrage
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from securexport._crypto import kdf
from securexport._crypto.sshkey import InvalidKeyError
from securexport.errors import KeyUnavailableError, UsageError, VerificationError
from securexport.limits import DEFAULT_LIMITS

VERSION_LINE = b"age-encryption.org/v1\n"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
FILE_KEY_BYTES = 16
NONCE_BYTES = 16
TAG_BYTES = 16
CHUNK_BYTES = 64 * 1024
_CT_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES
_ZERO_NONCE = bytes(12)
_MAX_STANZAS = 4096
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_LOG_N_RE = re.compile(r"[1-9][0-9]?")
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_AGE_RECIPIENT = re.compile(r"age1[" + _BECH32_CHARSET + r"]{58}")

NO_MATCH_MESSAGE = "none of your keys is a recipient of this file"
WRONG_PASSPHRASE_MESSAGE = "wrong passphrase or damaged key file"  # noqa: S105 - a message


class AgeHeaderError(VerificationError):
    """The age header does not parse, or breaks a rule of the format or of our limits."""


class AgeMacError(VerificationError):
    """The file key was unwrapped but the header MAC does not match: the header was altered."""


class AgePayloadError(VerificationError):
    """The payload does not decrypt all the way to a valid final chunk."""


# --------------------------------------------------------------------------- header parsing


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: its type (first argument), the other arguments, the raw body."""

    type: str
    args: tuple[str, ...]
    body: bytes


@dataclass(frozen=True)
class Header:
    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes  # the header up to and including "---"
    payload_offset: int


def _b64encode(raw: bytes) -> bytes:
    return base64.b64encode(raw).rstrip(b"=")


def _b64decode(text: bytes) -> bytes:
    """Unpadded, canonical standard base64 (age's rule); anything else is an error."""
    if len(text) % 4 == 1 or not _B64_ALPHABET.issuperset(text):
        raise AgeHeaderError("malformed age header (bad base64)")
    raw = base64.b64decode(text + b"=" * (-len(text) % 4))
    if _b64encode(raw) != text:
        raise AgeHeaderError("malformed age header (non-canonical base64)")
    return raw


def _line(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\n", pos)
    if end < 0:
        raise AgeHeaderError("malformed age header (truncated)")
    return data[pos:end], end + 1


def parse_header(data: bytes) -> Header:
    """Parse an age v1 header strictly, following the ABNF of the age specification."""
    if not data.startswith(VERSION_LINE):
        raise AgeHeaderError("not an age v1 file")
    pos = len(VERSION_LINE)
    stanzas: list[Stanza] = []
    while True:
        line_start = pos
        line, pos = _line(data, pos)
        if line.startswith(b"-> "):
            if len(stanzas) >= _MAX_STANZAS:
                raise AgeHeaderError("malformed age header (too many stanzas)")
            args = line[3:].split(b" ")
            for arg in args:
                if not arg or any(c < 0x21 or c > 0x7E for c in arg):
                    raise AgeHeaderError("malformed age header (bad stanza argument)")
            body_lines: list[bytes] = []
            while True:
                body_line, pos = _line(data, pos)
                if len(body_line) > 64:
                    raise AgeHeaderError("malformed age header (long body line)")
                body_lines.append(body_line)
                if len(body_line) < 64:
                    break
            body = _b64decode(b"".join(body_lines))
            decoded = [a.decode("ascii") for a in args]
            stanzas.append(Stanza(decoded[0], tuple(decoded[1:]), body))
        elif line.startswith(b"---"):
            if not stanzas:
                raise AgeHeaderError("malformed age header (no recipient stanza)")
            if len(line) != 4 + 43 or line[3:4] != b" ":
                raise AgeHeaderError("malformed age header (bad MAC line)")
            mac = _b64decode(line[4:])
            return Header(tuple(stanzas), mac, data[: line_start + 3], pos)
        else:
            raise AgeHeaderError("malformed age header (unexpected line)")


def _is_grease(stanza: Stanza) -> bool:
    return stanza.type.endswith("-grease")


def _check_x25519_stanza(stanza: Stanza) -> None:
    if len(stanza.args) != 1 or len(_b64decode(stanza.args[0].encode())) != 32:
        raise AgeHeaderError("malformed X25519 stanza")
    if len(stanza.body) != FILE_KEY_BYTES + TAG_BYTES:
        raise AgeHeaderError("malformed X25519 stanza (body length)")


def x25519_stanza_count(data: bytes) -> int:
    """The number of ``X25519`` stanzas in an age file's header, without decrypting anything.

    rage adds one random ``<something>-grease`` stanza per file; those are ignored.  Any other
    stanza type, and any malformed header, raises :class:`AgeHeaderError`.
    """
    count = 0
    for stanza in parse_header(data).stanzas:
        if stanza.type == "X25519":
            _check_x25519_stanza(stanza)
            count += 1
        elif not _is_grease(stanza):
            raise AgeHeaderError(f"unexpected age stanza type {stanza.type!r}")
    return count


# --------------------------------------------------------------------------- X25519 keys


def generate_identity() -> tuple[str, str]:
    """A new X25519 identity: (``AGE-SECRET-KEY-1…``, ``age1…``)."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def _parse_identity(text: str) -> object:
    try:
        return pyrage.x25519.Identity.from_str(text)
    except Exception as exc:  # pyrage raises its own IdentityError / ValueError
        raise InvalidKeyError("not an age X25519 identity (AGE-SECRET-KEY-1…)") from exc


def recipient_of(identity: str) -> str:
    """The ``age1…`` recipient of an ``AGE-SECRET-KEY-1…`` identity."""
    return str(_parse_identity(identity).to_public())  # type: ignore[attr-defined]


def check_recipient(text: str) -> str:
    """Return ``text`` if it is a canonical (lower-case) X25519 ``age1…`` recipient."""
    try:
        recipient = pyrage.x25519.Recipient.from_str(text)
    except Exception as exc:  # pyrage raises RecipientError / ValueError
        raise InvalidKeyError("not an age X25519 recipient (age1…)") from exc
    if str(recipient) != text:
        raise InvalidKeyError("not a canonical age X25519 recipient (age1…, lower case)")
    return text


def _bech32_polymod(values: Iterable[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def recipient_bytes(text: str) -> bytes:
    """Decode an ``age1…`` X25519 recipient (BIP 173 Bech32, lower case) to its 32 bytes.

    Raises :class:`InvalidKeyError` saying what is wrong (shape, checksum, padding, length).
    """
    if not _AGE_RECIPIENT.fullmatch(text):
        raise InvalidKeyError("not an age X25519 recipient (age1 followed by 58 Bech32 characters)")
    data = [_BECH32_CHARSET.index(c) for c in text[4:]]
    hrp = [ord(c) >> 5 for c in "age"] + [0] + [ord(c) & 31 for c in "age"]
    if _bech32_polymod(hrp + data) != 1:
        raise InvalidKeyError("the age recipient's Bech32 checksum is wrong (a typo?)")
    acc = bits = 0
    out = bytearray()
    for value in data[:-6]:
        acc = (acc << 5) | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5 or acc & ((1 << bits) - 1):
        raise InvalidKeyError("the age recipient has non-zero padding bits")
    if len(out) != 32:
        raise InvalidKeyError("an age X25519 recipient holds 32 bytes")
    return bytes(out)


def check_recipient_strictly(text: str) -> str:
    """Return ``text`` if it is an ``age1…`` recipient that is safe to encrypt to.

    Stricter than :func:`check_recipient`, and each refusal is an :class:`InvalidKeyError`
    that says why (:func:`recipient_bytes`'s reasons, a non-canonical or a low-order key), so
    an approval can tell its owner which line is wrong and how.
    """
    raw = recipient_bytes(text)
    # One key, one encoding: X25519 ignores the top bit and reduces mod p, so a u-coordinate
    # at or above p = 2^255 - 19 names the same key as another string (and would slip past
    # a "listed twice" check).  Refused, as non-canonical Ed25519 keys are.
    if int.from_bytes(raw, "little") >= 2**255 - 19:
        raise InvalidKeyError("the age recipient is not a canonical X25519 key")
    # A low-order X25519 point gives an all-zero shared secret for every sender key: data
    # "encrypted" to it is readable by anyone, and rage panics on it.  Clamped scalars clear the
    # cofactor, so one fixed private key detects every such point.
    probe = X25519PrivateKey.from_private_bytes(b"\x01" * 32)
    try:
        probe.exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError as exc:
        raise InvalidKeyError("the age recipient is a low-order X25519 point (insecure)") from exc
    try:
        pyrage.x25519.Recipient.from_str(text)
    except pyrage.RecipientError as exc:  # pragma: no cover - the checks above are stricter
        raise InvalidKeyError("pyrage rejects this age recipient") from exc
    return text


# --------------------------------------------------------------------------- X25519 files


def encrypt(data: bytes, recipients: Sequence[str]) -> bytes:
    """Encrypt ``data`` to the X25519 ``recipients`` (binary age, written by pyrage)."""
    if not recipients:
        raise UsageError("at least one age recipient is needed")
    if len(set(recipients)) != len(recipients):
        raise UsageError("the same age recipient is listed twice")
    parsed = [pyrage.x25519.Recipient.from_str(check_recipient(r)) for r in recipients]
    return bytes(pyrage.encrypt(data, parsed))


def _plaintext_size(data: bytes, header: Header) -> int:
    """The exact plaintext size the payload would have, computed from its length alone."""
    payload = len(data) - header.payload_offset
    if payload < NONCE_BYTES:
        raise AgeHeaderError("the age file ends before the payload nonce")
    if payload < NONCE_BYTES + TAG_BYTES:
        raise AgePayloadError("the age payload is truncated")
    ciphertext = payload - NONCE_BYTES
    chunks = -(-ciphertext // _CT_CHUNK_BYTES)
    return ciphertext - chunks * TAG_BYTES


def decrypt(data: bytes, identities: Sequence[str], *, max_bytes: int) -> bytes:
    """Decrypt a binary age file with X25519 ``identities``; all or nothing, in memory.

    Raises :class:`KeyUnavailableError` when no stanza is for one of ``identities`` and a
    :class:`VerificationError` subclass for malformed, altered or oversized files.
    """
    header = parse_header(data)
    for stanza in header.stanzas:
        if stanza.type == "scrypt":
            if len(header.stanzas) != 1:
                raise AgeHeaderError("an scrypt stanza must be alone in an age header")
            raise KeyUnavailableError(
                NO_MATCH_MESSAGE, hint="this file is passphrase-encrypted, not to a key"
            )
        if stanza.type == "X25519":
            _check_x25519_stanza(stanza)
    if _plaintext_size(data, header) > max_bytes:
        raise AgePayloadError(f"the age file is larger than the {max_bytes}-byte limit")
    keys = [_parse_identity(i) for i in identities]
    if not keys:
        raise KeyUnavailableError(NO_MATCH_MESSAGE)
    try:
        return bytes(pyrage.decrypt(data, keys))
    except pyrage.DecryptError as exc:
        reason = str(exc).lower()
        if "no matching keys" in reason:
            raise KeyUnavailableError(NO_MATCH_MESSAGE) from None
        if "mac" in reason:
            raise AgeMacError("the age header MAC does not match") from None
        if "header" in reason or "invalid" in reason or "stanza" in reason:
            raise AgeHeaderError("malformed age header") from None
        raise AgePayloadError("the age payload is damaged or truncated") from None


# --------------------------------------------------------------------------- passphrase files


def _hkdf(ikm: bytes, salt: bytes | None, info: bytes) -> bytes:
    return kdf.hkdf_sha256(ikm, info=info, salt=salt)


def _header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return hmac.digest(_hkdf(file_key, None, b"header"), mac_input, "sha256")


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _stream_encrypt(file_key: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    out = bytearray(nonce)
    view = memoryview(plaintext)
    counter = 0
    while True:
        chunk = view[counter * CHUNK_BYTES : (counter + 1) * CHUNK_BYTES]
        last = (counter + 1) * CHUNK_BYTES >= len(plaintext)
        out += aead.encrypt(_chunk_nonce(counter, last), bytes(chunk), None)
        if last:
            return bytes(out)
        counter += 1


def _stream_decrypt(file_key: bytes, payload: bytes) -> bytes:
    if len(payload) < NONCE_BYTES:
        raise AgeHeaderError("the age file ends before the payload nonce")
    if len(payload) < NONCE_BYTES + TAG_BYTES:
        raise AgePayloadError("the age payload is truncated")
    aead = ChaCha20Poly1305(_hkdf(file_key, payload[:NONCE_BYTES], b"payload"))
    ciphertext = memoryview(payload)[NONCE_BYTES:]
    out = bytearray()
    counter = 0
    pos = 0
    while True:
        chunk = ciphertext[pos : pos + _CT_CHUNK_BYTES]
        pos += len(chunk)
        last = pos >= len(ciphertext)
        if len(chunk) < TAG_BYTES:
            raise AgePayloadError("the age payload is damaged or truncated")
        try:
            plain = aead.decrypt(_chunk_nonce(counter, last), bytes(chunk), None)
        except InvalidTag:
            raise AgePayloadError("the age payload is damaged or truncated") from None
        if last and not plain and counter > 0:
            raise AgePayloadError("the age payload ends with an empty chunk")
        out += plain
        if last:
            return bytes(out)
        counter += 1


def _scrypt_key(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
    return kdf.derive(passphrase)


def passphrase_encrypt(data: bytes, passphrase: bytes, *, log_n: int = 18) -> bytes:
    """Encrypt ``data`` under ``passphrase`` in age's scrypt format, work factor 2^``log_n``.

    ``age -d`` and ``pyrage.passphrase.decrypt`` open the result.  ``log_n`` is fixed (not
    timed) and may not exceed the reading cap, so we never write a file we would refuse.
    """
    if not passphrase:
        raise UsageError("an empty passphrase is not accepted")
    if not 1 <= log_n <= DEFAULT_LIMITS.max_scrypt_log_n:
        raise UsageError(
            f"the scrypt work factor must be 2^1 … 2^{DEFAULT_LIMITS.max_scrypt_log_n}"
        )
    file_key = os.urandom(FILE_KEY_BYTES)
    salt = os.urandom(16)
    body = ChaCha20Poly1305(_scrypt_key(passphrase, salt, log_n)).encrypt(
        _ZERO_NONCE, file_key, None
    )
    mac_input = (
        VERSION_LINE
        + b"-> scrypt "
        + _b64encode(salt)
        + b" %d\n" % log_n
        + _b64encode(body)
        + b"\n---"
    )
    mac = _header_mac(file_key, mac_input)
    return mac_input + b" " + _b64encode(mac) + b"\n" + _stream_encrypt(file_key, data)


def scrypt_log_n(data: bytes, *, max_log_n: int = 18) -> int:
    """Parse a passphrase file's header and return its work factor, refusing one above the cap.

    No key derivation happens here: a hostile work factor costs nothing to refuse.
    """
    return _scrypt_header(data, max_log_n)[1]


def _scrypt_header(data: bytes, max_log_n: int) -> tuple[Header, int]:
    header = parse_header(data)
    if not any(s.type == "scrypt" for s in header.stanzas):
        # Other stanza types are ignored by a passphrase, as the age spec asks: no match.
        raise KeyUnavailableError(
            "this file is not passphrase-encrypted", hint="it is encrypted to age keys"
        )
    if len(header.stanzas) != 1:
        raise AgeHeaderError("an scrypt stanza must be alone in an age header")
    stanza = header.stanzas[0]
    if len(stanza.args) != 2 or len(_b64decode(stanza.args[0].encode())) != 16:
        raise AgeHeaderError("malformed scrypt stanza")
    text = stanza.args[1]
    if not _LOG_N_RE.fullmatch(text) or int(text) > max_log_n:
        raise AgeHeaderError(
            f"the scrypt work factor of this file is not a number in 1 … {max_log_n}"
            if not _LOG_N_RE.fullmatch(text)
            else f"the scrypt work factor 2^{text} is above the limit 2^{max_log_n}"
        )
    if len(stanza.body) != FILE_KEY_BYTES + TAG_BYTES:
        raise AgeHeaderError("malformed scrypt stanza (body length)")
    return header, int(text)


def passphrase_decrypt(data: bytes, passphrase: bytes, *, max_log_n: int = 18) -> bytes:
    """Decrypt an age scrypt file; the work factor is checked against ``max_log_n`` first.

    Wrong passphrase: :class:`KeyUnavailableError`.  Malformed, altered or too costly files:
    a :class:`VerificationError` subclass.  Nothing is returned unless every chunk verifies.
    """
    header, log_n = _scrypt_header(data, max_log_n)
    stanza = header.stanzas[0]
    salt = _b64decode(stanza.args[0].encode())
    try:
        file_key = ChaCha20Poly1305(_scrypt_key(passphrase, salt, log_n)).decrypt(
            _ZERO_NONCE, stanza.body, None
        )
    except InvalidTag:
        raise KeyUnavailableError(WRONG_PASSPHRASE_MESSAGE) from None
    return open_with_file_key(data, header, file_key)


def open_with_file_key(data: bytes, header: Header, file_key: bytes) -> bytes:
    """Check the header MAC and decrypt the whole payload with an unwrapped file key."""
    if not hmac.compare_digest(_header_mac(file_key, header.mac_input), header.mac):
        raise AgeMacError("the age header MAC does not match")
    return _stream_decrypt(file_key, data[header.payload_offset :])
