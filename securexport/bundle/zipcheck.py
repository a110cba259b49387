"""A strict, pure ZIP structure checker: bytes in, a list of entries (or a refusal) out.

ZIP readers disagree about archives that are slightly wrong: prefixed or appended data, a
second end record, local headers that differ from the central directory, entries that share
their data (zip bombs), names that extract somewhere else on another system.  pyzipper and the
standard library accept most of these (DESIGN.md §9).  This module accepts only the plain
shape that securexport writes and every reader reads the same way:

* the archive starts with the first local header and ends with the end record (no comment);
* entries are contiguous: each local header starts where the previous entry's data (and data
  descriptor) ends, and the central directory starts where the last entry ends;
* every central record agrees with its local header (name, method, flags, CRC, sizes, AES);
* names are relative, clean, unique (also ignoring case and Unicode normalisation) UTF-8;
* no symlinks, directories, disk spanning, strong/traditional encryption or unknown extras.

It reads from a seekable binary file and never decompresses or decrypts, so it is cheap to run
before anything else and easy to fuzz.  Every refusal is a :class:`ZipStructureError`
(exit code 5) with a short reason that names no entry (names are untrusted input).
"""

from __future__ import annotations

import dataclasses
import stat
import struct
import unicodedata
from typing import Protocol

from securexport.errors import VerificationError

METHOD_STORED = 0
METHOD_DEFLATED = 8
METHOD_AES = 99

EXTRA_ZIP64 = 0x0001
EXTRA_AES = 0x9901
_ALLOWED_EXTRAS = frozenset({EXTRA_ZIP64, EXTRA_AES})
# 0x7075 (Info-ZIP Unicode path) in particular is refused: 7z would extract under that name.

FLAG_ENCRYPTED = 0x0001
FLAG_DATA_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800
# Deflate option bits 1-2 are harmless; everything else (strong encryption, patched data,
# encrypted central directory, reserved bits) is refused.
_ALLOWED_FLAGS = FLAG_ENCRYPTED | 0x0002 | 0x0004 | FLAG_DATA_DESCRIPTOR | FLAG_UTF8

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
_EOCD = struct.Struct("<IHHHHIIH")  # 22 bytes
_EOCD64 = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
_LOCATOR64 = struct.Struct("<IIQI")  # 20 bytes
_SIG_LOCAL = 0x04034B50
_SIG_CENTRAL = 0x02014B50
_SIG_EOCD = 0x06054B50
_SIG_EOCD64 = 0x06064B50
_SIG_LOCATOR64 = 0x07064B50
_SIG_DESCRIPTOR = 0x08074B50

_U16 = 0xFFFF
_U32 = 0xFFFFFFFF
_AES_SALT = {1: 8, 2: 12, 3: 16}
AES_PASSWORD_VERIFIER = 2
AES_MAC = 10


class SeekableReader(Protocol):
    """What the checker needs from a file: a BinaryIO, io.BytesIO or bundle.RangeReader."""

    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def read(self, size: int = ..., /) -> bytes | None: ...


class ZipStructureError(VerificationError):
    """The archive is not the plain, unambiguous ZIP that securexport accepts."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed archive: {reason}")


@dataclasses.dataclass(frozen=True)
class AesInfo:
    """The WinZip AES extra field (0x9901): AE-1/AE-2, strength 1-3, the real method."""

    version: int
    strength: int
    actual_method: int

    @property
    def overhead(self) -> int:
        """Bytes the encryption adds to an entry's data: salt, password verifier, MAC."""
        return _AES_SALT[self.strength] + AES_PASSWORD_VERIFIER + AES_MAC


