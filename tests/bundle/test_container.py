"""securexport.bundle.container: the AES payload, the outer bundle, and reading both back safely.

Independent checks: 7z and bsdtar extract the payload; the per-file HMAC key is recomputed with
a from-scratch RFC 5869 HKDF; hostile payloads are packed by hand (tests/test_zipcheck.build).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pyzipper
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securexport.bundle.container import (
    APPROVAL,
    APPROVAL_SIG,
    COSIGNATURE,
    FIXED_DATE_TIME,
    KEY_FILE,
    MANIFEST,
    MANIFEST_SIG,
    MEMBER_ORDER,
    PAYLOAD,
    README,
    RECEIPT,
    FileRecord,
    PayloadWriter,
    RangeReader,
    check_payload,
    extract_payload,
    file_hmac_key,
    new_payload_password,
    open_bundle,
    readme_text,
    write_bundle,
)
from securexport.bundle.zipcheck import METHOD_AES, ZipStructureError
from securexport.errors import FileError, SecurexportError, VerificationError
from securexport.limits import Limits
from tests.bundle.test_zipcheck import E, aes_entry, build

PASSWORD = "r3Xn0q-Vd8c1bKkB3k3m2bq9yQ6wJ6e5wzQ2b0YH3gA"  # 43 base64url characters
SMALL = {
    KEY_FILE: b"-----BEGIN AGE ENCRYPTED FILE-----\nnot really\n",
    MANIFEST: b'{"schema":"securexport.manifest/1"}',
    MANIFEST_SIG: b"-----BEGIN SSH SIGNATURE-----\nmanifest\n",
    APPROVAL: b'schema = "securexport.approval/1"\n',
    APPROVAL_SIG: b"-----BEGIN SSH SIGNATURE-----\napproval\n",
    RECEIPT: b"receipt bytes\n",
    README: b"read me\n",
}


def hkdf_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 from scratch (salt absent = HashLen zero bytes)."""
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def expected_hmac(password: str, data: bytes) -> str:
    key = hkdf_sha256(password.encode("ascii"), b"securexport/file-hmac/v1")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def write_payload(
    path: Path, files: dict[str, list[str]], password: str = PASSWORD
) -> list[FileRecord]:
    """Write a payload whose files are given as lists of text pieces (written one by one)."""
    with open(path, "w+b") as fh, PayloadWriter(fh, password) as writer:
        for name, pieces in files.items():
            with writer.open_entry(name) as entry:
                for piece in pieces:
                    entry.write(piece)
                    entry.add_rows(piece.count("\n"))
    return writer.records


def make_bundle(path: Path, payload: Path, extra: dict[str, bytes] | None = None) -> None:
    members: list[tuple[str, bytes | Path]] = [(PAYLOAD, payload)]
    members += [(n, (extra or {}).get(n, SMALL.get(n, b""))) for n in MEMBER_ORDER[1:-1]]
    if extra and COSIGNATURE in extra:
        members.append((COSIGNATURE, extra[COSIGNATURE]))
    with open(path, "w+b") as fh:
        write_bundle(fh, members)


def payload_bundle(tmp_path: Path, payload_bytes: bytes) -> Path:
    """A bundle around an arbitrary (maybe hostile) payload.zip."""
    raw = tmp_path / "raw-payload.zip"
    raw.write_bytes(payload_bytes)
    out = tmp_path / "hostile.bundle"
    make_bundle(out, raw)
    return out


@dataclass
class Built:
    dir: Path
    payload: Path
    bundle: Path
    texts: dict[str, bytes]
    records: list[FileRecord]

    def expected(self) -> dict[str, tuple[int, str]]:
        return {r.path: (r.bytes, r.hmac_sha256) for r in self.records}

    def sizes(self) -> dict[str, int]:
        return {r.path: r.bytes for r in self.records}


