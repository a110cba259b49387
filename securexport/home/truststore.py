"""The trust store: which approver and ledger keys this installation trusts (DESIGN.md §3, §11).

Approvers live in ``$SECUREXPORT_HOME/allowed_signers``, an OpenSSH allowed_signers file that
``ssh-keygen -Y verify -f`` reads as is.  securexport writes one line per approver::

    NAME namespaces="securexport-approval-v1,securexport-revocation-v1" ssh-ed25519 AAAA…

and reads lines written by hand in OpenSSH syntax too (principal lists, options, comments).  A
line makes an approver only when it holds an ``ssh-ed25519`` key, is not ``cert-authority``, and
its ``namespaces="…"`` patterns match the approval namespace (a line without ``namespaces`` is
not an approver: roles are explicit).  Options securexport cannot honour (``valid-after``,
``valid-before``) make the file refused rather than silently widened.

Ledger keys (C2SP signed-note verifier keys, ``<name>+<8 hex>+<base64>``) live in
``$SECUREXPORT_HOME/trusted_logs``, one ``NAME KEY`` per line: allowed_signers holds only SSH
keys.  Keys are compared by their 32 key bytes, never by the whole line.  Both files are written
atomically with mode 0600 and refused when group- or world-writable.
"""

from __future__ import annotations

import base64
import binascii
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from securexport._crypto import note
from securexport._crypto.sshkey import (
    KEY_TYPE,
    InvalidKeyError,
    SshPublicKey,
    read_ssh_string,
)
from securexport._crypto.sshsig import NAMESPACE_APPROVAL, NAMESPACE_REVOCATION
from securexport.environment import Home
from securexport.errors import FileError, UsageError
from securexport.fsutil import atomic_write, ensure_private_dir
from securexport.limits import DEFAULT_LIMITS, Limits

Role = Literal["approver", "ledger"]
ROLES: tuple[Role, ...] = ("approver", "ledger")
APPROVER_NAMESPACES = (NAMESPACE_APPROVAL, NAMESPACE_REVOCATION)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

_WS = " \t"
_ALLOWED_SIGNERS_HEADER = (
    "# securexport trust store: approvers, in OpenSSH allowed_signers format.\n"
    "# Check a signature with: ssh-keygen -Y verify -f allowed_signers -I NAME "
    f"-n {NAMESPACE_APPROVAL} -s FILE.sig < FILE\n"
)
_TRUSTED_LOGS_HEADER = "# securexport trusted ledger keys: NAME <signed-note verifier key>\n"
# Key types OpenSSH may list in allowed_signers; only ssh-ed25519 can make an approver.
_SSH_KEY_TYPE_RE = re.compile(
    r"(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com|ssh-ed448|[a-z0-9-]+-cert-v01@openssh\.com)"
)


# --- signed-note verifier keys (C2SP signed-note) --------------------------------------------


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """Parse a C2SP signed-note Ed25519 verifier key ``<name>+<hash>+<base64(0x01||key)>``.

    Returns the key name and the 32 key bytes.  The parsing is :mod:`securexport._crypto.note`'s
    (hash over name and key checked, canonical base64, small-order keys refused); failures are
    :class:`InvalidKeyError` (a ``ValueError``).
    """
    try:
        key = note.parse_verifier_key(text)
    except ValueError as exc:
        raise InvalidKeyError(f"invalid verifier key: {exc}") from exc
    return key.name, key.public_key


def format_verifier_key(name: str, raw: bytes) -> str:
    """The verifier-key text for ``name`` and a 32-byte Ed25519 key (inverse of the parser)."""
    try:
        return note.make_verifier_key(name, raw)
    except ValueError as exc:
        raise InvalidKeyError(f"invalid verifier key: {exc}") from exc