@dataclasses.dataclass(frozen=True)
class ZipEntry:
    name: str
    method: int
    compressed_size: int
    uncompressed_size: int
    crc: int
    header_offset: int
    data_offset: int
    flags: int
    extra: dict[int, bytes] = dataclasses.field(hash=False)
    aes: AesInfo | None

    @property
    def data_end(self) -> int:
        return self.data_offset + self.compressed_size


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe relative member path, or None if it is."""
    if not name:
        return "empty name"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name):
        return "control character in name"
    if "\\" in name:
        return "backslash in name"
    if ":" in name:
        return "drive letter or stream name"
    if name.startswith("/"):
        return "absolute name"
    parts = name.split("/")
    if any(part == "" for part in parts):
        return "empty path component (or a directory)"
    if any(part in (".", "..") for part in parts):
        return "dot path component"
    return None


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _read_at(fp: SeekableReader, offset: int, length: int, size: int) -> bytes:
    if offset < 0 or length < 0 or offset + length > size:
        raise ZipStructureError("a structure lies beyond the end of the file")
    fp.seek(offset)
    data = fp.read(length)
    if data is None or len(data) != length:
        raise ZipStructureError("the file is shorter than its stated size")
    return data


def _parse_extra(data: bytes) -> dict[int, bytes]:
    extra: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ZipStructureError("truncated extra field")
        header_id, length = struct.unpack_from("<HH", data, pos)
        body = data[pos + 4 : pos + 4 + length]
        if len(body) != length:
            raise ZipStructureError("truncated extra field")
        if header_id not in _ALLOWED_EXTRAS:
            raise ZipStructureError(f"extra field 0x{header_id:04x} is not allowed")
        if header_id in extra:
            raise ZipStructureError("repeated extra field")
        extra[header_id] = body
        pos += 4 + length
    return extra


def _zip64(extra: dict[int, bytes], values: list[int], sentinels: list[int]) -> list[int]:
    """Replace saturated header values by the ZIP64 extra field's, which must hold exactly those."""
    body = extra.get(EXTRA_ZIP64)
    wanted = [i for i, (v, s) in enumerate(zip(values, sentinels, strict=True)) if v == s]
    if body is None:
        if wanted:
            raise ZipStructureError("saturated size without a ZIP64 extra field")
        return values
    if len(body) != 8 * len(wanted) or not wanted:
        raise ZipStructureError("ZIP64 extra field does not match the header")
    out = list(values)
    for n, i in enumerate(wanted):
        (out[i],) = struct.unpack_from("<Q", body, 8 * n)
    return out


def _local_zip64(extra: dict[int, bytes], usize: int, csize: int) -> tuple[int, int]:
    """A local ZIP64 field holds both sizes; the header's must be saturated or the same."""
    body = extra.get(EXTRA_ZIP64)
    if body is None:
        if _U32 in (usize, csize):
            raise ZipStructureError("saturated size without a ZIP64 extra field")
        return usize, csize
    if len(body) != 16:
        raise ZipStructureError("ZIP64 extra field does not match the header")
    usize64, csize64 = struct.unpack("<QQ", body)
    if usize not in (_U32, usize64) or csize not in (_U32, csize64):
        raise ZipStructureError("ZIP64 extra field does not match the header")
    return usize64, csize64


def _parse_aes(extra: dict[int, bytes]) -> AesInfo | None:
    body = extra.get(EXTRA_AES)
    if body is None:
        return None
    if len(body) != 7:
        raise ZipStructureError("bad AES extra field")
    version, vendor, strength, actual = struct.unpack("<H2sBH", body)
    if version not in (1, 2) or vendor != b"AE" or strength not in _AES_SALT:
        raise ZipStructureError("bad AES extra field")
    return AesInfo(version=version, strength=strength, actual_method=actual)


