"""Writing and reading the bundle container (DESIGN.md §4): the AES payload and the outer ZIP.

The payload (``payload.zip``) is a ZIP of WinZip AES-256 (AE-2) deflated entries written with
pyzipper; the bundle is a plain ZIP of stored members in :data:`MEMBER_ORDER`.  Both are checked
with :mod:`securexport.bundle.zipcheck` before anything is trusted: the payload right after it is
written (pyzipper writes plain ZIPs without complaint), and every bundle before a member is read
or a byte decrypted.  The manifest, signatures and receipt are other modules' business; this
module only carries their bytes.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import io
import os
import secrets
import stat
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

from securexport._crypto.kdf import hkdf_sha256
from securexport.bundle.zipcheck import (
    METHOD_AES,
    METHOD_DEFLATED,
    METHOD_STORED,
    ZipEntry,
    ZipStructureError,
    inspect_zip,
    name_problem,
)
from securexport.errors import FileError, SecurexportError, VerificationError
from securexport.fsutil import PRIVATE_DIR, PRIVATE_FILE, os_error_message, partial_output
from securexport.limits import Limits

PAYLOAD = "payload.zip"
KEY_FILE = "payload.key.age"
MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.json.sig"
APPROVAL = "approval.toml"
APPROVAL_SIG = "approval.toml.sig"
RECEIPT = "receipt.tlog"
README = "README.txt"
COSIGNATURE = "receipt.cosig"  # optional: the witness's cosigned checkpoint (DESIGN.md §12)

# DESIGN.md §4's order; the optional cosignature last, so it can be appended later.
MEMBER_ORDER: tuple[str, ...] = (
    PAYLOAD,
    KEY_FILE,
    MANIFEST,
    MANIFEST_SIG,
    APPROVAL,
    APPROVAL_SIG,
    RECEIPT,
    README,
    COSIGNATURE,
)
OPTIONAL_MEMBERS = frozenset({COSIGNATURE})
REQUIRED_MEMBERS = frozenset(MEMBER_ORDER) - OPTIONAL_MEMBERS

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # archives leak no time
CHUNK = 1024 * 1024
PAYLOAD_DEFLATE_LEVEL = 1  # see PayloadWriter.open_entry
HMAC_INFO = b"securexport/file-hmac/v1"
_AES_STRENGTH_256 = 3
_AE_2 = 2
_MEMBER_MODE = (stat.S_IFREG | PRIVATE_FILE) << 16


def new_payload_password() -> str:
    """32 random bytes as 43 base64url characters (no padding, no newline)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def file_hmac_key(password: str) -> bytes:
    """The key of the manifest's per-file HMAC-SHA-256, derived from the payload password."""
    return hkdf_sha256(password.encode("ascii"), info=HMAC_INFO)


@contextlib.contextmanager
def _disk_errors(what: str) -> Iterator[None]:
    """Turn OSError (and pyzipper's ValueError hiding one, DESIGN.md §9) into FileError."""
    try:
        yield
    except OSError as exc:
        raise FileError(f"cannot write {what}: {os_error_message(exc)}") from exc
    except ValueError as exc:
        cause = exc.__context__
        if isinstance(cause, OSError):
            raise FileError(f"cannot write {what}: {os_error_message(cause)}") from exc
        raise


class RangeReader(io.RawIOBase):
    """A read-only, seekable view of ``fp[offset : offset + length]`` (no copy).

    It seeks ``fp`` before every read, so several views may share one file object.
    """

    def __init__(self, fp: BinaryIO, offset: int, length: int) -> None:
        super().__init__()
        self._fp = fp
        self._offset = offset
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        if base + pos < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = base + pos
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._length - self._pos))
        if n == 0:
            return 0
        self._fp.seek(self._offset + self._pos)
        got = self._fp.readinto(view[:n])  # type: ignore[attr-defined]
        self._pos += got
        return int(got)


# --------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class FileRecord:
    """What the manifest says about one payload file (never its contents)."""

    path: str
    bytes: int
    rows: int
    hmac_sha256: str