def big_rows() -> Iterator[str]:
    for i in range(120_000):  # ~3.5 MB, written in ~30-byte pieces
        yield f"{i:08d},P{(i * 7919) % 100003:06d},B{i % 97},2024-Q{i % 4 + 1}\r\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    d = tmp_path_factory.mktemp("built")
    pieces = {
        "data/offenders.csv": ["id,p,district,q\r\n", *big_rows()],
        "data/notes.csv": ["é,ü\r\n"],
    }
    payload = d / "payload.zip"
    records = write_payload(payload, pieces)
    bundle = d / "export.bundle"
    make_bundle(bundle, payload)
    texts = {k: "".join(v).encode("utf-8") for k, v in pieces.items()}
    return Built(d, payload, bundle, texts, records)


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# ------------------------------------------------------------------------- keys and records


def test_payload_password_is_32_random_bytes_in_base64url() -> None:
    passwords = {new_payload_password() for _ in range(50)}
    assert len(passwords) == 50
    for pw in passwords:
        assert len(pw) == 43
        assert set(pw) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert len(base64.urlsafe_b64decode(pw + "=")) == 32


def test_file_hmac_key_is_rfc5869_hkdf() -> None:
    assert file_hmac_key(PASSWORD) == hkdf_sha256(PASSWORD.encode(), b"securexport/file-hmac/v1")
    assert file_hmac_key(PASSWORD) != file_hmac_key(PASSWORD[:-1] + "B")


def test_records_count_bytes_rows_and_plaintext_hmac(built: Built) -> None:
    by_path = {r.path: r for r in built.records}
    assert [r.path for r in built.records] == ["data/offenders.csv", "data/notes.csv"]
    big = by_path["data/offenders.csv"]
    assert big.bytes == len(built.texts["data/offenders.csv"]) > 3_000_000
    assert big.rows == 120_001
    assert big.hmac_sha256 == expected_hmac(PASSWORD, built.texts["data/offenders.csv"])
    notes = by_path["data/notes.csv"]
    assert notes.bytes == len("é,ü\r\n".encode()) == 7


# -------------------------------------------------------------------------- payload format


def test_every_payload_entry_is_winzip_aes256_ae2(built: Built) -> None:
    with pyzipper.AESZipFile(built.payload) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["data/offenders.csv", "data/notes.csv"]
        for info in infos:
            assert info.wz_aes_version == 2
            assert info.wz_aes_strength == 3
            assert info.flag_bits & 1
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.CRC == 0  # AE-2: no plaintext CRC leaks
    raw = built.payload.read_bytes()
    assert struct.unpack_from("<H", raw, 8)[0] == METHOD_AES  # the raw local header method
    assert b"offender" not in raw.lower().replace(b"data/offenders.csv", b"")
    assert b"2024-Q" not in raw


