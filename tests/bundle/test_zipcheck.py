"""securexport.bundle.zipcheck: the strict ZIP structure checker, against hand-crafted hostile archives.

The archives are packed byte by byte with ``struct`` (see :func:`build`), so each test states
exactly which field is wrong.  ``build`` is also used by tests/bundle/test_container.py.
"""

from __future__ import annotations

import io
import shutil
import stat
import struct
import subprocess
import zipfile
import zlib
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securexport.bundle.zipcheck import (
    EXTRA_AES,
    METHOD_AES,
    METHOD_DEFLATED,
    METHOD_STORED,
    ZipEntry,
    ZipStructureError,
    inspect_zip,
    name_problem,
)
from securexport.errors import VerificationError

UTF8 = 0x0800
REGULAR = (stat.S_IFREG | 0o644) << 16
UNIX_MADE_BY = (3 << 8) | 20


def aes_extra(version: int = 2, strength: int = 3, actual: int = 8) -> bytes:
    return struct.pack("<HHH2sBH", EXTRA_AES, 7, version, b"AE", strength, actual)


@dataclass
class E:
    """One entry of a hand-built archive; ``local_*`` override the local header only."""

    name: bytes
    data: bytes = b"hello"
    method: int = METHOD_STORED
    flags: int = UTF8
    crc: int | None = None
    csize: int | None = None
    usize: int | None = None
    extra: bytes = b""
    external: int = REGULAR
    made_by: int = UNIX_MADE_BY
    local_name: bytes | None = None
    local_method: int | None = None
    local_crc: int | None = None
    local_usize: int | None = None
    local_extra: bytes | None = None
    offset: int | None = None  # central directory's header offset (default: the real one)


def aes_entry(name: bytes, data: bytes = b"\x00" * 40, **kw: object) -> E:
    """An entry that *looks* like WinZip AES-256 AE-2 (random bytes as its 'ciphertext')."""
    return E(
        name,
        data=data,
        method=METHOD_AES,
        flags=UTF8 | 1,
        crc=0,
        usize=len(data) - 28 + 5,
        extra=aes_extra(),
        **kw,  # type: ignore[arg-type]
    )


def build(
    entries: list[E],
    *,
    prefix: bytes = b"",
    between: bytes = b"",
    before_cd: bytes = b"",
    suffix: bytes = b"",
    comment: bytes = b"",
    count: int | None = None,
    disk: int = 0,
    zip64_eocd: bool = False,
    central_only: list[E] | None = None,
) -> bytes:
    """Pack a ZIP archive field by field.  Offsets in headers ignore ``prefix`` (like junk)."""
    body = b""
    records = b""
    for i, e in enumerate(entries):
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        csize = len(e.data) if e.csize is None else e.csize
        usize = len(e.data) if e.usize is None else e.usize
        lname = e.name if e.local_name is None else e.local_name
        lextra = e.extra if e.local_extra is None else e.local_extra
        offset = len(body) if e.offset is None else e.offset
        local = struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            e.flags,
            e.method if e.local_method is None else e.local_method,
            0,
            0x21,
            crc if e.local_crc is None else e.local_crc,
            csize,
            usize if e.local_usize is None else e.local_usize,
            len(lname),
            len(lextra),
        )
        body += local + lname + lextra + e.data
        if i < len(entries) - 1:
            body += between
        records += central(e, crc=crc, csize=csize, usize=usize, offset=offset)
    for e in central_only or []:
        records += central(e, crc=zlib.crc32(e.data), csize=len(e.data), usize=len(e.data))
    body += before_cd
    n = len(entries) + len(central_only or []) if count is None else count
    cd_offset = len(body)
    tail = b""
    if zip64_eocd:
        eocd64_at = cd_offset + len(records)
        tail += struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(records), cd_offset
        )
        tail += struct.pack("<IIQI", 0x07064B50, 0, eocd64_at, 1)
        eocd = struct.pack(
            "<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment)
        )
    else:
        eocd = struct.pack(
            "<IHHHHIIH", 0x06054B50, disk, disk, n, n, len(records), cd_offset, len(comment)
        )
    return prefix + body + records + tail + eocd + comment + suffix


def central(e: E, *, crc: int, csize: int, usize: int, offset: int = 0) -> bytes:
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            e.made_by,
            20,
            e.flags,
            e.method,
            0,
            0x21,
            crc,
            csize,
            usize,
            len(e.name),
            len(e.extra),
            0,
            0,
            0,
            e.external,
            offset if e.offset is None else e.offset,
        )
        + e.name
        + e.extra
    )


