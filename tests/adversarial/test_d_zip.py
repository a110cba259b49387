"""D. ZIP parsing on decrypt: hostile payloads past a valid signature and receipt.

Each payload is wrapped in a bundle whose manifest the exporter re-signed and logged (a
malicious exporter controls both), so the hostile part is what must be caught.  Structural
cases use hand-packed archives (tests/test_zipcheck.build); size and content cases use real
AES-256 entries under a password the forger wraps for the recipients.
"""

from __future__ import annotations

import stat
import struct
from typing import Any

import pytest

from tests.adversarial.harness import Ctx, run_case
from tests.adversarial.registry import Case, RecordProperty, case, params
from tests.bundle.test_zipcheck import E, aes_entry, aes_extra, build

NAME = b"data/offenders.csv"


def _aes(name: bytes, data: bytes = b"\0" * 40, **kw: Any) -> E:
    """Like ``aes_entry`` (random bytes posing as AES-256 AE-2), any field overridable."""
    fields: dict[str, Any] = {
        "data": data,
        "method": 99,
        "flags": 0x0801,
        "crc": 0,
        "usize": len(data) - 28 + 5,
        "extra": aes_extra(),
    }
    fields.update(kw)
    return E(name, **fields)


def _structural(ctx: Ctx, payload: bytes) -> int:
    return ctx.decrypt(ctx.forge_payload(payload))


_NAMES: list[tuple[str, bytes, str, str]] = [
    ("absolute-path", b"/etc/cron.d/securexport", "absolute name", "an absolute entry name"),
    ("dot-dot", b"../../../../tmp/evil.csv", "dot path component", "`../` climbing out"),
    ("inner-dot-dot", b"data/../../evil.csv", "dot path component", "`..` in the middle of a name"),
    ("windows-drive", b"C:/Windows/evil.csv", "drive letter", "a Windows drive letter"),
    ("windows-backslash", b"data\\..\\..\\evil.csv", "backslash", "Windows `\\..\\` separators"),
    ("unc-path", b"\\\\server\\share\\evil.csv", "backslash", "a UNC path"),
    ("double-slash", b"//server/share/evil.csv", "absolute name", "a `//server/share` name"),
    ("nul-in-name", b"data/offenders.csv\x00.txt", "control character", "a NUL inside the name"),
    (
        "escape-in-name",
        b"data/\x1b[2Jevil.csv",
        "control character",
        "a terminal escape in the name",
    ),
    (
        "c1-control-in-name",
        "data/evil\u0085.csv".encode(),
        "control character",
        "a C1 control (NEL) in the name",
    ),
    ("directory-entry", b"data/", "empty path component", "a directory entry"),
]


def _register_name(slug: str, name: bytes, message: str, title: str) -> None:
    @case("D", slug, 5, f"payload entry with {title}", message=f"malformed archive: {message}")
    def run(ctx: Ctx) -> int:
        return _structural(ctx, build([aes_entry(name)]))


for _args in _NAMES:
    _register_name(*_args)


@case(
    "D",
    "absolute-path-cli",
    5,
    "payload entry with an absolute name, through `securexport decrypt`",
    via="cli",
    message="malformed archive: absolute name",
)
def _abs_cli(ctx: Ctx) -> int:
    bundle = ctx.forge_payload(build([aes_entry(b"/tmp/securexport-evil.csv")]))
    return ctx.cli(["decrypt", str(bundle), "--as", "force", "-o", str(ctx.out)])


@case(
    "D",
    "symlink-entry",
    5,
    "a symlink entry named like the data file",
    message="malformed archive: entry is a symlink, directory or special file",
)
def _symlink(ctx: Ctx) -> int:
    link = (stat.S_IFLNK | 0o777) << 16
    return _structural(ctx, build([aes_entry(NAME, external=link)]))


@case(
    "D",
    "duplicate-names",
    5,
    "the data file twice",
    message="malformed archive: duplicate entry name",
)
def _dup(ctx: Ctx) -> int:
    return _structural(ctx, build([aes_entry(NAME), aes_entry(NAME)]))


@case(
    "D",
    "case-colliding-names",
    5,
    "`data/offenders.csv` and `DATA/Offenders.csv`",
    message="malformed archive: duplicate entry name",
)
def _case(ctx: Ctx) -> int:
    return _structural(ctx, build([aes_entry(NAME), aes_entry(b"DATA/Offenders.csv")]))


@case(
    "D",
    "unicode-normalisation-collision",
    5,
    "NFC and NFD spellings of one name",
    message="malformed archive: duplicate entry name",
)
def _nfd(ctx: Ctx) -> int:
    return _structural(
        ctx, build([aes_entry("data/é.csv".encode()), aes_entry("data/e\u0301.csv".encode())])
    )


@case(
    "D",
    "overlapping-entries",
    5,
    "two central records sharing one local header (zip bomb)",
    message="malformed archive: entries overlap or leave unexplained data between them",
)
def _overlap(ctx: Ctx) -> int:
    return _structural(ctx, build([aes_entry(NAME), aes_entry(b"data/b.csv", offset=0)]))


