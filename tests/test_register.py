"""`ledger verify` holds every logged export against the exact approval it ran under."""

from __future__ import annotations

import json
import uuid

import pytest

from securexport import api, manifest
from securexport._crypto import sshsig
from securexport.bundle import APPROVAL, APPROVAL_SIG
from securexport.errors import VerificationError
from securexport.keys import KeyStore
from securexport.ledger import Ledger
from tests.support.world import FIXED_NOW, TEST_LOG_N, World


def _append_forged(world: World, mutate: object) -> None:
    """A malicious exporter logs a manifest it signed itself, beside the real approval."""
    first = next(iter(api.ledger_entries(world.exporter)))
    with Ledger.open(world.exporter.home.ledger_path) as ledger:
        entry = ledger.entry(first["index"])
        approval_raw = ledger.attachment(entry.export_id, APPROVAL)
        approval_sig = ledger.attachment(entry.export_id, APPROVAL_SIG)
        doc = json.loads(entry.leaf)
        doc["export_id"] = str(uuid.uuid4())
        doc["approval"]["run"] = ledger.runs_used(entry.approval_sha256) + 1
        mutate(doc)  # type: ignore[operator]
        body = manifest.canonical_bytes(doc)
        store = KeyStore(world.exporter, scrypt_log_n=TEST_LOG_N)
        signature = sshsig.sign(store.signing_key("analyst"), body, sshsig.NAMESPACE_MANIFEST)
        ledger.append_export(
            body,
            signature,
            export_id=doc["export_id"],
            approval_id=entry.approval_id,
            approval_sha256=entry.approval_sha256,
            run=doc["approval"]["run"],
            max_runs=None,
            signer=store.ledger_signing_key(),
            now=FIXED_NOW,
            attachments={APPROVAL: approval_raw, APPROVAL_SIG: approval_sig},
        )


def test_clean_ledger_verifies(world: World) -> None:
    world.export()
    world.export()
    report = api.ledger_verify(world.exporter)
    assert report["entries_checked"] == 2


def _rows_over_cap(doc: dict) -> None:
    doc["records"]["written"] = 10_000_000
    doc["files"][0]["rows"] = 10_000_000


def _extra_recipient(doc: dict) -> None:
    doc["recipients"].append({"name": "me", "age": doc["recipients"][0]["age"]})


def _extra_column(doc: dict) -> None:
    doc["columns"].append(
        {"name": "full_name", "source": "full_name", "transform": "keep@1", "on_invalid": "error"}
    )


def _backdated(doc: dict) -> None:
    doc["created_at"] = "2025-06-01T00:00:00Z"


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (_rows_over_cap, "row cap"),
        (_extra_recipient, "recipients"),
        (_extra_column, "columns"),
        (_backdated, "validity window"),
    ],
    ids=["rows-over-cap", "extra-recipient", "extra-column", "backdated"],
)
def test_export_outside_its_approval_is_reported(world: World, mutate: object, needle: str) -> None:
    world.export()
    _append_forged(world, mutate)
    with pytest.raises(VerificationError, match=needle) as info:
        api.ledger_verify(world.exporter)
    assert info.value.exit_code == 5
    assert "entry 1:" in str(info.value)  # names the bad entry