def check(data: bytes, *, max_entries: int = 16, methods: set[int] | None = None) -> list[ZipEntry]:
    return inspect_zip(
        io.BytesIO(data),
        len(data),
        max_entries=max_entries,
        allow_methods={METHOD_STORED} if methods is None else methods,
    )


def rejected(data: bytes, **kw: object) -> str:
    with pytest.raises(ZipStructureError) as info:
        check(data, **kw)  # type: ignore[arg-type]
    assert isinstance(info.value, VerificationError)
    assert info.value.exit_code == 5
    return str(info.value)


GOOD = [E(b"data/a.csv", b"a,b\r\n1,2\r\n"), E(b"data/b.csv", b"x\r\n")]


# ------------------------------------------------------------------------ accepted archives


def test_hand_built_archive_is_accepted() -> None:
    entries = check(build(GOOD))
    assert [e.name for e in entries] == ["data/a.csv", "data/b.csv"]
    a, b = entries
    assert a.header_offset == 0
    assert a.data_offset == 30 + len(b"data/a.csv")
    assert b.header_offset == a.data_end
    assert a.crc == zlib.crc32(b"a,b\r\n1,2\r\n")
    assert a.aes is None


def test_empty_archive_is_accepted() -> None:
    assert check(build([])) == []


def test_stdlib_archive_with_zip64_local_fields_is_accepted() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("one.txt"), b"1" * 100)
        with zf.open(zipfile.ZipInfo("two.txt"), "w", force_zip64=True) as w:
            w.write(b"2" * 1000)
    entries = check(buf.getvalue())
    assert [(e.name, e.uncompressed_size) for e in entries] == [("one.txt", 100), ("two.txt", 1000)]
    assert entries[1].data_offset - entries[1].header_offset == 30 + 7 + 20  # ZIP64 local field


def test_data_descriptor_from_a_non_seekable_writer_is_accepted() -> None:
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.buf += b
            return len(b)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("s.txt", "w") as w:
        w.write(b"streamed " * 100)
    (entry,) = check(bytes(sink.buf), methods={METHOD_DEFLATED})
    assert entry.flags & 0x0008
    assert entry.uncompressed_size == 900


def test_zip64_end_records_are_accepted() -> None:
    (entry,) = check(build([E(b"x.txt")], zip64_eocd=True))
    assert entry.name == "x.txt"


def test_aes_entry_is_parsed() -> None:
    (entry,) = check(build([aes_entry(b"data/x.csv")]), methods={METHOD_AES})
    assert entry.method == METHOD_AES
    assert entry.aes is not None
    assert (entry.aes.version, entry.aes.strength, entry.aes.actual_method) == (2, 3, 8)
    assert entry.extra[EXTRA_AES] == aes_extra()[4:]


# ------------------------------------------------------------------------------ bad names

BAD_NAMES = [
    b"/etc/passwd",
    b"../x",
    b"a/../../b",
    b"./a",
    b"a\\b",
    b"..\\..\\x",
    b"C:x",
    b"C:/Windows/x",
    b"//server/share/x",
    b"a//b",
    b"dir/",
    b"a\x00b",
    b"a\nb",
    b"a\x7fb",
    b"",
    "a\u0085b".encode(),  # a C1 control character
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_names_are_rejected(name: bytes) -> None:
    rejected(build([E(name)]))


@pytest.mark.parametrize("name", [n.decode("utf-8") for n in BAD_NAMES], ids=repr)
def test_name_problem_names_each_bad_name(name: str) -> None:
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["data/offenders.csv", "a", "a.b/c-d_e f", "données/é.csv"])
def test_name_problem_accepts_clean_names(name: str) -> None:
    assert name_problem(name) is None


def test_invalid_utf8_name_is_rejected() -> None:
    rejected(build([E(b"caf\xe9.csv")]))  # Latin-1, UTF-8 flag set


def test_non_ascii_name_without_utf8_flag_is_rejected() -> None:
    rejected(build([E("café.csv".encode(), flags=0)]))  # would be CP437 elsewhere


def test_utf8_name_with_flag_is_accepted() -> None:
    (entry,) = check(build([E("café.csv".encode())]))
    assert entry.name == "café.csv"