def test_payload_reads_back_with_pyzipper(built: Built) -> None:
    with pyzipper.AESZipFile(built.payload) as zf:
        zf.setpassword(PASSWORD.encode())
        for name, text in built.texts.items():
            assert zf.read(name) == text


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("7z") is None, reason="7z not installed")
def test_7z_extracts_identical_bytes(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "7z"
    subprocess.run(
        ["7z", "x", f"-p{PASSWORD}", f"-o{out}", str(built.payload)],
        check=True,
        capture_output=True,
    )
    for name, text in built.texts.items():
        assert (out / name).read_bytes() == text
    technical = subprocess.run(
        ["7z", "l", "-slt", f"-p{PASSWORD}", str(built.payload)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert technical.count("Method = AES-256 Deflate") == 2
    assert technical.count("Encrypted = +") == 2


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("7z") is None, reason="7z not installed")
def test_7z_refuses_a_wrong_password(built: Built, tmp_path: Path) -> None:
    result = subprocess.run(
        ["7z", "x", "-pnot-the-password", f"-o{tmp_path / 'x'}", str(built.payload)],
        capture_output=True,
        check=False,
    )
    assert result.returncode != 0


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("bsdtar") is None, reason="bsdtar not installed")
def test_bsdtar_extracts_identical_bytes(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "bsdtar"
    out.mkdir()
    subprocess.run(
        ["bsdtar", "-x", "--passphrase", PASSWORD, "-f", str(built.payload), "-C", str(out)],
        check=True,
        capture_output=True,
    )
    for name, text in built.texts.items():
        assert (out / name).read_bytes() == text


def test_writer_refuses_to_finish_a_plain_zip(tmp_path: Path) -> None:
    # DESIGN.md §9: pyzipper writes a plain ZIP when encryption is lost; close() must notice.
    with open(tmp_path / "p.zip", "w+b") as fh:
        writer = PayloadWriter(fh, PASSWORD)
        writer._zip.encryption = None
        writer._zip.pwd = None
        entry = writer.open_entry("data/x.csv")
        entry.write("secret,row\r\n")
        entry.close()
        with pytest.raises(SecurexportError, match="not"):
            writer.close()


def test_writer_refuses_to_finish_weaker_aes(tmp_path: Path) -> None:
    with open(tmp_path / "p.zip", "w+b") as fh:
        writer = PayloadWriter(fh, PASSWORD)
        writer._zip.setencryption(pyzipper.WZ_AES, nbits=128)
        writer.open_entry("data/x.csv").close()
        with pytest.raises(SecurexportError, match="AES-256"):
            writer.close()


def test_writer_rejects_bad_or_duplicate_entry_names(tmp_path: Path) -> None:
    with open(tmp_path / "p.zip", "w+b") as fh:
        writer = PayloadWriter(fh, PASSWORD)
        for bad in ("../x.csv", "/x.csv", "a\\b.csv", ""):
            with pytest.raises(ValueError, match="bad payload entry name"):
                writer.open_entry(bad)
        writer.open_entry("data/x.csv").close()
        with pytest.raises(ValueError, match="duplicate"):
            writer.open_entry("DATA/X.csv")
        writer.close()


def test_writer_needs_an_empty_readable_file(tmp_path: Path) -> None:
    with open(tmp_path / "p.zip", "wb") as fh, pytest.raises(ValueError, match="readable"):
        PayloadWriter(fh, PASSWORD)
    with open(tmp_path / "q.zip", "w+b") as fh:
        fh.write(b"x")
        with pytest.raises(ValueError, match="empty"):
            PayloadWriter(fh, PASSWORD)


ENOSPC_SCRIPT = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    from pathlib import Path
    from securexport.bundle.container import PayloadWriter
    from securexport.errors import FileError
    from securexport.fsutil import partial_output

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, resource.RLIM_INFINITY))
    out = Path(sys.argv[1])
    try:
        with partial_output(out) as partial, open(partial, "r+b") as fh:
            with PayloadWriter(fh, "p" * 43) as writer:
                with writer.open_entry("data/x.csv") as entry:
                    for i in range(40_000):
                        entry.write(os.urandom(96).hex() + "\\r\\n")
        print(json.dumps({"result": "ok"}))
    except FileError as exc:
        print(json.dumps({"result": "FileError", "message": str(exc), "code": exc.exit_code}))
    """
)


def test_disk_full_becomes_file_error_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "payload.zip"
    proc = subprocess.run(
        [sys.executable, "-c", ENOSPC_SCRIPT, str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["result"] == "FileError"
    assert result["code"] == 7
    assert "no space left" in result["message"]
    assert "Exception ignored" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------- outer bundle


def test_bundle_members_are_stored_in_order_with_fixed_times(built: Built) -> None:
    with zipfile.ZipFile(built.bundle) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == list(MEMBER_ORDER[:-1])
        for info in infos:
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.date_time == FIXED_DATE_TIME
            assert (info.external_attr >> 16) & 0o777 == 0o600
        assert zf.read(PAYLOAD) == built.payload.read_bytes()
        assert zf.read(MANIFEST) == SMALL[MANIFEST]


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("7z") is None, reason="7z not installed")
def test_7z_sees_stored_members(built: Built) -> None:
    listing = subprocess.run(
        ["7z", "l", "-slt", str(built.bundle)], check=True, capture_output=True, text=True
    ).stdout
    assert listing.count("Method = Store") == len(MEMBER_ORDER) - 1


def test_write_bundle_refuses_unknown_missing_or_misordered_members(tmp_path: Path) -> None:
    good: list[tuple[str, bytes | Path]] = [(n, b"x") for n in MEMBER_ORDER[:-1]]
    for members in (good[1:], [*good, ("evil.sh", b"x")], [good[1], good[0], *good[2:]]):
        with open(tmp_path / "b", "w+b") as fh, pytest.raises(ValueError, match="MEMBER_ORDER"):
            write_bundle(fh, members)


def test_open_bundle_exposes_members_and_payload(built: Built) -> None:
    with open_bundle(built.bundle, Limits()) as b:
        for name, data in SMALL.items():
            assert b.member(name) == data
            assert b.has(name)
        assert not b.has(COSIGNATURE)
        with pytest.raises(VerificationError):
            b.member(COSIGNATURE)
        offset, length = b.payload_range()
        raw = built.bundle.read_bytes()
        assert raw[offset : offset + length] == built.payload.read_bytes()
        assert b.payload_sha256() == hashlib.sha256(built.payload.read_bytes()).hexdigest()


def test_cosignature_member_is_accepted_last(built: Built, tmp_path: Path) -> None:
    path = tmp_path / "cosigned.bundle"
    make_bundle(path, built.payload, {COSIGNATURE: b"cosigned checkpoint\n"})
    with open_bundle(path, Limits()) as b:
        assert b.member(COSIGNATURE) == b"cosigned checkpoint\n"


def test_range_reader_is_a_seekable_window() -> None:
    r = RangeReader(io.BytesIO(b"0123456789"), 2, 5)
    assert r.read() == b"23456"
    assert r.seek(-2, os.SEEK_END) == 3
    assert r.read(10) == b"56"
    r.seek(1)
    assert r.read(2) == b"34"
    assert r.read(0) == b""


def rebuilt(tmp_path: Path, infos: list[tuple[zipfile.ZipInfo, bytes]]) -> Path:
    path = tmp_path / "rebuilt.bundle"
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in infos:
            zf.writestr(info, data)
    return path


def members_of(built: Built) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(built.bundle) as zf:
        return [(i, zf.read(i)) for i in zf.infolist()]


def test_open_bundle_rejects_unknown_member(built: Built, tmp_path: Path) -> None:
    infos = [*members_of(built), (zipfile.ZipInfo("run.sh"), b"rm -rf ~")]
    with pytest.raises(ZipStructureError, match="unexpected member"):
        open_bundle(rebuilt(tmp_path, infos), Limits())


def test_open_bundle_rejects_missing_member(built: Built, tmp_path: Path) -> None:
    infos = [m for m in members_of(built) if m[0].filename != MANIFEST_SIG]
    with pytest.raises(VerificationError, match=MANIFEST_SIG):
        open_bundle(rebuilt(tmp_path, infos), Limits())


def test_open_bundle_rejects_members_out_of_order(built: Built, tmp_path: Path) -> None:
    infos = members_of(built)
    infos[1], infos[2] = infos[2], infos[1]
    with pytest.raises(ZipStructureError, match="order"):
        open_bundle(rebuilt(tmp_path, infos), Limits())


def test_open_bundle_rejects_compressed_members(built: Built, tmp_path: Path) -> None:
    infos = members_of(built)
    infos[2][0].compress_type = zipfile.ZIP_DEFLATED
    with pytest.raises(ZipStructureError, match="method"):
        open_bundle(rebuilt(tmp_path, infos), Limits())


def test_open_bundle_enforces_size_caps(built: Built) -> None:
    size = built.bundle.stat().st_size
    with pytest.raises(VerificationError, match="size limit"):
        open_bundle(built.bundle, Limits(max_bundle_bytes=size - 1))
    open_bundle(built.bundle, Limits(max_bundle_bytes=size)).close()
    with pytest.raises(VerificationError, match=MANIFEST):
        open_bundle(built.bundle, Limits(max_manifest_bytes=len(SMALL[MANIFEST]) - 1))
    with pytest.raises(VerificationError, match=KEY_FILE):
        open_bundle(built.bundle, Limits(max_key_file_bytes=10))
    with pytest.raises(ZipStructureError, match="more than"):
        open_bundle(built.bundle, Limits(max_bundle_entries=7))


def test_open_bundle_detects_a_changed_member_byte(built: Built, tmp_path: Path) -> None:
    raw = bytearray(built.bundle.read_bytes())
    at = raw.index(SMALL[MANIFEST])
    raw[at + 3] ^= 1
    path = tmp_path / "flipped.bundle"
    path.write_bytes(bytes(raw))
    with pytest.raises(ZipStructureError, match="checksum"):
        open_bundle(path, Limits())


def test_open_bundle_missing_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(FileError):
        open_bundle(tmp_path / "nope.bundle", Limits())


# ------------------------------------------------------------------ check and extract payload


def test_check_and_extract_round_trip(built: Built, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    with open_bundle(built.bundle, Limits()) as b:
        entries = check_payload(b, built.sizes(), Limits())
        assert sorted(e.name for e in entries) == sorted(built.texts)
        extract_payload(b, PASSWORD, built.expected(), dest)
    for name, text in built.texts.items():
        path = dest / name
        assert path.read_bytes() == text
        assert path.stat().st_mode & 0o777 == 0o600
    assert (dest / "data").stat().st_mode & 0o777 == 0o700


def extract_fails(
    bundle: Path, dest: Path, expected: dict[str, tuple[int, str]], **kw: object
) -> None:
    dest.mkdir(exist_ok=True)
    password = str(kw.get("password", PASSWORD))
    with pytest.raises(VerificationError):
        with open_bundle(bundle, Limits()) as b:
            extract_payload(b, password, expected, dest)
    assert tree(dest) == []


def test_wrong_password_writes_nothing(built: Built, tmp_path: Path) -> None:
    extract_fails(built.bundle, tmp_path / "out", built.expected(), password="A" * 43)


def test_plaintext_hmac_mismatch_removes_everything(built: Built, tmp_path: Path) -> None:
    expected = built.expected()
    size, _ = expected["data/notes.csv"]  # the second entry: the first was already written
    expected["data/notes.csv"] = (size, "00" * 32)
    extract_fails(built.bundle, tmp_path / "out", expected)


def test_tampered_ciphertext_is_caught_by_the_aes_hmac(built: Built, tmp_path: Path) -> None:
    raw = bytearray(built.payload.read_bytes())
    raw[len(raw) // 2] ^= 0x20  # inside the big entry's ciphertext
    bundle = payload_bundle(tmp_path, bytes(raw))
    extract_fails(bundle, tmp_path / "out", built.expected())


def test_names_must_equal_the_manifest(built: Built, tmp_path: Path) -> None:
    expected = built.expected()
    expected["data/other.csv"] = expected.pop("data/notes.csv")
    extract_fails(built.bundle, tmp_path / "out", expected)
    del expected["data/other.csv"]
    extract_fails(built.bundle, tmp_path / "out", expected)


def test_sizes_must_equal_the_manifest(built: Built, tmp_path: Path) -> None:
    for delta in (-1, 1):
        expected = built.expected()
        size, mac = expected["data/offenders.csv"]
        expected["data/offenders.csv"] = (size + delta, mac)
        extract_fails(built.bundle, tmp_path / "out", expected)


def patch_sizes(payload: bytes, name: bytes, new_size: int) -> bytes:
    """Lie about an entry's uncompressed size in both its local and central headers."""
    raw = bytearray(payload)
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (at := raw.find(sig, start)) >= 0:
            start = at + 1
            name_at = at + (30 if sig == b"PK\x03\x04" else 46)
            if raw[name_at : name_at + len(name)] == name:
                struct.pack_into("<I", raw, at + size_at, new_size)
                if (
                    sig == b"PK\x03\x04"
                    and raw[name_at + len(name) : name_at + len(name) + 2] == b"\x01\x00"
                ):
                    struct.pack_into("<Q", raw, name_at + len(name) + 4, new_size)  # ZIP64 field
    return bytes(raw)