class PayloadEntry:
    """A streaming UTF-8 text sink into one AES-256 entry; from :meth:`PayloadWriter.open_entry`."""

    def __init__(self, writer: PayloadWriter, name: str, stream: BinaryIO, key: bytes) -> None:
        self._writer = writer
        self.name = name
        self._stream = stream
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._buffer = bytearray()
        self._bytes = 0
        self._rows = 0
        self.record: FileRecord | None = None

    def write(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def write_bytes(self, data: bytes) -> None:
        """Append text already encoded as UTF-8."""
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self._flush()

    def add_rows(self, n: int) -> None:
        self._rows += n

    def _flush(self) -> None:
        data = bytes(self._buffer)
        self._buffer.clear()
        self._mac.update(data)
        self._bytes += len(data)
        with _disk_errors("the payload"):
            self._stream.write(data)

    def close(self) -> FileRecord:
        if self.record is None:
            self._flush()
            with _disk_errors("the payload"):
                self._stream.close()
            self.record = FileRecord(self.name, self._bytes, self._rows, self._mac.hexdigest())
            self._writer._entry_closed(self)
        return self.record

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()


class PayloadWriter:
    """Write ``payload.zip`` into ``fileobj`` (opened ``w+b``; the caller owns its path).

    Usage::

        with PayloadWriter(fh, password) as writer:
            with writer.open_entry("data/offenders.csv") as entry:
                entry.write(text); entry.add_rows(n)
        records = writer.records

    :meth:`close` writes the central directory, then reads it back and refuses to finish unless
    every entry is WinZip AES-256 AE-2.  Disk errors become :class:`FileError` (exit 7).
    """

    def __init__(self, fileobj: BinaryIO, password: str) -> None:
        if not (fileobj.readable() and fileobj.seekable()) or fileobj.tell() != 0:
            raise ValueError("the payload file must be empty, readable and seekable (w+b)")
        self._fileobj = fileobj
        self._key = file_hmac_key(password)
        import pyzipper  # here, not at import: it costs ~50 ms that plan and verify never use

        self._zip = pyzipper.AESZipFile(
            fileobj, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
        )
        self._zip.setpassword(password.encode("ascii"))
        self._zip.setencryption(pyzipper.WZ_AES, nbits=256, force_wz_aes_version=_AE_2)
        self._current: PayloadEntry | None = None
        self._names: set[str] = set()
        self.records: list[FileRecord] = []
        self._closed = False

    def open_entry(self, name: str) -> PayloadEntry:
        problem = name_problem(name)
        if problem or name.casefold() in self._names:
            raise ValueError(f"bad payload entry name {name!r}: {problem or 'duplicate'}")
        if self._current is not None or self._closed:
            raise ValueError("another payload entry is still open, or the payload is closed")
        import pyzipper

        info = pyzipper.zipfile_aes.AESZipInfo(name, date_time=FIXED_DATE_TIME)
        info.compress_type = pyzipper.ZIP_DEFLATED
        # Deflate level 1: 3x faster than zlib's default 6 on the export's CSV (0.7 s instead
        # of 2.1 s per 45 MB), about 14% larger (docs/performance.md).
        info._compresslevel = PAYLOAD_DEFLATE_LEVEL
        info.external_attr = _MEMBER_MODE
        info.create_system = 3
        with _disk_errors("the payload"):
            stream = self._zip.open(info, "w", force_zip64=True)
        self._names.add(name.casefold())
        self._current = PayloadEntry(self, name, stream, self._key)
        return self._current

    def _entry_closed(self, entry: PayloadEntry) -> None:
        assert entry.record is not None
        self.records.append(entry.record)
        self._current = None

    def close(self) -> list[FileRecord]:
        if self._closed:
            return self.records
        if self._current is not None:
            self._current.close()
        with _disk_errors("the payload"):
            self._zip.close()
            self._fileobj.flush()
            end = self._fileobj.tell()
        self._closed = True
        self._check_written(end)
        return self.records

    def _check_written(self, end: int) -> None:
        try:
            entries = inspect_zip(
                self._fileobj, end, max_entries=len(self.records), allow_methods={METHOD_AES}
            )
        except ZipStructureError as exc:
            raise SecurexportError(f"the payload just written is not as required: {exc}") from exc
        finally:
            self._fileobj.seek(end)
        ok = [e.name for e in entries if _is_aes256_ae2(e)] == [r.path for r in self.records]
        if not ok:
            raise SecurexportError("the payload just written is not AES-256 (AE-2) encrypted")

    def abandon(self) -> None:
        """Stop without writing the end records (the caller deletes the partial file)."""
        if self._current is not None:
            # Mark pyzipper's entry stream closed without flushing it into the file.
            io.BufferedIOBase.close(self._current._stream)  # type: ignore[arg-type]
            self._current = None
        self._zip._writing = False
        self._zip._didModify = False
        with contextlib.suppress(Exception):
            self._zip.close()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()


def _is_aes256_ae2(entry: ZipEntry) -> bool:
    aes = entry.aes
    return (
        entry.method == METHOD_AES
        and aes is not None
        and aes.version == _AE_2
        and aes.strength == _AES_STRENGTH_256
        and aes.actual_method in (METHOD_STORED, METHOD_DEFLATED)
    )


def write_bundle(fileobj: BinaryIO, members: Sequence[tuple[str, bytes | Path]]) -> None:
    """Write the outer bundle: stored entries, fixed timestamps, in ``MEMBER_ORDER``.

    A :class:`Path` member (the payload) is streamed from disk (ZIP64 when it needs it).
    """
    names = [name for name, _ in members]
    known = [n for n in MEMBER_ORDER if n in names]
    if names != known or not set(names) >= REQUIRED_MEMBERS:
        raise ValueError(f"bundle members must be the known names in MEMBER_ORDER: {names}")
    with _disk_errors("the bundle"), zipfile.ZipFile(fileobj, "w", zipfile.ZIP_STORED) as zf:
        for name, content in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = _MEMBER_MODE
            info.create_system = 3
            if isinstance(content, Path):
                _copy_into(zf, info, content)
            else:
                zf.writestr(info, content)


def _copy_into(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> None:
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        info.file_size = size
        copied = 0
        with zf.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT // 2) as dst:
            while chunk := src.read(CHUNK):
                copied += len(chunk)
                dst.write(chunk)
        if copied != size:
            raise FileError(f"{path} changed while it was being copied into the bundle")


def add_cosignature_member(path: Path, cosignature: bytes, limits: Limits) -> None:
    """Rewrite the bundle at ``path`` with ``receipt.cosig`` set (replacing an older one).

    Written to ``path.partial`` (0600, exclusive), fsynced, then renamed over ``path``; the
    other members are copied byte for byte, the payload streamed.
    """
    with (
        open_bundle(path, limits) as bundle,
        partial_output(path, replace=True) as partial,
        open(partial, "r+b") as out,
        _disk_errors("the bundle"),
    ):
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            for name in MEMBER_ORDER:
                if name != COSIGNATURE and not bundle.has(name):
                    continue
                info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = _MEMBER_MODE
                info.create_system = 3
                if name == PAYLOAD:
                    reader = bundle.payload_reader()
                    info.file_size = bundle.payload_range()[1]
                    big = info.file_size >= zipfile.ZIP64_LIMIT // 2
                    with zf.open(info, "w", force_zip64=big) as dst:
                        while chunk := reader.read(CHUNK):
                            dst.write(chunk)
                elif name == COSIGNATURE:
                    zf.writestr(info, cosignature)
                else:
                    zf.writestr(info, bundle.member(name))
        out.flush()


# --------------------------------------------------------------------------------- reading


def _member_caps(limits: Limits) -> dict[str, int]:
    return {
        README: limits.max_manifest_bytes,
        MANIFEST: limits.max_manifest_bytes,
        MANIFEST_SIG: limits.max_signature_bytes,
        APPROVAL: limits.max_approval_bytes,
        APPROVAL_SIG: limits.max_signature_bytes,
        KEY_FILE: limits.max_key_file_bytes,
        RECEIPT: limits.max_receipt_bytes,
        COSIGNATURE: limits.max_receipt_bytes,
    }


class OpenedBundle:
    """A structurally checked bundle: small members in memory, the payload as a byte range."""

    def __init__(self, path: Path, fp: BinaryIO, entries: list[ZipEntry], limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self._fp = fp
        self._entries = {e.name: e for e in entries}
        self._members: dict[str, bytes] = {}
        self._payload_sha256: str | None = None
        caps = _member_caps(limits)
        for entry in entries:
            if entry.name == PAYLOAD:
                continue
            if entry.uncompressed_size > caps[entry.name]:
                raise VerificationError(f"bundle member {entry.name} is larger than allowed")
            fp.seek(entry.data_offset)
            data = fp.read(entry.compressed_size)
            if len(data) != entry.compressed_size or zlib.crc32(data) != entry.crc:
                raise ZipStructureError("member checksum mismatch")
            self._members[entry.name] = data

    def has(self, name: str) -> bool:
        return name in self._entries

    def member(self, name: str) -> bytes:
        """The bytes of a small member (every member except the payload)."""
        if name == PAYLOAD:
            raise ValueError("the payload is read with payload_range()/payload_reader()")
        try:
            return self._members[name]
        except KeyError:
            raise VerificationError(f"the bundle has no {name}") from None

    def payload_range(self) -> tuple[int, int]:
        """(offset, length) of payload.zip inside the bundle file."""
        entry = self._entries[PAYLOAD]
        return entry.data_offset, entry.compressed_size

    def payload_reader(self) -> RangeReader:
        return RangeReader(self._fp, *self.payload_range())

    def payload_sha256(self) -> str:
        """SHA-256 of payload.zip, streamed (and its stored CRC checked on the way)."""
        if self._payload_sha256 is None:
            digest = hashlib.sha256()
            crc = 0
            reader = self.payload_reader()
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                crc = zlib.crc32(chunk, crc)
            if reader.tell() != self.payload_range()[1] or crc != self._entries[PAYLOAD].crc:
                raise ZipStructureError("member checksum mismatch")
            self._payload_sha256 = digest.hexdigest()
        return self._payload_sha256

    def close(self) -> None:
        self._fp.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_bundle(path: Path, limits: Limits) -> OpenedBundle:
    """Open and structurally check a bundle; raises VerificationError (5) or FileError (7)."""
    try:
        fp = open(path, "rb")  # noqa: SIM115 - owned by the OpenedBundle
    except OSError as exc:
        raise FileError(f"cannot open {path}: {os_error_message(exc)}") from exc
    try:
        st = os.fstat(fp.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise FileError(f"{path} is not a regular file")
        if st.st_size > limits.max_bundle_bytes:
            raise VerificationError(
                f"{path} is larger than the bundle size limit ({limits.max_bundle_bytes} bytes)"
            )
        entries = inspect_zip(
            fp, st.st_size, max_entries=limits.max_bundle_entries, allow_methods={METHOD_STORED}
        )
        names = [e.name for e in entries]
        if any(n not in MEMBER_ORDER for n in names):
            raise ZipStructureError("unexpected member in the bundle")
        if not set(names) >= REQUIRED_MEMBERS:
            missing = sorted(REQUIRED_MEMBERS - set(names))
            raise VerificationError(f"the bundle lacks {', '.join(missing)}")
        if names != [n for n in MEMBER_ORDER if n in names]:
            raise ZipStructureError("bundle members are out of order")
        return OpenedBundle(path, fp, entries, limits)
    except BaseException:
        fp.close()
        raise


# ------------------------------------------------------------------------ payload reading


def check_payload(
    bundle: OpenedBundle, expected: Mapping[str, int], limits: Limits
) -> list[ZipEntry]:
    """Check payload.zip's structure against the manifest (path → plaintext bytes).

    Nothing is decrypted: names, AES-256 AE-2, sizes, expansion ratio, entry count.
    """
    entries = inspect_zip(
        bundle.payload_reader(),
        bundle.payload_range()[1],
        max_entries=limits.max_payload_entries,
        allow_methods={METHOD_AES},
    )
    if sorted(e.name for e in entries) != sorted(expected):
        raise VerificationError("payload entry names differ from the manifest's files")
    for entry in entries:
        if not _is_aes256_ae2(entry):
            raise VerificationError("a payload entry is not AES-256 (AE-2) encrypted")
        if entry.uncompressed_size != expected[entry.name]:
            raise VerificationError("a payload entry's size differs from the manifest's")
        if entry.uncompressed_size > limits.max_expansion_ratio * entry.compressed_size:
            raise VerificationError("a payload entry expands beyond the allowed ratio")
    return entries


def _create_parents(dest_dir: Path, relative: str, created: list[Path]) -> Path:
    """Create the directories of ``relative`` under ``dest_dir`` (0700, no symlinks)."""
    base = dest_dir.resolve(strict=True)
    current = base
    for part in relative.split("/")[:-1]:
        current = current / part
        try:
            os.mkdir(current, PRIVATE_DIR)
            created.append(current)
        except FileExistsError:
            if current.is_symlink() or not current.is_dir():
                raise VerificationError("payload path collides with an existing file") from None
    target = current / relative.split("/")[-1]
    if not target.resolve().is_relative_to(base):
        raise VerificationError("payload path escapes the output directory")
    return target


def extract_payload(
    bundle: OpenedBundle,
    password: str,
    expected: Mapping[str, tuple[int, str]],
    dest_dir: Path,
) -> None:
    """Decrypt every payload entry into ``dest_dir`` and check its plaintext HMAC and size.

    ``expected`` maps path → (bytes, hmac hex) from the manifest.  On any failure everything
    written is removed and VerificationError (or FileError for a disk error) is raised.
    """
    import pyzipper  # see PayloadWriter

    entries = check_payload(bundle, {p: n for p, (n, _) in expected.items()}, bundle.limits)
    key = file_hmac_key(password)
    created: list[Path] = []
    try:
        with pyzipper.AESZipFile(bundle.payload_reader()) as zf:
            zf.setpassword(password.encode("ascii"))
            for entry in entries:
                size, want = expected[entry.name]
                target = _create_parents(dest_dir, entry.name, created)
                _extract_one(zf, entry.name, target, size, want, key, created)
    except SecurexportError:
        _remove(created)
        raise
    except (
        RuntimeError,
        ValueError,
        EOFError,
        zlib.error,
        zipfile.BadZipFile,
        pyzipper.BadZipFile,
    ) as exc:
        _remove(created)
        raise VerificationError(
            "the payload failed to decrypt or verify (wrong key, or tampered)"
        ) from exc
    except BaseException:
        _remove(created)
        raise


def _extract_one(
    zf: Any, name: str, target: Path, size: int, want: str, key: bytes, created: list[Path]
) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, PRIVATE_FILE)
    except FileExistsError:
        raise VerificationError("payload path collides with an existing file") from None
    except OSError as exc:
        raise FileError(f"cannot create {target}: {os_error_message(exc)}") from exc
    created.append(target)
    mac = hmac.new(key, digestmod=hashlib.sha256)
    count = 0
    with os.fdopen(fd, "wb") as out, zf.open(name) as src:
        while chunk := src.read(CHUNK):
            count += len(chunk)
            if count > size:
                raise VerificationError("a payload entry is larger than the manifest says")
            mac.update(chunk)
            try:
                out.write(chunk)
            except OSError as exc:
                raise FileError(f"cannot write {target}: {os_error_message(exc)}") from exc
        # Reaching EOF made pyzipper check the entry's AES HMAC.
        try:
            out.flush()
            os.fsync(out.fileno())
        except OSError as exc:
            raise FileError(f"cannot write {target}: {os_error_message(exc)}") from exc
    if count != size or not hmac.compare_digest(mac.hexdigest(), want.lower()):
        raise VerificationError("a payload file does not match the manifest's HMAC")


def _remove(created: list[Path]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()


# --------------------------------------------------------------------------------- README


def readme_text(dataset: str, exporter: str, recipients: Sequence[str]) -> str:
    """The bundle's README.txt: how to check and open it, with securexport or standard tools."""
    names = ", ".join(recipients) or "(none)"
    return f"""\
securexport bundle
==================

This file is an export of the dataset "{dataset}" by "{exporter}", encrypted for: {names}.
It is a plain ZIP archive. The data is in payload.zip (WinZip AES-256 entries); its password
is encrypted to the recipients' age keys in payload.key.age. Nothing here is readable without
a recipient's key. Do not copy the decrypted files anywhere the data's conditions forbid.

With securexport
----------------

    securexport verify BUNDLE
    securexport decrypt BUNDLE --as YOUR-KEY-NAME -o OUTPUT-DIR

`decrypt` checks the signatures, the approval, the ledger receipt, every hash and the data
against the approval before it writes anything.

With standard tools only (ssh-keygen, sha256sum, age, 7z)
---------------------------------------------------------

1. Unpack this bundle (members are stored, not compressed):

       7z x BUNDLE -obundle && cd bundle

2. Check the exporter's signature on the manifest. allowed_signers holds a line
   `{exporter} namespaces="securexport-manifest-v1" ssh-ed25519 AAAA...` with the exporter's
   key as listed in approval.toml (whose own signature is checked the same way, with
   -n securexport-approval-v1 -s approval.toml.sig < approval.toml, against the approver):

       ssh-keygen -Y verify -f allowed_signers -I {exporter} \\
           -n securexport-manifest-v1 -s manifest.json.sig < manifest.json

3. Check that the payload and key file are the ones the manifest names:

       sha256sum payload.zip payload.key.age
       # compare with "payload"."sha256" and the key file's sha256 in manifest.json

4. Recover the payload password with your age identity, then extract:

       age -d -i key.txt payload.key.age        # prints the password (43 characters)
       7z x -p"$(age -d -i key.txt payload.key.age)" payload.zip -odata

5. The manifest lists every file with its size, row count and an HMAC-SHA-256 of its
   contents under HKDF-SHA256(password, info "securexport/file-hmac/v1"); securexport decrypt
   checks those for you.
"""