def test_duplicate_names_are_rejected() -> None:
    assert "duplicate" in rejected(build([E(b"a.csv"), E(b"a.csv", b"other")]))


@pytest.mark.parametrize(
    ("first", "second"),
    [(b"Data.csv", b"data.CSV"), ("caf\u00e9".encode(), "cafe\u0301".encode())],
    ids=["case", "unicode-normalisation"],
)
def test_names_differing_only_by_case_or_normalisation_are_rejected(
    first: bytes, second: bytes
) -> None:
    rejected(build([E(first), E(second, b"x")]))


# ----------------------------------------------------------------------- entry kinds, flags


def test_symlink_entry_is_rejected() -> None:
    link = E(b"link", data=b"/etc/passwd", external=(stat.S_IFLNK | 0o777) << 16)
    assert "symlink" in rejected(build([link]))


def test_directory_entries_are_rejected() -> None:
    rejected(build([E(b"d", b"", external=(stat.S_IFDIR | 0o755) << 16)]))
    rejected(build([E(b"d", b"", external=0x10, made_by=20)]))  # MS-DOS directory attribute
    rejected(build([E(b"d/", b"")]))


def test_traditional_zipcrypto_is_rejected() -> None:
    rejected(build([E(b"x", flags=UTF8 | 1)]))


def test_aes_method_without_aes_field_is_rejected() -> None:
    rejected(
        build([E(b"x", b"\0" * 40, method=METHOD_AES, flags=UTF8 | 1, usize=12)]), methods={99}
    )


def test_aes_field_without_encrypted_flag_is_rejected() -> None:
    bad = aes_entry(b"x")
    bad.flags = UTF8
    rejected(build([bad]), methods={METHOD_AES})


def test_bad_aes_fields_are_rejected() -> None:
    short = struct.pack("<HH", EXTRA_AES, 6) + aes_extra()[4:10]
    for extra in (aes_extra(version=3), aes_extra(strength=4), short):
        bad = aes_entry(b"x")
        bad.extra = extra
        rejected(build([bad]), methods={METHOD_AES})


def test_strong_encryption_flag_is_rejected() -> None:
    rejected(build([E(b"x", flags=UTF8 | 0x40)]))


def test_method_not_allowed_is_rejected() -> None:
    assert "method" in rejected(build([E(b"x", method=METHOD_DEFLATED)]))
    rejected(build([E(b"x")]), methods={METHOD_AES})


def test_unicode_path_extra_field_is_rejected() -> None:
    # 7z would extract this entry as "../evil" (Info-ZIP Unicode Path extra field 0x7075).
    target = b"../evil"
    extra = struct.pack("<HHBI", 0x7075, 5 + len(target), 1, zlib.crc32(b"x")) + target
    rejected(build([E(b"x", extra=extra)]))


def test_malformed_extra_field_is_rejected() -> None:
    rejected(build([E(b"x", extra=b"\x01\x00\x10\x00abc")]))


def test_entry_comment_and_archive_comment_are_rejected() -> None:
    rejected(build(GOOD, comment=b"hello"))


def test_stored_entry_with_differing_sizes_is_rejected() -> None:
    rejected(build([E(b"x", usize=4, local_usize=4)]))


# --------------------------------------------------------------- local vs central directory


def test_local_name_mismatch_is_rejected() -> None:
    rejected(build([E(b"report.csv", local_name=b"../../x.sh")]))


def test_local_method_mismatch_is_rejected() -> None:
    rejected(build([E(b"x", local_method=METHOD_DEFLATED)]), methods={0, 8})


def test_local_crc_mismatch_is_rejected() -> None:
    rejected(build([E(b"x", local_crc=1234)]))


def test_local_size_mismatch_is_rejected() -> None:
    rejected(build([E(b"x", local_usize=3)]))


def test_local_aes_field_mismatch_is_rejected() -> None:
    rejected(build([aes_entry(b"x", local_extra=aes_extra(strength=1))]), methods={99})


def test_central_offset_not_pointing_at_a_local_header_is_rejected() -> None:
    rejected(build([E(b"a"), E(b"b", offset=3)]))


# ---------------------------------------------------------------- overlap, junk, truncation


def test_two_central_records_sharing_one_local_header_are_rejected() -> None:
    # The zip-bomb shape: several names, one body.  pyzipper and the stdlib accept it.
    data = build([E(b"a.txt", b"A" * 100)], central_only=[E(b"b.txt", b"A" * 100, offset=0)])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["a.txt", "b.txt"]  # listed without complaint
    assert "overlap" in rejected(data)