@pytest.mark.parametrize("delta", [-1, 1, -1000])
def test_lying_uncompressed_size_is_caught(built: Built, tmp_path: Path, delta: int) -> None:
    # The manifest agrees with the lie (an exporter could sign both): the plaintext HMAC and
    # the byte count still catch it, and nothing is left behind.
    size, mac = built.expected()["data/offenders.csv"]
    lied = patch_sizes(built.payload.read_bytes(), b"data/offenders.csv", size + delta)
    bundle = payload_bundle(tmp_path, lied)
    expected = built.expected()
    expected["data/offenders.csv"] = (size + delta, mac)
    with open_bundle(bundle, Limits()) as b:
        check_payload(b, {k: v[0] for k, v in expected.items()}, Limits())  # structurally fine
    extract_fails(bundle, tmp_path / "out", expected)


def test_non_aes_payload_entry_is_rejected(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data/x.csv", "plain,text\r\n")
    bundle = payload_bundle(tmp_path, buf.getvalue())
    extract_fails(bundle, tmp_path / "out", {"data/x.csv": (12, "00" * 32)})


@pytest.mark.parametrize(
    "kwargs", [{"nbits": 128}, {"nbits": 256, "force_wz_aes_version": 1}], ids=["aes128", "ae1"]
)
def test_weaker_aes_payload_entry_is_rejected(tmp_path: Path, kwargs: dict[str, int]) -> None:
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED) as zf:
        zf.setpassword(PASSWORD.encode())
        zf.setencryption(pyzipper.WZ_AES, **kwargs)
        zf.writestr("data/x.csv", "a,b\r\n")
    bundle = payload_bundle(tmp_path, buf.getvalue())
    with open_bundle(bundle, Limits()) as b, pytest.raises(VerificationError, match="AES-256"):
        check_payload(b, {"data/x.csv": 5}, Limits())
    extract_fails(
        bundle, tmp_path / "out", {"data/x.csv": (5, expected_hmac(PASSWORD, b"a,b\r\n"))}
    )