# --- the model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedKey:
    """One trusted key.  ``name`` is the principal field (approvers) or the ledger's local name."""

    name: str
    role: Role
    key_text: str  # "ssh-ed25519 AAAA…" (no comment) or the verifier key
    ssh: SshPublicKey | None

    @property
    def raw_key(self) -> bytes:
        """The 32 Ed25519 key bytes: what keys are compared by."""
        if self.ssh is not None:
            return self.ssh.raw
        return parse_verifier_key(self.key_text)[1]

    @property
    def fingerprint(self) -> str:
        """``SHA256:…`` for SSH keys; the signed-note key ID ``<name>+<hash>`` for ledger keys."""
        if self.ssh is not None:
            return self.ssh.fingerprint()
        return self.key_text.rsplit("+", 1)[0]


@dataclass(frozen=True)
class _SignerLine:
    lineno: int
    principals: tuple[str, ...]
    principals_text: str
    namespaces: str | None
    cert_authority: bool
    key_type: str
    key: SshPublicKey | None  # ssh-ed25519 only

    def matches_namespace(self, namespace: str) -> bool:
        return self.namespaces is not None and match_pattern_list(namespace, self.namespaces)

    def is_signer_for(self, namespace: str) -> bool:
        return (
            self.key is not None and not self.cert_authority and self.matches_namespace(namespace)
        )

    def names(self) -> set[str]:
        return {self.principals_text, *self.principals}


@dataclass(frozen=True)
class _LogLine:
    lineno: int
    name: str
    key_text: str
    raw: bytes


# --- OpenSSH allowed_signers parsing ----------------------------------------------------------


def _match_pattern(text: str, pattern: str) -> bool:
    """OpenSSH ``match_pattern``: ``*`` and ``?`` wildcards, everything else literal."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None


def match_pattern_list(text: str, patterns: str) -> bool:
    """OpenSSH ``match_pattern_list``: comma-separated patterns; a matching ``!pattern`` vetoes."""
    matched = False
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if _match_pattern(text, pattern[1:]):
                return False
        elif _match_pattern(text, pattern):
            matched = True
    return matched


def _split_token(text: str) -> tuple[str, str]:
    """The leading run of non-blank characters, and the rest with leading blanks removed."""
    end = 0
    while end < len(text) and text[end] not in _WS:
        end += 1
    return text[:end], text[end:].lstrip(_WS)


def _split_options(text: str, where: str) -> tuple[str, str]:
    """Options run up to the first blank outside double quotes (as sshkey_advance_past_options)."""
    quoted = False
    for index, ch in enumerate(text):
        if ch == "\\":
            raise FileError(f"{where}: backslashes in options are not supported")
        if ch == '"':
            quoted = not quoted
        elif ch in _WS and not quoted:
            return text[:index], text[index:].lstrip(_WS)
    raise FileError(f"{where}: missing key" if not quoted else f"{where}: unterminated quote")


def _split_commas(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _parse_options(text: str, where: str) -> tuple[str | None, bool]:
    """``cert-authority`` and ``namespaces="…"``; options securexport cannot honour are errors."""
    namespaces: str | None = None
    cert_authority = False
    seen: set[str] = set()
    for option in _split_commas(text):
        name, sep, value = option.partition("=")
        lname = name.lower()
        if not name or lname in seen:
            raise FileError(f"{where}: malformed options")
        seen.add(lname)
        if lname == "cert-authority" and not sep:
            cert_authority = True
            continue
        if lname not in ("namespaces", "valid-after", "valid-before"):
            raise FileError(f"{where}: unknown option {name[:40]!r}")
        if not (sep and len(value) >= 2 and value[0] == value[-1] == '"' and value.count('"') == 2):
            raise FileError(f"{where}: option {name} needs one double-quoted value")
        if lname != "namespaces":
            raise FileError(
                f"{where}: option {name} is not supported by securexport",
                hint="remove the option, or remove the line and trust the key again",
            )
        namespaces = value[1:-1]
    return namespaces, cert_authority


def _parse_key(key_type: str, rest: str, where: str) -> SshPublicKey | None:
    b64, _comment = _split_token(rest)
    if not b64:
        raise FileError(f"{where}: missing key")
    if key_type == KEY_TYPE:
        try:
            return SshPublicKey.parse(f"{key_type} {b64}")
        except InvalidKeyError as exc:
            raise FileError(f"{where}: {exc}", hint="remove or fix the line") from exc
    try:
        blob = base64.b64decode(b64, validate=True)
        blob_type, _ = read_ssh_string(blob, 0)
    except (binascii.Error, ValueError) as exc:
        raise FileError(f"{where}: invalid key") from exc
    if blob_type.decode("latin-1") != key_type:
        raise FileError(f"{where}: key type does not match its data")
    return None


def _parse_signer_line(line: str, lineno: int, path: Path) -> _SignerLine | None:
    where = f"{path}:{lineno}"
    text = line.strip(_WS)
    if not text or text.startswith("#"):
        return None
    principals_text, rest = _split_token(text)
    if '"' in principals_text:
        raise FileError(f"{where}: quoted principals are not supported")
    principals = tuple(principals_text.split(","))
    if any(not p for p in principals):
        raise FileError(f"{where}: empty principal")
    first, _ = _split_token(rest)
    namespaces: str | None = None
    cert_authority = False
    if not _SSH_KEY_TYPE_RE.fullmatch(first):
        options, rest = _split_options(rest, where)
        namespaces, cert_authority = _parse_options(options, where)
        first, _ = _split_token(rest)
        if not first:
            raise FileError(f"{where}: missing key")
        if not _SSH_KEY_TYPE_RE.fullmatch(first):
            raise FileError(f"{where}: unknown key type {first[:40]!r}")
    _, key_rest = _split_token(rest)
    key = _parse_key(first, key_rest, where)
    return _SignerLine(lineno, principals, principals_text, namespaces, cert_authority, first, key)


# --- the store ----------------------------------------------------------------------------------


def _read_trust_file(path: Path, max_bytes: int) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise FileError(f"{path} is not a regular file")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise FileError(
            f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o}); "
            "refusing to trust it",
            hint=f"chmod 600 {path}",
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise FileError(f"{path} is larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileError(f"{path} is not UTF-8 text") from exc


def _key_line(text: str) -> str:
    """The one key in ``text``: a key, or a file's contents whose only non-comment line it is."""
    lines = [ln.strip() for ln in text.splitlines()]
    keys = [ln for ln in lines if ln and not ln.startswith("#")]
    if not keys:
        raise UsageError("no key given", hint="pass an 'ssh-ed25519 AAAA…' line or a .pub file")
    if len(keys) > 1:
        raise UsageError(
            "expected exactly one key, found several lines",
            hint="pass one key per 'trust add'",
        )
    return keys[0]