@case(
    "D",
    "local-central-name-mismatch",
    5,
    "local header names `../evil`, central directory the data file",
    message="malformed archive: local header disagrees with the central directory",
)
def _mismatch(ctx: Ctx) -> int:
    return _structural(ctx, build([aes_entry(NAME, local_name=b"../evil.csv1234567")]))


@case(
    "D",
    "unicode-path-extra",
    5,
    "an Info-ZIP Unicode path field (7z would extract under it)",
    message="malformed archive: extra field 0x7075 is not allowed",
)
def _upath(ctx: Ctx) -> int:
    up = struct.pack("<HHB", 0x7075, 5 + 8, 1) + b"\0\0\0\0" + b"../e.csv"
    return _structural(ctx, build([_aes(NAME, extra=aes_extra() + up)]))


@case(
    "D",
    "too-many-entries",
    5,
    "65 entries (limit 64)",
    message="malformed archive: more than 64 entries",
)
def _many(ctx: Ctx) -> int:
    return _structural(ctx, build([aes_entry(f"data/{i}.csv".encode()) for i in range(65)]))


@case(
    "D",
    "prefixed-payload",
    5,
    "junk before the payload's first entry",
    message="malformed archive: data between the central directory and the end record",
)
def _prefix(ctx: Ctx) -> int:
    return _structural(ctx, build([aes_entry(NAME)], prefix=b"MZ" + b"\0" * 62))


@case(
    "D",
    "archive-comment",
    5,
    "an archive comment (where a second end record could hide)",
    message="malformed archive: data between the central directory and the end record",
)
def _comment(ctx: Ctx) -> int:
    return _structural(ctx, build([aes_entry(NAME)], comment=b"PK\x05\x06" + b"\0" * 18))


@case(
    "D",
    "traditional-zipcrypto",
    5,
    "a ZipCrypto (not AES) encrypted entry",
    message="malformed archive: compression method 8 is not allowed here",
)
def _zipcrypto(ctx: Ctx) -> int:
    return _structural(ctx, build([E(NAME, method=8, flags=0x0801)]))


@case(
    "D",
    "high-ratio-entry",
    5,
    "an entry claiming 2 GiB from 40 bytes (manifest agrees)",
    message="expands beyond the allowed ratio",
)
def _ratio(ctx: Ctx) -> int:
    big = 2**31

    def edit(doc: dict[str, Any]) -> None:
        doc["files"][0]["bytes"] = big

    return ctx.decrypt(ctx.forge_payload(build([_aes(NAME, usize=big)]), edit))


@case(
    "D",
    "unknown-entry-name",
    5,
    "a clean entry name the manifest does not list",
    message="payload entry names differ from the manifest's files",
)
def _unknown(ctx: Ctx) -> int:
    return _structural(ctx, build([aes_entry(b"data/everyone.csv")]))


# --- real AES-256 entries whose headers lie ------------------------------------------------


def _plain(ctx: Ctx) -> tuple[bytes, int]:
    data = next(iter(ctx.plaintext(ctx.members(ctx.bundle)).values()))
    return data, data.count(b"\r\n") - 1


def _patch_usize(usize: int) -> Any:
    def patch(payload: bytes) -> bytes:
        out = bytearray(payload)
        assert out[:4] == b"PK\x03\x04" and not struct.unpack_from("<H", out, 6)[0] & 8
        struct.pack_into("<I", out, 22, usize)
        central = out.rfind(b"PK\x01\x02")
        struct.pack_into("<I", out, central + 24, usize)
        return bytes(out)

    return patch


@case(
    "D",
    "size-header-too-small",
    5,
    "real AES entry whose size fields (and manifest) claim 100 bytes",
    message="a payload file does not match the manifest's HMAC",
)
def _lie_small(ctx: Ctx) -> int:
    data, rows = _plain(ctx)
    files = [{"path": NAME.decode(), "bytes": 100, "rows": rows, "hmac_sha256": "00" * 32}]
    return ctx.decrypt(
        ctx.forge_content(
            {NAME.decode(): data}, rows, manifest_files=files, patch=_patch_usize(100)
        )
    )


@case(
    "D",
    "size-header-too-small-hmac-matches",
    5,
    "as above, manifest HMAC over the first 100 bytes: the truncated CSV is refused",
    message=r"payload row 1 has \d+ fields, expected 6",
)
def _lie_small_hmac(ctx: Ctx) -> int:
    from securexport.bundle.container import file_hmac_key

    data, rows = _plain(ctx)
    box: dict[str, Any] = {}

    def edit(doc: dict[str, Any]) -> None:
        doc["files"][0]["bytes"] = 100
        doc["files"][0]["hmac_sha256"] = box["hmac"]

    def patch(payload: bytes) -> bytes:
        patched: bytes = _patch_usize(100)(payload)
        return patched

    # The forger knows the password: compute the HMAC of what pyzipper will return.
    import hashlib
    import hmac as hmac_mod

    def files_for(password: str) -> None:
        key = file_hmac_key(password)
        box["hmac"] = hmac_mod.new(key, data[:100], hashlib.sha256).hexdigest()

    bundle = ctx.forge_content(
        {NAME.decode(): data}, rows, edit, patch=patch, password_hook=files_for
    )
    return ctx.decrypt(bundle)