HOSTILE_PAYLOADS = {
    "absolute": build([aes_entry(b"/etc/x")]),
    "dotdot": build([aes_entry(b"../x")]),
    "backslash": build([aes_entry(b"a\\b")]),
    "drive": build([aes_entry(b"C:x")]),
    "nul": build([aes_entry(b"a\x00b")]),
    "duplicate": build([aes_entry(b"data/x.csv"), aes_entry(b"data/x.csv")]),
    "case": build([aes_entry(b"data/x.csv"), aes_entry(b"DATA/x.csv")]),
    "symlink": build([aes_entry(b"data/x.csv", external=0o120777 << 16)]),
    "overlap": build([aes_entry(b"data/x.csv")], central_only=[aes_entry(b"data/y.csv", offset=0)]),
    "name-mismatch": build([aes_entry(b"data/x.csv", local_name=b"../../x.csv")]),
    "prefix": build([aes_entry(b"data/x.csv")], prefix=b"junk"),
    "suffix": build([aes_entry(b"data/x.csv")], suffix=b"junk"),
    "truncated": build([aes_entry(b"data/x.csv")])[:-5],
    "plain": build([E(b"data/x.csv")]),
}


@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS.values(), ids=HOSTILE_PAYLOADS.keys())
def test_hostile_payloads_are_rejected_before_decrypting(tmp_path: Path, payload: bytes) -> None:
    bundle = payload_bundle(tmp_path, payload)
    expected = {"data/x.csv": (17, "00" * 32), "data/y.csv": (17, "00" * 32)}
    with open_bundle(bundle, Limits()) as b, pytest.raises(VerificationError):
        check_payload(b, {k: v[0] for k, v in expected.items()}, Limits())
    extract_fails(bundle, tmp_path / "out", expected)


