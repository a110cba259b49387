"""Identities, pseudonym keys and the ledger key: the key store (DESIGN.md §6).

An identity ``NAME`` is an age X25519 key (to receive) and an Ed25519 key (to sign).  Public
parts are always on disk in ``keys/NAME.pub``: two lines, the ``age1…`` recipient and
``ssh-ed25519 AAAA… NAME``.

Secrets live in the OS keyring when a real one is present (SecretService, macOS Keychain,
Windows Credential Locker, KWallet; never keyring's plaintext, null or fail backends, nor
``keyrings.alt``/``keyrings.cryptfile``), under the service ``securexport:<16 hex of
sha256(home path)>``.  Otherwise they live in passphrase-encrypted key files, in age's scrypt
format at a fixed work factor, so the standard ``age`` tool opens them too:

=================================  ============================  ================================
secret                             keyring username              key file (0600, dir 0700)
=================================  ============================  ================================
age identity of NAME               ``identity/NAME/age``         ``keys/NAME.age-key.age``
Ed25519 signing key of NAME        ``identity/NAME/ssh``         ``keys/NAME.ssh-key.age``
pseudonym key KEY_ID               ``pseudonym/KEY_ID``          ``keys/pseudonym/KEY_ID.key.age``
ledger signing key                 ``ledger/signing``            ``keys/ledger.ssh-key.age``
witness signing key                ``witness/signing``           ``keys/witness/ssh-key.age``
=================================  ============================  ================================

Secret values: the age identity as an age identity file (``# public key: age1…`` then
``AGE-SECRET-KEY-1…``), usable with ``age -d -i``; Ed25519 keys as unencrypted OpenSSH PEM
(inside the age envelope), usable with ``ssh-keygen -Y sign``; pseudonym keys as the canonical
JSON document ``securexport.pseudonym-key/1`` that :meth:`KeyStore.export_pseudonym_key` sends.

Each secret is unlocked at most once per :class:`KeyStore`, and the passphrase is asked once
(on a terminal, up to three tries when it is wrong; a passphrase file is read once).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import rfc8785

from securexport._crypto import agefile, ed25519
from securexport._crypto.sshkey import InvalidKeyError, SshPublicKey
from securexport.environment import PASSPHRASE_FILE_VAR, Environment
from securexport.errors import (
    FileError,
    KeyUnavailableError,
    UsageError,
    VerificationError,
)
from securexport.fsutil import atomic_write, check_not_world_readable, ensure_private_dir
from securexport.home.config import refuse_kdf_setting
from securexport.limits import DEFAULT_LIMITS

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
KEY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RESERVED_NAMES = frozenset({"ledger"})  # keys/ledger.ssh-key.age is the ledger's own key
PSEUDONYM_SCHEMA = "securexport.pseudonym-key/1"
PSEUDONYM_KEY_BYTES = 32
KEY_CHECK_LABEL = b"securexport/key-check/v1"

# Exact classes only: a subclass defined elsewhere (keyrings.alt...) is not a real OS keyring.
SECURE_BACKENDS = frozenset(
    {
        "keyring.backends.SecretService.Keyring",
        "keyring.backends.macOS.Keyring",
        "keyring.backends.Windows.WinVaultKeyring",
        "keyring.backends.kwallet.DBusKeyring",
        "keyring.backends.kwallet.DBusKeyringKWallet4",
    }
)
_CHAINER = "keyring.backends.chainer.ChainerBackend"
_KEYSTORES = ("auto", "keyring", "file")
_T = TypeVar("_T")


class _PromptNeeded(Exception):
    """A background unlock would have to ask for a passphrase: leave it to the caller."""


_background = threading.local()  # .active: this thread must not prompt


class BackgroundUnlock(Generic[_T]):
    """An unlock running on its own thread (scrypt releases the GIL, so the caller's work
    goes on meanwhile); from :meth:`KeyStore.unlock_in_background`.

    The thread never prompts: if a passphrase other than the one already given is needed,
    :meth:`result` runs the unlock again on the caller's thread, which may prompt.  Until
    :meth:`result` returns, the caller must not use the same KeyStore.
    """

    def __init__(self, unlock: Callable[[], _T]) -> None:
        self._unlock = unlock
        self._value: _T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="securexport-unlock", daemon=True)
        self._started = False

    def start(self) -> BackgroundUnlock[_T]:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def _run(self) -> None:
        _background.active = True
        try:
            self._value = self._unlock()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller in result()
            self._error = exc

    def __enter__(self) -> BackgroundUnlock[_T]:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._thread.join()  # never leave it running past the block, even on failure

    def result(self) -> _T:
        self.start()
        self._thread.join()
        if isinstance(self._error, _PromptNeeded):
            return self._unlock()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def _class_path(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def secure_backend(candidate: Any) -> Any | None:
    """The real OS keyring inside ``candidate`` (unwrapping keyring's chainer), else None."""
    if candidate is None:
        return None
    if _class_path(candidate) == _CHAINER:
        for backend in candidate.backends:
            if _class_path(backend) in SECURE_BACKENDS:
                return backend
        return None
    return candidate if _class_path(candidate) in SECURE_BACKENDS else None


def _system_keyring() -> Any | None:
    import keyring
    import keyring.errors

    try:
        return keyring.get_keyring()
    except (keyring.errors.KeyringError, OSError, RuntimeError):
        return None


def key_check(key: bytes) -> str:
    """The first 16 hex digits of HMAC-SHA-256(key, ``securexport/key-check/v1``)."""
    return hmac.digest(key, KEY_CHECK_LABEL, "sha256").hex()[:16]


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UsageError(
            f"invalid identity name {name!r}",
            hint="use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
        )
    return name


def check_key_id(key_id: str) -> str:
    if not KEY_ID_RE.fullmatch(key_id):
        raise UsageError(
            f"invalid pseudonym key id {key_id!r}",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return key_id


def pseudonym_document(key_id: str, key: bytes) -> bytes:
    """The canonical JSON (RFC 8785) that carries a pseudonym key."""
    return bytes(
        rfc8785.dumps(
            {
                "schema": PSEUDONYM_SCHEMA,
                "key_id": key_id,
                "key": base64.b64encode(key).decode(),
                "key_check": key_check(key),
            }
        )
    )


def parse_pseudonym_document(data: bytes) -> tuple[str, bytes]:
    """Parse a pseudonym key document strictly; return (key_id, key)."""
    bad = KeyUnavailableError("the pseudonym key document is malformed")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(doc, dict) or set(doc) != {"schema", "key_id", "key", "key_check"}:
        raise bad
    if doc["schema"] != PSEUDONYM_SCHEMA or not all(isinstance(v, str) for v in doc.values()):
        raise bad
    if not KEY_ID_RE.fullmatch(doc["key_id"]):
        raise bad
    try:
        key = base64.b64decode(doc["key"], validate=True)
    except (binascii.Error, ValueError):
        raise bad from None
    if len(key) != PSEUDONYM_KEY_BYTES:
        raise bad
    if not hmac.compare_digest(key_check(key), doc["key_check"]):
        raise KeyUnavailableError("the pseudonym key does not match its key_check")
    if pseudonym_document(doc["key_id"], key) != data:
        raise bad  # not canonical
    return doc["key_id"], key


@dataclass(frozen=True)
class PublicIdentity:
    name: str
    age_recipient: str
    signing_key: SshPublicKey
    store: str  # "keyring" or "file": where the secret halves live

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "age_recipient": self.age_recipient,
            "signing_key": self.signing_key.to_line(),
            "fingerprint": self.signing_key.fingerprint(),
            "store": self.store,
        }


@dataclass(frozen=True)
class _Slot:
    """One secret: its keyring username, its key file, and how messages name it."""

    username: str
    path: Path
    label: str


class KeyStore:
    """The local key store of one ``$SECUREXPORT_HOME``."""

    def __init__(
        self,
        env: Environment,
        *,
        scrypt_log_n: int = DEFAULT_LIMITS.max_scrypt_log_n,
        keyring_backend: Any | None = None,
    ) -> None:
        """``keyring_backend``: the keyring to use (default: keyring's own choice), checked
        against the allow-list like any other.  ``env.keystore`` picks auto | keyring | file.
        """
        if env.keystore not in _KEYSTORES:
            raise UsageError(
                f"unknown key store {env.keystore!r}", hint="use auto, keyring or file"
            )
        self._env = env
        self._log_n = scrypt_log_n
        self._given_backend = keyring_backend
        self._backend_resolved = False
        self._backend_obj: Any | None = None
        self._passphrase: bytes | None = None
        self._cache: dict[str, str] = {}
        home_id = hashlib.sha256(os.fsencode(env.home.path.resolve())).hexdigest()[:16]
        self.service = f"securexport:{home_id}"

    # ---------------------------------------------------------------- backends

    @property
    def keys_dir(self) -> Path:
        return self._env.home.keys_dir

    def _backend(self) -> Any | None:
        """The secure OS keyring, or None for key files (announced once on stderr)."""
        if self._env.keystore == "file":
            return None
        if not self._backend_resolved:
            candidate = self._given_backend
            if candidate is None:
                candidate = _system_keyring()
            self._backend_obj = secure_backend(candidate)
            if self._backend_obj is None and self._env.keystore == "keyring":
                raise KeyUnavailableError(
                    "no secure OS keyring is available "
                    f"(found {_class_path(candidate) if candidate is not None else 'none'})",
                    hint="unlock your desktop keyring, or set SECUREXPORT_KEYSTORE=file",
                )
            self._backend_resolved = True
            if self._backend_obj is None:
                self._env.notice(
                    "no secure OS keyring was found; private keys are kept in "
                    f"passphrase-encrypted key files in {self.keys_dir}"
                )
        return self._backend_obj

    def backend_name(self) -> str:
        """``"keyring:<backend>"`` for the OS keyring, ``"file"`` for key files."""
        backend = self._backend()
        if backend is None:
            return "file"
        return f"keyring:{getattr(backend, 'name', _class_path(backend))}"

    # ---------------------------------------------------------------- secret slots

    def _identity_slots(self, name: str) -> tuple[_Slot, _Slot]:
        return (
            _Slot(
                f"identity/{name}/age",
                self.keys_dir / f"{name}.age-key.age",
                f"the age key of {name}",
            ),
            _Slot(
                f"identity/{name}/ssh",
                self.keys_dir / f"{name}.ssh-key.age",
                f"the signing key of {name}",
            ),
        )

    def _pseudonym_slot(self, key_id: str) -> _Slot:
        return _Slot(
            f"pseudonym/{key_id}",
            self.keys_dir / "pseudonym" / f"{key_id}.key.age",
            f"the pseudonym key {key_id}",
        )

    def _ledger_slot(self) -> _Slot:
        return _Slot(
            "ledger/signing", self.keys_dir / "ledger.ssh-key.age", "the ledger signing key"
        )

    def _witness_slot(self) -> _Slot:
        # A directory of its own: identity names cannot hold "/", so no identity can clash.
        return _Slot(
            "witness/signing",
            self.keys_dir / "witness" / "ssh-key.age",
            "the witness signing key",
        )

    def _keyring_error(self, exc: Exception, action: str) -> KeyUnavailableError:
        return KeyUnavailableError(
            f"the OS keyring failed to {action}: {type(exc).__name__}",
            hint="unlock your desktop keyring, or set SECUREXPORT_KEYSTORE=file",
        )

    def _read(self, slot: _Slot) -> str | None:
        """The secret in ``slot``, unlocked at most once per KeyStore; None if absent."""
        if slot.username in self._cache:
            return self._cache[slot.username]
        if slot.path.exists() or slot.path.is_symlink():
            value = self._read_file(slot)
        else:
            backend = self._backend()
            if backend is None:
                return None
            try:
                stored = backend.get_password(self.service, slot.username)
            except Exception as exc:  # noqa: BLE001 - backends raise many kinds of errors
                raise self._keyring_error(exc, f"read {slot.label}") from None
            if stored is None:
                return None
            value = str(stored)
        self._cache[slot.username] = value
        return value

    def _read_file(self, slot: _Slot) -> str:
        check_not_world_readable(slot.path)
        limit = DEFAULT_LIMITS.max_key_file_bytes
        try:
            fd = os.open(slot.path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                blob = fh.read(limit + 1)
        except OSError as exc:
            raise FileError(f"cannot read {slot.path}: {exc.strerror}") from exc
        if len(blob) > limit:
            raise KeyUnavailableError(f"{slot.path} is too large to be a key file")
        plain = self._unlock(slot, blob)
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyUnavailableError(f"{slot.path} does not hold a securexport key") from None

    def _unlock(self, slot: _Slot, blob: bytes) -> bytes:
        max_log_n = DEFAULT_LIMITS.max_scrypt_log_n
        try:
            if self._passphrase is not None:
                try:
                    return agefile.passphrase_decrypt(blob, self._passphrase, max_log_n=max_log_n)
                except KeyUnavailableError:
                    pass  # another passphrase protects this file: ask for it
            if getattr(_background, "active", False):
                raise _PromptNeeded
            tries = self._env.passphrase_tries
            for attempt in range(1, tries + 1):
                phrase = self._env.passphrase(f"unlock {slot.label}")
                try:
                    # A wrong passphrase fails scrypt's header MAC: age's own check.
                    plain = agefile.passphrase_decrypt(blob, phrase, max_log_n=max_log_n)
                    break
                except KeyUnavailableError as exc:
                    if attempt < tries:
                        print("wrong passphrase; try again", file=self._env.stderr)
                        continue
                    raise KeyUnavailableError(
                        agefile.WRONG_PASSPHRASE_MESSAGE
                        + (f" ({tries} tries)" if tries > 1 else ""),
                        hint=f"check the passphrase (or {PASSPHRASE_FILE_VAR}) for {slot.path}",
                    ) from exc
        except VerificationError as exc:
            raise KeyUnavailableError(
                f"{slot.path} is damaged or not a securexport key file ({exc})"
            ) from None
        self._passphrase = phrase
        return plain

    def unlock_in_background(
        self, unlock: Callable[[], _T], *, start: bool = True
    ) -> BackgroundUnlock[_T]:
        """Run ``unlock`` (calls of this store's methods) on another thread, now or at
        :meth:`BackgroundUnlock.start`; see :class:`BackgroundUnlock`."""
        job = BackgroundUnlock(unlock)
        return job.start() if start else job

    def _new_passphrase(self) -> bytes:
        if self._passphrase is None:
            if getattr(_background, "active", False):
                raise _PromptNeeded
            self._passphrase = self._env.passphrase("protect your key files", confirm=True)
        return self._passphrase

    def _store_for_new(self) -> str:
        return "file" if self._backend() is None else "keyring"

    def _write(self, slot: _Slot, value: str, store: str) -> None:
        if store == "keyring":
            try:
                self._backend_or_fail().set_password(self.service, slot.username, value)
            except KeyUnavailableError:
                raise
            except Exception as exc:  # noqa: BLE001 - backends raise many kinds of errors
                raise self._keyring_error(exc, f"store {slot.label}") from None
        else:
            phrase = self._new_passphrase()
            ensure_private_dir(slot.path.parent)
            blob = agefile.passphrase_encrypt(value.encode(), phrase, log_n=self._log_n)
            atomic_write(slot.path, blob, overwrite=False)
        self._cache[slot.username] = value

    def _backend_or_fail(self) -> Any:
        backend = self._backend()
        if backend is None:
            raise KeyUnavailableError("no secure OS keyring is available")
        return backend

    def _delete(self, slot: _Slot) -> None:
        self._cache.pop(slot.username, None)
        try:
            slot.path.unlink(missing_ok=True)
        except OSError as exc:
            raise FileError(f"cannot remove {slot.path}: {exc.strerror}") from exc
        backend = self._backend() if self._env.keystore != "file" else None
        if backend is None:
            return
        import keyring.errors

        try:
            backend.delete_password(self.service, slot.username)
        except keyring.errors.PasswordDeleteError:
            pass  # not there
        except Exception as exc:  # noqa: BLE001 - backends raise many kinds of errors
            raise self._keyring_error(exc, f"delete {slot.label}") from None

    def _exists(self, slot: _Slot) -> bool:
        return slot.path.exists() or slot.path.is_symlink() or self._read(slot) is not None

    # ---------------------------------------------------------------- identities

    def _pub_path(self, name: str) -> Path:
        return self.keys_dir / f"{name}.pub"

    def create_identity(self, name: str) -> PublicIdentity:
        """Create identity ``name``: an age key and an Ed25519 key; secrets in the store."""
        check_name(name)
        if name in RESERVED_NAMES:
            raise UsageError(f"the name {name!r} is reserved", hint="choose another name")
        pub_path = self._pub_path(name)
        if pub_path.exists() or pub_path.is_symlink():
            raise UsageError(f"an identity named {name!r} exists already")
        self._env.home.ensure()
        store = self._store_for_new()
        age_secret, recipient = agefile.generate_identity()
        ssh_key = ed25519.generate()
        signing = SshPublicKey(ed25519.public_key_bytes(ssh_key))
        age_slot, ssh_slot = self._identity_slots(name)
        written: list[_Slot] = []
        try:
            for slot, value in (
                (age_slot, f"# public key: {recipient}\n{age_secret}\n"),
                (ssh_slot, ed25519.to_openssh_pem(ssh_key)),
            ):
                self._write(slot, value, store)
                written.append(slot)
            atomic_write(
                pub_path,
                f"{recipient}\n{signing.to_line(name)}\n".encode(),
                mode=0o644,
                overwrite=False,
            )
        except BaseException:
            for slot in written:
                try:
                    self._delete(slot)
                except (FileError, KeyUnavailableError):
                    pass
            raise
        return PublicIdentity(name, recipient, signing, store)

    def public_identity(self, name: str) -> PublicIdentity:
        check_name(name)
        path = self._pub_path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyUnavailableError(
                f"there is no identity named {name!r}", hint=f"securexport keys new {name}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FileError(f"cannot read {path}: {exc}") from exc
        lines = text.splitlines()
        try:
            if len(lines) != 2:
                raise InvalidKeyError("expected two lines")
            recipient = agefile.check_recipient(lines[0])
            signing = SshPublicKey.parse(lines[1])
        except InvalidKeyError as exc:
            raise KeyUnavailableError(f"{path} is damaged: {exc}") from None
        store = "file" if self._identity_slots(name)[0].path.exists() else "keyring"
        return PublicIdentity(name, recipient, signing, store)

    def list_identities(self) -> list[PublicIdentity]:
        if not self.keys_dir.is_dir():
            return []
        names = sorted(
            p.name[: -len(".pub")]
            for p in self.keys_dir.glob("*.pub")
            if NAME_RE.fullmatch(p.name[: -len(".pub")])
        )
        return [self.public_identity(n) for n in names]

    def delete_identity(self, name: str) -> None:
        self.public_identity(name)  # raises if there is none
        for slot in self._identity_slots(name):
            self._delete(slot)
        try:
            self._pub_path(name).unlink()
        except OSError as exc:
            raise FileError(f"cannot remove {self._pub_path(name)}: {exc.strerror}") from exc

    def age_identity(self, name: str) -> str:
        """The ``AGE-SECRET-KEY-1…`` of identity ``name`` (unlocks it once)."""
        public = self.public_identity(name)
        slot = self._identity_slots(name)[0]
        text = self._require(slot, name)
        secrets = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        try:
            if len(secrets) != 1 or agefile.recipient_of(secrets[0]) != public.age_recipient:
                raise InvalidKeyError("mismatch")
        except InvalidKeyError:
            raise KeyUnavailableError(f"{slot.label} does not match {name}.pub") from None
        return secrets[0]

    def signing_key(self, name: str) -> ed25519.SigningKey:
        """The Ed25519 signing key of identity ``name`` (unlocks it once)."""
        public = self.public_identity(name)
        slot = self._identity_slots(name)[1]
        key = _load_openssh_ed25519(self._require(slot, name), slot.label)
        if SshPublicKey(ed25519.public_key_bytes(key)) != public.signing_key:
            raise KeyUnavailableError(f"{slot.label} does not match {name}.pub")
        return key

    def _require(self, slot: _Slot, name: str) -> str:
        value = self._read(slot)
        if value is None:
            where = "the OS keyring" if self._backend() is not None else str(slot.path)
            raise KeyUnavailableError(
                f"{slot.label} is missing from {where}",
                hint=f"securexport keys delete {name}, then securexport keys new {name}",
            )
        return value

    # ---------------------------------------------------------------- pseudonym keys

    def create_pseudonym_key(self, key_id: str) -> str:
        """Create a 32-byte pseudonym key; return its ``key_check`` for the approval."""
        check_key_id(key_id)
        if self.has_pseudonym_key(key_id):
            raise UsageError(f"a pseudonym key {key_id!r} exists already")
        self._env.home.ensure()
        key = os.urandom(PSEUDONYM_KEY_BYTES)
        self._write(
            self._pseudonym_slot(key_id),
            pseudonym_document(key_id, key).decode(),
            self._store_for_new(),
        )
        return key_check(key)

    def has_pseudonym_key(self, key_id: str) -> bool:
        check_key_id(key_id)
        return self._exists(self._pseudonym_slot(key_id))

    def pseudonym_key(self, key_id: str) -> bytes:
        check_key_id(key_id)
        text = self._read(self._pseudonym_slot(key_id))
        if text is None:
            raise KeyUnavailableError(
                f"there is no pseudonym key {key_id!r} here",
                hint="ask the data owner to export it to you, then: "
                "securexport pseudonym-key import FILE",
            )
        stored_id, key = parse_pseudonym_document(text.encode())
        if stored_id != key_id:
            raise KeyUnavailableError(f"the stored pseudonym key {key_id!r} is damaged")
        return key

    def export_pseudonym_key(self, key_id: str, recipient: str) -> bytes:
        """The key, age-encrypted to ``recipient`` (the caller checks the recipient is approved)."""
        try:
            agefile.check_recipient(recipient)
        except InvalidKeyError as exc:
            raise UsageError(f"not an age recipient: {exc}") from None
        key = self.pseudonym_key(key_id)
        return agefile.encrypt(pseudonym_document(key_id, key), [recipient])

    def import_pseudonym_key(self, data: bytes) -> tuple[str, str]:
        """Decrypt an exported pseudonym key with our identities, store it; (key_id, key_check)."""
        if len(data) > DEFAULT_LIMITS.max_key_file_bytes:
            raise KeyUnavailableError("this file is too large to be an exported pseudonym key")
        identities = [self.age_identity(p.name) for p in self.list_identities()]
        if not identities:
            raise KeyUnavailableError(
                "there is no identity here to decrypt the pseudonym key with",
                hint="securexport keys new NAME, and send its age recipient to the data owner",
            )
        plain = agefile.decrypt(data, identities, max_bytes=4096)
        key_id, key = parse_pseudonym_document(plain)
        if self.has_pseudonym_key(key_id):
            if hmac.compare_digest(self.pseudonym_key(key_id), key):
                return key_id, key_check(key)
            raise UsageError(
                f"a different pseudonym key {key_id!r} exists here already",
                hint="ask the data owner which key is current; delete the old one first",
            )
        self._env.home.ensure()
        self._write(self._pseudonym_slot(key_id), plain.decode(), self._store_for_new())
        return key_id, key_check(key)

    # ---------------------------------------------------------------- ledger key

    def ledger_signing_key(self, create: bool = True) -> ed25519.SigningKey:
        """The ledger's own Ed25519 key (never an identity's); created on first use."""
        slot = self._ledger_slot()
        pem = self._read(slot)
        if pem is None:
            if not create:
                raise KeyUnavailableError("there is no ledger signing key here")
            self._env.home.ensure()
            key = ed25519.generate()
            self._write(slot, ed25519.to_openssh_pem(key), self._store_for_new())
            return key
        return _load_openssh_ed25519(pem, slot.label)

    # ---------------------------------------------------------------- witness key

    def witness_signing_key(self, create: bool = True) -> ed25519.SigningKey:
        """The data owner's witness key (DESIGN.md §12): cosigns exporters' checkpoints.

        Its own Ed25519 key, never an identity's or the ledger's; created on first use.
        """
        slot = self._witness_slot()
        pem = self._read(slot)
        if pem is None:
            if not create:
                raise KeyUnavailableError("there is no witness key here")
            self._env.home.ensure()
            key = ed25519.generate()
            self._write(slot, ed25519.to_openssh_pem(key), self._store_for_new())
            return key
        return _load_openssh_ed25519(pem, slot.label)


def _load_openssh_ed25519(pem: str, label: str) -> ed25519.SigningKey:
    try:
        return ed25519.from_openssh_pem(pem)
    except ed25519.NotEd25519Error:
        raise KeyUnavailableError(f"{label} is not an Ed25519 key") from None
    except ed25519.PrivateKeyError:
        raise KeyUnavailableError(f"{label} is damaged") from None


def open_keystore(env: Environment) -> KeyStore:
    """This home's key store.  New key files cost ``env.scrypt_log_n`` (2^18 unless the caller
    built its Environment with less); a config.toml that tries to lower it is refused."""
    refuse_kdf_setting(env.home)
    return KeyStore(env, scrypt_log_n=env.scrypt_log_n)