def _lines(text: str, path: Path) -> list[tuple[int, str]]:
    """Numbered lines, split on LF only (as OpenSSH reads them); control characters refused.

    ``str.splitlines`` would also split on form feeds and U+2028, turning part of a comment
    into a line OpenSSH never sees.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in line):
            raise FileError(
                f"{path}:{number}: control character in the line (CR line endings?)",
                hint="save the file with LF line endings and plain text",
            )
    return list(enumerate(lines, 1))


def _splice(text: str, drop: set[int]) -> str:
    lines = text.split("\n")
    kept = [line for number, line in enumerate(lines, 1) if number not in drop]
    return "\n".join(kept)


class TrustStore:
    """Approvers (``allowed_signers``) and ledger keys (``trusted_logs``) of one installation."""

    def __init__(self, home: Home, limits: Limits = DEFAULT_LIMITS) -> None:
        self._home = home
        self._limits = limits

    @property
    def allowed_signers_path(self) -> Path:
        return self._home.allowed_signers

    @property
    def trusted_logs_path(self) -> Path:
        return self._home.trusted_logs

    # reading

    def _signer_lines(self) -> tuple[str, list[_SignerLine]]:
        path = self._home.allowed_signers
        text = _read_trust_file(path, self._limits.max_trust_file_bytes) or ""
        entries = []
        for number, line in _lines(text, path):
            entry = _parse_signer_line(line, number, path)
            if entry is not None:
                entries.append(entry)
        return text, entries

    def _log_lines(self) -> tuple[str, list[_LogLine]]:
        path = self._home.trusted_logs
        text = _read_trust_file(path, self._limits.max_trust_file_bytes) or ""
        entries = []
        for number, line in _lines(text, path):
            stripped = line.strip(_WS)
            if not stripped or stripped.startswith("#"):
                continue
            parts = stripped.split()
            where = f"{path}:{number}"
            if len(parts) != 2 or not NAME_RE.fullmatch(parts[0]):
                raise FileError(f"{where}: expected 'NAME <verifier key>'")
            try:
                _, raw = parse_verifier_key(parts[1])
            except InvalidKeyError as exc:
                raise FileError(f"{where}: {exc}", hint="remove or fix the line") from exc
            entries.append(_LogLine(number, parts[0], parts[1], raw))
        return text, entries

    @staticmethod
    def _approver(entry: _SignerLine) -> TrustedKey:
        assert entry.key is not None
        return TrustedKey(entry.principals_text, "approver", entry.key.to_line(), entry.key)

    @staticmethod
    def _ledger(entry: _LogLine) -> TrustedKey:
        return TrustedKey(entry.name, "ledger", entry.key_text, None)

    def ignored_lines(self) -> list[str]:
        """allowed_signers lines that are valid OpenSSH but make no approver, and why."""
        path = self._home.allowed_signers
        _, signers = self._signer_lines()
        notes = []
        for e in signers:
            if e.key is None:
                reason = f"{e.key_type} keys cannot sign approvals (ssh-ed25519 only)"
            elif e.cert_authority:
                reason = "cert-authority keys are not supported"
            elif e.namespaces is None:
                reason = f'no namespaces="{NAMESPACE_APPROVAL}" option'
            elif not e.matches_namespace(NAMESPACE_APPROVAL):
                reason = f"namespaces do not include {NAMESPACE_APPROVAL}"
            else:
                continue
            notes.append(f"{path}:{e.lineno}: {reason}")
        return notes

    def approver_for(
        self, key: SshPublicKey, namespace: str = NAMESPACE_APPROVAL
    ) -> TrustedKey | None:
        """The trusted approver holding ``key`` (compared by key bytes), or None.

        An approver is a line whose namespaces match the approval namespace; pass another
        ``namespace`` (e.g. revocations) to require that the approver's line allows it as well.
        """
        _, signers = self._signer_lines()
        for entry in signers:
            if (
                entry.key == key
                and entry.is_signer_for(NAMESPACE_APPROVAL)
                and entry.matches_namespace(namespace)
            ):
                return self._approver(entry)
        return None

    def approver_name(self, key: SshPublicKey, namespace: str = NAMESPACE_APPROVAL) -> str | None:
        """The name of the trusted approver holding ``key``, or None (see :meth:`approver_for`);
        the lookup the authorisation rules take."""
        found = self.approver_for(key, namespace)
        return found.name if found else None

    def ledger_origin(self, name: str) -> tuple[str, str]:
        """The verifier key text and origin of the trusted ledger ``name``; UsageError if none."""
        keys = [k for k in self.ledger_keys() if k.name == name]
        if not keys:
            raise UsageError(
                f"no trusted ledger named {name!r}",
                hint="securexport trust add NAME KEY --role ledger (the exporter's 'ledger key')",
            )
        return keys[0].key_text, parse_verifier_key(keys[0].key_text)[0]

    def ledger_keys(self) -> list[TrustedKey]:
        _, logs = self._log_lines()
        return [self._ledger(e) for e in logs]

    # writing

    def add(self, name: str, key: str, role: str) -> TrustedKey:
        """Trust ``key`` (an ``ssh-ed25519`` line, a verifier key, or a file's text) as ``name``."""
        role_of(role)
        if not NAME_RE.fullmatch(name):
            raise UsageError(
                f"invalid name {name[:80]!r}",
                hint="use 1-64 characters: letters, digits and . _ @ -, starting with a letter "
                "or digit",
            )
        line = _key_line(key)
        trusted: TrustedKey
        if role == "approver":
            try:
                ssh = SshPublicKey.parse(line)
            except InvalidKeyError as exc:
                looks_ledger = line.count("+") >= 2 and " " not in line
                raise UsageError(
                    f"not a usable approver key: {exc}",
                    hint="this looks like a ledger verifier key: use --role ledger"
                    if looks_ledger
                    else "pass the approver's 'ssh-ed25519 AAAA…' public key (.pub file)",
                ) from None
            trusted = TrustedKey(name, "approver", ssh.to_line(), ssh)
        else:
            try:
                parse_verifier_key(line)
            except InvalidKeyError as exc:
                raise UsageError(
                    f"not a usable ledger key: {exc}",
                    hint="pass the ledger's signed-note verifier key '<name>+<hash>+<key>'",
                ) from None
            trusted = TrustedKey(name, "ledger", line, None)

        signer_text, signers = self._signer_lines()
        log_text, logs = self._log_lines()
        for entry in signers:
            if name in entry.names():
                raise UsageError(
                    f"{name!r} is already named in {self._home.allowed_signers} "
                    f"(line {entry.lineno})",
                    hint=f"securexport trust remove {name}",
                )
            if entry.key is not None and entry.key.raw == trusted.raw_key:
                raise UsageError(f"this key is already trusted as {entry.principals_text!r}")
        for log in logs:
            if log.name == name:
                raise UsageError(
                    f"{name!r} is already named in {self._home.trusted_logs} (line {log.lineno})",
                    hint=f"securexport trust remove {name}",
                )
            if log.raw == trusted.raw_key:
                raise UsageError(f"this key is already trusted as {log.name!r}")

        ensure_private_dir(self._home.path)
        if role == "approver":
            namespaces = ",".join(APPROVER_NAMESPACES)
            new = f'{name} namespaces="{namespaces}" {trusted.key_text}\n'
            self._write(self._home.allowed_signers, signer_text or _ALLOWED_SIGNERS_HEADER, new)
        else:
            self._write(
                self._home.trusted_logs, log_text or _TRUSTED_LOGS_HEADER, f"{name} {line}\n"
            )
        return trusted

    @staticmethod
    def _write(path: Path, text: str, new_line: str) -> None:
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write(path, (text + new_line).encode("utf-8"))

    def remove(self, name: str) -> TrustedKey:
        """Stop trusting ``name``: every approver or ledger line that names it."""
        signer_text, signers = self._signer_lines()
        log_text, logs = self._log_lines()
        signer_hits = [
            e for e in signers if name in e.names() and e.is_signer_for(NAMESPACE_APPROVAL)
        ]
        log_hits = [e for e in logs if e.name == name]
        if not signer_hits and not log_hits:
            unused = [e.lineno for e in signers if name in e.names()]
            raise UsageError(
                f"{name!r} is not a trusted approver or ledger",
                hint=f"line {unused[0]} of {self._home.allowed_signers} names it but is not "
                "used by securexport; edit the file by hand"
                if unused
                else "securexport trust list",
            )
        for entry in signer_hits:
            if entry.principals_text != name:
                raise UsageError(
                    f"{self._home.allowed_signers}:{entry.lineno} also names other principals "
                    f"({entry.principals_text}); refusing to drop them",
                    hint="edit the line by hand, or remove it by its whole principal list",
                )
        removed = [self._approver(e) for e in signer_hits] + [self._ledger(e) for e in log_hits]
        if signer_hits:
            new_text = _splice(signer_text, {e.lineno for e in signer_hits})
            atomic_write(self._home.allowed_signers, new_text.encode("utf-8"))
        if log_hits:
            new_text = _splice(log_text, {e.lineno for e in log_hits})
            atomic_write(self._home.trusted_logs, new_text.encode("utf-8"))
        return removed[0]

    def list(self) -> list[TrustedKey]:
        """Every approver (in file order), then every ledger key."""
        _, signers = self._signer_lines()
        _, logs = self._log_lines()
        approvers = [self._approver(e) for e in signers if e.is_signer_for(NAMESPACE_APPROVAL)]
        return approvers + [self._ledger(e) for e in logs]


def role_of(value: str) -> Role:
    """Validate a role string from the command line."""
    for role in ROLES:
        if value == role:
            return role
    raise UsageError(f"unknown role {value!r}", hint="use --role approver or --role ledger")


__all__ = [
    "ROLES",
    "Role",
    "TrustStore",
    "TrustedKey",
    "format_verifier_key",
    "match_pattern_list",
    "parse_verifier_key",
]