def test_payload_entry_count_and_expansion_limits(built: Built) -> None:
    with open_bundle(built.bundle, Limits()) as b:
        with pytest.raises(ZipStructureError, match="more than 1"):
            check_payload(b, built.sizes(), Limits(max_payload_entries=1))
        with pytest.raises(VerificationError, match="ratio"):
            check_payload(b, built.sizes(), Limits(max_expansion_ratio=2))
        check_payload(b, built.sizes(), Limits(max_payload_entries=2, max_expansion_ratio=50))


def test_extract_never_follows_a_symlink_out_of_dest(built: Built, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "data").symlink_to(outside)
    with open_bundle(built.bundle, Limits()) as b, pytest.raises(VerificationError):
        extract_payload(b, PASSWORD, built.expected(), dest)
    assert tree(outside) == []
    assert tree(dest) == ["data"]


# ------------------------------------------------------------------- any flipped byte


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Built:
    d = tmp_path_factory.mktemp("small")
    pieces = {"data/a.csv": ["h1,h2\r\n", "1,2\r\n"], "data/b.csv": ["x\r\n"]}
    payload = d / "payload.zip"
    records = write_payload(payload, pieces)
    bundle = d / "small.bundle"
    make_bundle(bundle, payload)
    texts = {k: "".join(v).encode() for k, v in pieces.items()}
    return Built(d, payload, bundle, texts, records)