@pytest.mark.parametrize(
    "junk",
    [
        {"prefix": b"MZ junk before the archive"},
        {"suffix": b"junk after the archive"},
        {"between": b"hidden"},
        {"before_cd": b"hidden"},
        {"suffix": b"\x00"},
    ],
    ids=["prefix", "suffix", "between-entries", "before-central-directory", "one-zero-byte"],
)
def test_unaccounted_data_is_rejected(junk: dict[str, bytes]) -> None:
    data = build(GOOD, **junk)  # type: ignore[arg-type]
    rejected(data)


def test_prefix_junk_accepted_by_the_stdlib_is_rejected() -> None:
    # A self-extractor shape: the stdlib shifts every offset and reads it happily.
    inner = build(GOOD)
    buf = io.BytesIO()
    buf.write(b"#!/bin/sh\nexit 0\n")
    start = buf.tell()
    with zipfile.ZipFile(buf, "a") as zf:
        for e in GOOD:
            zf.writestr(e.name.decode(), e.data)
    assert start > 0
    data = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("data/b.csv") == b"x\r\n"
    rejected(data)
    assert check(inner)


def test_second_archive_appended_is_rejected() -> None:
    rejected(build(GOOD) + build([E(b"evil")]))


def test_second_end_record_in_comment_is_rejected() -> None:
    fake_eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0, 0, 0, 0, 0)
    rejected(build(GOOD, comment=fake_eocd))


def test_valid_archive_cut_anywhere_is_rejected() -> None:
    data = build(GOOD)
    for cut in range(len(data)):
        with pytest.raises(ZipStructureError):
            check(data[:cut])


def test_disk_spanning_is_rejected() -> None:
    assert "disk" in rejected(build(GOOD, disk=1))


@pytest.mark.parametrize("count", [0, 1, 3, 0xFFFE])
def test_entry_count_mismatch_is_rejected(count: int) -> None:
    rejected(build(GOOD, count=count))


def test_too_many_entries_are_rejected_before_parsing() -> None:
    data = build([E(f"f{i}".encode()) for i in range(5)])
    assert "more than 4" in rejected(data, max_entries=4)
    assert len(check(data, max_entries=5)) == 5


def test_sizes_beyond_the_file_are_rejected() -> None:
    rejected(build([E(b"x", csize=10**6, usize=10**6, local_usize=10**6)]))
    big = E(b"x", csize=2**31, usize=2**31)
    rejected(build([big]))


def test_zip64_locator_pointing_elsewhere_is_rejected() -> None:
    data = bytearray(build([E(b"x.txt")], zip64_eocd=True))
    locator = len(data) - 22 - 20
    struct.pack_into("<Q", data, locator + 8, 5)
    rejected(bytes(data))


def test_saturated_end_record_without_zip64_is_rejected() -> None:
    data = bytearray(build([E(b"x.txt")]))
    struct.pack_into("<I", data, len(data) - 22 + 16, 0xFFFFFFFF)  # central directory offset
    rejected(bytes(data))


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("7z") is None, reason="7z not installed")
def test_7z_lists_a_truncated_archive_that_we_reject(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # DESIGN.md §9: the trap this checker exists for.
    data = build([E(b"data/a.csv", b"a" * 5000), E(b"data/b.csv", b"b" * 5000)])
    cut = data[: len(data) // 2 + 2000]
    path = tmp_path / "cut.zip"
    path.write_bytes(cut)
    listing = subprocess.run(["7z", "l", str(path)], capture_output=True, text=True, check=False)
    assert "data/a.csv" in listing.stdout
    rejected(cut)


# --------------------------------------------------------------------------------- fuzzing


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(
        [build(GOOD), build([aes_entry(b"data/x.csv")]), build(GOOD, zip64_eocd=True)]
    ),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_mutated_archives_raise_only_zip_structure_error(
    base: bytes, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    try:
        entries = check(bytes(data), methods={0, 8, 99})
    except ZipStructureError:
        return
    for entry in entries:  # whatever is accepted is internally consistent
        assert name_problem(entry.name) is None
        assert 0 <= entry.header_offset < entry.data_offset <= entry.data_end <= len(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_zip_structure_error(data: bytes) -> None:
    try:
        check(data, methods={0, 8, 99})
    except ZipStructureError:
        pass