def _end_records(fp: SeekableReader, size: int, max_entries: int) -> tuple[int, int, int, int]:
    """Return (entry count, central directory offset, its size, where it must end)."""
    if size < _EOCD.size:
        raise ZipStructureError("no end of central directory record")
    eocd_at = size - _EOCD.size
    sig, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = _EOCD.unpack(
        _read_at(fp, eocd_at, _EOCD.size, size)
    )
    if sig != _SIG_EOCD:
        raise ZipStructureError("no end of central directory record at the end of the file")
    if comment_len:
        raise ZipStructureError("archive comment")
    values = [disk, cd_disk, n_disk, n_total, cd_size, cd_offset]
    locator_at = eocd_at - _LOCATOR64.size
    has_locator = (
        locator_at >= 0
        and struct.unpack("<I", _read_at(fp, locator_at, 4, size))[0] == _SIG_LOCATOR64
    )
    saturated = n_disk == _U16 or n_total == _U16 or cd_size == _U32 or cd_offset == _U32
    cd_end = eocd_at
    if has_locator or saturated:
        if not has_locator:
            raise ZipStructureError("ZIP64 values without a ZIP64 locator")
        _, loc_disk, eocd64_offset, n_disks = _LOCATOR64.unpack(
            _read_at(fp, locator_at, _LOCATOR64.size, size)
        )
        cd_end = locator_at - _EOCD64.size
        if loc_disk != 0 or n_disks != 1:
            raise ZipStructureError("multi-disk archive")
        if eocd64_offset != cd_end:
            raise ZipStructureError("ZIP64 end record is not where its locator says")
        sig64, rec_size, _, _, disk64, cd_disk64, n_disk64, n_total64, cd_size64, cd_off64 = (
            _EOCD64.unpack(_read_at(fp, cd_end, _EOCD64.size, size))
        )
        if sig64 != _SIG_EOCD64 or rec_size != _EOCD64.size - 12:
            raise ZipStructureError("bad ZIP64 end record")
        values64 = [disk64, cd_disk64, n_disk64, n_total64, cd_size64, cd_off64]
        limits = [_U16, _U16, _U16, _U16, _U32, _U32]
        for v, v64, lim in zip(values, values64, limits, strict=True):
            if v not in (v64, lim):
                raise ZipStructureError("ZIP64 end record disagrees with the end record")
        values = values64
    disk, cd_disk, n_disk, n_total, cd_size, cd_offset = values
    if disk != 0 or cd_disk != 0:
        raise ZipStructureError("multi-disk archive")
    if n_disk != n_total:
        raise ZipStructureError("entry counts disagree")
    if n_total > max_entries:
        raise ZipStructureError(f"more than {max_entries} entries")
    if cd_offset + cd_size != cd_end:
        raise ZipStructureError("data between the central directory and the end record")
    if n_total * _CENTRAL.size > cd_size:
        raise ZipStructureError("central directory too small for its entries")
    return n_total, cd_offset, cd_size, cd_end


def _central_records(cd: bytes, count: int, allow_methods: set[int]) -> list[ZipEntry]:
    entries: list[ZipEntry] = []
    pos = 0
    for _ in range(count):
        if pos + _CENTRAL.size > len(cd):
            raise ZipStructureError("truncated central directory")
        (
            sig,
            made_by,
            _needed,
            flags,
            method,
            _time,
            _date,
            crc,
            csize,
            usize,
            name_len,
            extra_len,
            comment_len,
            disk,
            _internal,
            external,
            offset,
        ) = _CENTRAL.unpack_from(cd, pos)
        pos += _CENTRAL.size
        raw_name = cd[pos : pos + name_len]
        raw_extra = cd[pos + name_len : pos + name_len + extra_len]
        pos += name_len + extra_len + comment_len
        if sig != _SIG_CENTRAL or pos > len(cd):
            raise ZipStructureError("bad central directory record")
        if comment_len:
            raise ZipStructureError("entry comment")
        if disk != 0:
            raise ZipStructureError("multi-disk archive")
        name = _decode_name(raw_name, flags)
        extra = _parse_extra(raw_extra)
        usize, csize, offset = _zip64(extra, [usize, csize, offset], [_U32, _U32, _U32])
        aes = _check_entry_kind(flags, method, extra, allow_methods, made_by, external)
        entries.append(
            ZipEntry(
                name=name,
                method=method,
                compressed_size=csize,
                uncompressed_size=usize,
                crc=crc,
                header_offset=offset,
                data_offset=-1,  # filled in from the local header
                flags=flags,
                extra=extra,
                aes=aes,
            )
        )
    if pos != len(cd):
        raise ZipStructureError("central directory size disagrees with its records")
    return entries


def _decode_name(raw: bytes, flags: int) -> str:
    try:
        name = raw.decode("utf-8") if flags & FLAG_UTF8 else raw.decode("ascii")
    except UnicodeDecodeError:
        raise ZipStructureError("entry name is not valid UTF-8 (or ASCII)") from None
    problem = name_problem(name)
    if problem:
        raise ZipStructureError(problem)
    return name