def open_check_extract(path: Path, built: Built, dest: Path) -> tuple[dict[str, bytes], str]:
    with open_bundle(path, Limits()) as b:
        members = {n: b.member(n) for n in SMALL}
        digest = b.payload_sha256()
        check_payload(b, built.sizes(), b.limits)
        extract_payload(b, PASSWORD, built.expected(), dest)
    return members, digest


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_byte_is_rejected_or_harmless(
    small: Built, tmp_path: Path, data: st.DataObject
) -> None:
    raw = bytearray(small.bundle.read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1), label="position")
    raw[pos] ^= data.draw(st.integers(1, 255), label="xor")
    path = tmp_path / f"flip-{pos}.bundle"
    path.write_bytes(bytes(raw))
    dest = tmp_path / f"out-{pos}-{raw[pos]}"
    dest.mkdir()
    try:
        members, digest = open_check_extract(path, small, dest)
    except VerificationError:
        assert tree(dest) == []
        return
    finally:
        path.unlink()
    assert members == SMALL
    assert digest == hashlib.sha256(small.payload.read_bytes()).hexdigest()
    for name, text in small.texts.items():
        assert (dest / name).read_bytes() == text


def test_every_single_byte_flip_is_rejected_or_harmless(small: Built, tmp_path: Path) -> None:
    original = small.bundle.read_bytes()
    accepted = 0
    for pos in range(len(original)):
        raw = bytearray(original)
        raw[pos] ^= 0x01
        path = tmp_path / "flip.bundle"
        path.write_bytes(bytes(raw))
        dest = tmp_path / f"out{pos}"
        dest.mkdir()
        try:
            members, digest = open_check_extract(path, small, dest)
        except VerificationError:
            assert tree(dest) == [], pos
            continue
        accepted += 1
        assert members == SMALL, pos
        assert digest == hashlib.sha256(small.payload.read_bytes()).hexdigest(), pos
    # Only unauthenticated header fields (times, versions, permission bits: at most ~20 bytes
    # per member) may flip harmlessly; everything else is rejected.
    assert 0 < accepted <= 20 * len(SMALL) + 20


# --------------------------------------------------------------------------------- README


def test_readme_explains_standard_tool_verification() -> None:
    text = readme_text(dataset="offenders", exporter="pa-analyst", recipients=["wmp-iom", "audit"])
    assert "offenders" in text
    assert "wmp-iom, audit" in text
    assert "-I pa-analyst" in text
    assert "-n securexport-manifest-v1 -s manifest.json.sig < manifest.json" in text
    assert "sha256sum payload.zip payload.key.age" in text
    assert "age -d -i key.txt payload.key.age" in text
    assert '7z x -p"$(age -d -i key.txt payload.key.age)" payload.zip' in text
    assert "securexport decrypt" in text
