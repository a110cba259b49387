"""C. Ledger receipts: from elsewhere, altered, signed by another key, missing."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from securexport.bundle.container import MANIFEST, MANIFEST_SIG, RECEIPT
from securexport.ledger.log import Ledger
from securexport.ledger.receipt import parse_receipt
from tests.adversarial.harness import Ctx, run_case
from tests.adversarial.registry import Case, RecordProperty, case, params
from tests.support.world import FIXED_NOW


def _with_receipt(ctx: Ctx, receipt: bytes, bundle: object = None) -> int:
    members = ctx.members(ctx.second_bundle if bundle == "second" else ctx.bundle)
    members[RECEIPT] = receipt
    return ctx.verify(ctx.write(members))


def _second_receipt(ctx: Ctx) -> bytes:
    """The receipt of the second export: index 1, so its proof has a hash in it."""
    ctx.bundle  # noqa: B018 - the first export, so the second is entry 1
    return ctx.members(ctx.second_bundle)[RECEIPT]


@case(
    "C",
    "receipt-from-other-bundle",
    5,
    "receipt.tlog taken from another export's bundle",
    message="the receipt does not prove that this manifest is in the ledger",
)
def _other(ctx: Ctx) -> int:
    return _with_receipt(ctx, _second_receipt(ctx))


@case(
    "C",
    "proof-hash-flipped",
    5,
    "one bit flipped in the inclusion proof's hash",
    via="cli",
    message="the receipt does not prove that this manifest is in the ledger",
)
def _flipped(ctx: Ctx) -> int:
    receipt = parse_receipt(_second_receipt(ctx))
    assert receipt.proof, "entry 1 has a one-hash proof"
    first = bytearray(receipt.proof[0])
    first[0] ^= 1
    forged = type(receipt)(receipt.index, (bytes(first), *receipt.proof[1:]), receipt.checkpoint)
    members = ctx.members(ctx.second_bundle)
    members[RECEIPT] = forged.to_bytes()
    return ctx.cli(["verify", str(ctx.write(members))])


@case(
    "C",
    "proof-hash-appended",
    5,
    "an extra hash appended to the inclusion proof",
    message="the receipt does not prove that this manifest is in the ledger",
)
def _appended(ctx: Ctx) -> int:
    receipt = parse_receipt(_second_receipt(ctx))
    forged = type(receipt)(receipt.index, (*receipt.proof, b"\x00" * 32), receipt.checkpoint)
    return _with_receipt(ctx, forged.to_bytes(), "second")


@case(
    "C",
    "index-changed",
    5,
    "the receipt's leaf index changed",
    message="the receipt does not prove that this manifest is in the ledger",
)
def _index(ctx: Ctx) -> int:
    receipt = parse_receipt(_second_receipt(ctx))
    forged = type(receipt)(0, receipt.proof, receipt.checkpoint)
    return _with_receipt(ctx, forged.to_bytes(), "second")


@case(
    "C",
    "checkpoint-signed-by-other-key",
    5,
    "a checkpoint with the right origin, signed by a key nobody trusts",
    message="signed note has no signature by a trusted key",
)
def _other_key(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    with Ledger.open(ctx.world.exporter.home.ledger_path) as real:
        origin = real.origin
    with Ledger.open(ctx.root / "rogue-ledger.db", origin=origin) as rogue:
        receipt = rogue.append_export(
            members[MANIFEST],
            members[MANIFEST_SIG],
            export_id="rogue",
            approval_id="x",
            approval_sha256="0" * 64,
            run=1,
            max_runs=None,
            signer=Ed25519PrivateKey.generate(),
            now=FIXED_NOW,
        )
    members[RECEIPT] = receipt.to_bytes()
    return ctx.verify(ctx.write(members))


@case(
    "C",
    "checkpoint-from-other-ledger",
    5,
    "the manifest logged in the outsider's own ledger instead",
    message="signed note has no signature by a trusted key",
)
def _other_ledger(ctx: Ctx) -> int:
    from securexport.home.keystore import KeyStore
    from tests.support.world import TEST_LOG_N

    members = ctx.members(ctx.bundle)
    key = KeyStore(ctx.world.outsider, scrypt_log_n=TEST_LOG_N).ledger_signing_key()
    with Ledger.open(ctx.world.outsider.home.ledger_path) as other:
        receipt = other.append_export(
            members[MANIFEST],
            members[MANIFEST_SIG],
            export_id=json.loads(members[MANIFEST])["export_id"],
            approval_id="x",
            approval_sha256="0" * 64,
            run=1,
            max_runs=None,
            signer=key,
            now=FIXED_NOW,
        )
    members[RECEIPT] = receipt.to_bytes()
    return ctx.verify(ctx.write(members))


@case(
    "C",
    "receipt-missing",
    5,
    "receipt.tlog absent (the export was never logged)",
    message=r"the bundle lacks receipt\.tlog(?![\w.])",
)
def _missing(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    del members[RECEIPT]
    return ctx.verify(ctx.write_raw(list(members.items())))


@case(
    "C",
    "receipt-empty",
    5,
    "receipt.tlog empty",
    message="malformed ledger receipt",
)
def _empty(ctx: Ctx) -> int:
    return _with_receipt(ctx, b"")


@case(
    "C",
    "receipt-checkpoint-cut",
    5,
    "the checkpoint's signature line cut off",
    message="malformed signed note",
)
def _cut(ctx: Ctx) -> int:
    receipt = ctx.members(ctx.bundle)[RECEIPT]
    return _with_receipt(ctx, receipt[: receipt.rindex(b"\n\xe2\x80\x94")] + b"\n")


@case(
    "C",
    "receipt-non-canonical-base64",
    5,
    "a proof hash in non-canonical base64",
    message="malformed ledger receipt",
)
def _b64(ctx: Ctx) -> int:
    text = _second_receipt(ctx).decode()
    receipt = parse_receipt(text.encode())
    good = base64.b64encode(receipt.proof[0]).decode()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(good[-2]) ^ 1]  # flips a padding bit: same bytes
    bad = good[:-2] + last + "="
    return _with_receipt(ctx, text.replace(good, bad, 1).encode(), "second")


@case(
    "C",
    "receipt-for-old-manifest",
    5,
    "manifest edited and re-signed, but not logged again",
    message="the receipt does not prove that this manifest is in the ledger",
)
def _stale(ctx: Ctx) -> int:
    members = ctx.resign(ctx.members(ctx.bundle), relog=False)
    return ctx.verify(ctx.write(members))


@case(
    "C",
    "receipt-oversized",
    5,
    "a 300 KiB receipt (limit 256 KiB)",
    message=r"bundle member receipt\.tlog is larger than allowed",
)
def _big(ctx: Ctx) -> int:
    return _with_receipt(ctx, b"c2sp.org/tlog-proof@v1\n" + b"A" * (300 << 10))


@case(
    "C",
    "receipt-extra-line",
    0,
    "an `extra` line added to the receipt (opaque and unauthenticated by the C2SP format): accepted",
)
def _extra(ctx: Ctx) -> int:
    receipt = parse_receipt(ctx.members(ctx.bundle)[RECEIPT])
    forged = type(receipt)(receipt.index, receipt.proof, receipt.checkpoint, b"anything")
    return _with_receipt(ctx, forged.to_bytes())


@pytest.mark.parametrize("case", params("C"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)