def _check_entry_kind(
    flags: int,
    method: int,
    extra: dict[int, bytes],
    allow_methods: set[int],
    made_by: int,
    external: int,
) -> AesInfo | None:
    if flags & ~_ALLOWED_FLAGS:
        raise ZipStructureError("unsupported entry flags")
    if method not in allow_methods:
        raise ZipStructureError(f"compression method {method} is not allowed here")
    aes = _parse_aes(extra)
    encrypted = bool(flags & FLAG_ENCRYPTED)
    if (method == METHOD_AES) != (aes is not None) or encrypted != (aes is not None):
        raise ZipStructureError("inconsistent encryption flags")
    if made_by >> 8 == 3 or external >> 16:  # Unix attributes (or any in the high half)
        kind = stat.S_IFMT(external >> 16)
        if kind not in (0, stat.S_IFREG):
            raise ZipStructureError("entry is a symlink, directory or special file")
    if external & 0x10:  # MS-DOS directory attribute
        raise ZipStructureError("entry is a directory")
    return aes


def _check_local(fp: SeekableReader, entry: ZipEntry, limit: int) -> tuple[int, int]:
    """Check ``entry``'s local header and descriptor; return (data offset, end of entry)."""
    header = _read_at(fp, entry.header_offset, _LOCAL.size, limit)
    sig, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = _LOCAL.unpack(header)
    if sig != _SIG_LOCAL:
        raise ZipStructureError("no local header where the central directory points")
    raw = _read_at(fp, entry.header_offset + _LOCAL.size, name_len + extra_len, limit)
    extra = _parse_extra(raw[name_len:])
    if raw[:name_len] != entry.name.encode("utf-8") or flags != entry.flags:
        raise ZipStructureError("local header disagrees with the central directory")
    if method != entry.method or _parse_aes(extra) != entry.aes:
        raise ZipStructureError("local header disagrees with the central directory")
    usize, csize = _local_zip64(extra, usize, csize)
    data_offset = entry.header_offset + _LOCAL.size + name_len + extra_len
    end = data_offset + entry.compressed_size
    if end > limit:
        raise ZipStructureError("entry data lies beyond the central directory")
    central = (entry.crc, entry.compressed_size, entry.uncompressed_size)
    if flags & FLAG_DATA_DESCRIPTOR:
        if (crc, csize, usize) not in ((0, 0, 0), central):
            raise ZipStructureError("local header disagrees with the central directory")
        wide = EXTRA_ZIP64 in extra
        fmt = "<IIQQ" if wide else "<IIII"
        length = struct.calcsize(fmt)
        sig_dd, *described = struct.unpack(fmt, _read_at(fp, end, length, limit))
        if sig_dd != _SIG_DESCRIPTOR or tuple(described) != central:
            raise ZipStructureError("data descriptor disagrees with the central directory")
        end += length
    elif (crc, csize, usize) != central:
        raise ZipStructureError("local header disagrees with the central directory")
    return data_offset, end


def inspect_zip(
    fp: SeekableReader, size: int, *, max_entries: int, allow_methods: set[int]
) -> list[ZipEntry]:
    """Check the ZIP archive in ``fp[0:size]``; return its entries in file order.

    ``allow_methods`` is the set of raw header methods accepted (99 for WinZip AES, whose real
    method is in ``entry.aes.actual_method``).  Raises :class:`ZipStructureError`.
    """
    count, cd_offset, cd_size, _ = _end_records(fp, size, max_entries)
    cd = _read_at(fp, cd_offset, cd_size, size)
    entries = _central_records(cd, count, allow_methods)

    seen: set[str] = set()
    for entry in entries:
        folded = _fold(entry.name)
        if folded in seen:
            raise ZipStructureError("duplicate entry name (or names differing only by case)")
        seen.add(folded)

    checked: list[ZipEntry] = []
    position = 0  # entries must tile [0, cd_offset) exactly: no prefix, gap or overlap
    for entry in sorted(entries, key=lambda e: e.header_offset):
        if entry.header_offset != position:
            raise ZipStructureError("entries overlap or leave unexplained data between them")
        data_offset, position = _check_local(fp, entry, cd_offset)
        if entry.method == METHOD_STORED and entry.compressed_size != entry.uncompressed_size:
            raise ZipStructureError("stored entry with differing sizes")
        if entry.aes is not None:
            stored = entry.aes.actual_method == METHOD_STORED
            plain = entry.compressed_size - entry.aes.overhead
            if plain < 0 or (stored and plain != entry.uncompressed_size):
                raise ZipStructureError("encrypted entry sizes are inconsistent")
        checked.append(dataclasses.replace(entry, data_offset=data_offset))
    if position != cd_offset:
        raise ZipStructureError("unexplained data before the central directory")
    return checked