@case(
    "D",
    "size-header-too-large",
    5,
    "real AES entry whose size fields (and manifest) claim 1 byte more",
    message="a payload file does not match the manifest's HMAC",
)
def _lie_large(ctx: Ctx) -> int:
    data, rows = _plain(ctx)
    files = [
        {"path": NAME.decode(), "bytes": len(data) + 1, "rows": rows, "hmac_sha256": "00" * 32}
    ]
    return ctx.decrypt(
        ctx.forge_content(
            {NAME.decode(): data}, rows, manifest_files=files, patch=_patch_usize(len(data) + 1)
        )
    )


def _flip_method(payload: bytes) -> bytes:
    """Set the AES field's real method from deflate (8) to stored (0), in both headers."""
    out = bytearray(payload)
    needle = aes_extra(actual=8)
    assert out.count(needle) == 2
    return bytes(out.replace(needle, aes_extra(actual=0)))


@case(
    "D",
    "aes-method-field-flipped",
    5,
    "the unauthenticated AES real-method field flipped to stored",
    message="malformed archive: encrypted entry sizes are inconsistent",
)
def _method(ctx: Ctx) -> int:
    data, rows = _plain(ctx)
    return ctx.decrypt(ctx.forge_content({NAME.decode(): data}, rows, patch=_flip_method))


@case(
    "D",
    "ciphertext-flipped",
    5,
    "one ciphertext byte flipped in a real entry (HMAC fails only at its end)",
    message=r"the payload failed to decrypt or verify \(wrong key, or tampered\)",
)
def _ciphertext(ctx: Ctx) -> int:
    data, rows = _plain(ctx)

    def patch(payload: bytes) -> bytes:
        out = bytearray(payload)
        out[len(out) // 3] ^= 0x40
        return bytes(out)

    return ctx.decrypt(ctx.forge_content({NAME.decode(): data}, rows, patch=patch))


# --- the destination --------------------------------------------------------------------------


@case(
    "D", "destination-not-empty", 7, "DIR exists and holds a file", message="not an empty directory"
)
def _not_empty(ctx: Ctx) -> int:
    ctx.out.mkdir()
    mine = ctx.out / "mine.txt"
    mine.write_text("keep me")
    ctx.planted |= {ctx.out, mine}
    code = ctx.decrypt(ctx.bundle)
    assert mine.read_text() == "keep me" and sorted(ctx.out.iterdir()) == [mine]
    return code


@case(
    "D",
    "destination-partial-exists",
    7,
    "DIR.partial exists (a killed run, or a planted directory)",
    message=r"\.partial exists",
)
def _partial(ctx: Ctx) -> int:
    partial = ctx.out.with_name(ctx.out.name + ".partial")
    partial.mkdir()
    ctx.planted.add(partial)
    code = ctx.decrypt(ctx.bundle)
    assert not any(partial.iterdir())
    return code


@case(
    "D",
    "destination-partial-symlink",
    7,
    "DIR.partial is a symlink to another directory",
    message=r"\.partial exists",
)
def _partial_link(ctx: Ctx) -> int:
    elsewhere = ctx.root / "elsewhere"
    elsewhere.mkdir()
    partial = ctx.out.with_name(ctx.out.name + ".partial")
    partial.symlink_to(elsewhere)
    ctx.planted |= {elsewhere, partial}
    code = ctx.decrypt(ctx.bundle)
    assert not any(elsewhere.iterdir())
    return code


@case(
    "D",
    "destination-symlink",
    7,
    "DIR is a symlink to an empty directory elsewhere",
    via="cli",
    message="not an empty directory",
)
def _dest_link(ctx: Ctx) -> int:
    elsewhere = ctx.root / "elsewhere"
    elsewhere.mkdir()
    ctx.out.symlink_to(elsewhere)
    ctx.planted |= {elsewhere, ctx.out}
    code = ctx.cli(["decrypt", str(ctx.bundle), "--as", "force", "-o", str(ctx.out)])
    assert not any(elsewhere.iterdir())
    return code


@case("D", "destination-is-file", 7, "DIR is a regular file", message="not an empty directory")
def _dest_file(ctx: Ctx) -> int:
    ctx.out.write_text("a file")
    ctx.planted.add(ctx.out)
    return ctx.decrypt(ctx.bundle)


@case(
    "D",
    "destination-empty-directory",
    0,
    "DIR exists and is empty: used, files 0600 in 0700 directories",
)
def _dest_empty(ctx: Ctx) -> int:
    ctx.out.mkdir()
    ctx.allow_output = True
    code = ctx.decrypt(ctx.bundle)
    data = ctx.out / "data" / "offenders.csv"
    assert stat.S_IMODE(data.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.parent.stat().st_mode) == 0o700
    return code


@pytest.mark.parametrize("case", params("D"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)
