"""`ledger verify` holds every logged export against the exact approval it ran under."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from securexport import api
from securexport._crypto import sshsig
from securexport.bundle.container import APPROVAL, APPROVAL_SIG
from securexport.cli import cli
from securexport.errors import VerificationError
from securexport.home.keystore import KeyStore
from securexport.home.truststore import TrustStore
from securexport.ledger.log import Ledger
from securexport.ledger.store import LedgerVerificationError
from securexport.policy import manifest
from tests.support.cli import Runner
from tests.support.world import FIXED_NOW, TEST_LOG_N, World


def _append_forged(world: World, mutate: object) -> None:
    """A malicious exporter logs a manifest it signed itself, beside the real approval."""
    first = next(iter(api.ledger_entries(world.exporter)))
    with Ledger.open(world.exporter.home.ledger_path) as ledger:
        entry = ledger.entry(first.index)
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
            # The forger keeps the index column in step with what it signed.
            now=datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00")),
            attachments={APPROVAL: approval_raw, APPROVAL_SIG: approval_sig},
        )


def test_clean_ledger_verifies(world: World) -> None:
    world.export()
    world.export()
    report = api.ledger_verify(world.exporter)
    assert report.entries_checked == 2


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


# ------------------------------------------------------------------ each per-entry check of verify
#
# Every condition below is made for real: the ledger file edited as its owner could (triggers
# dropped), or a crafted manifest appended through the library.  `ledger verify` must exit 5 and
# name the entry, through the API and through the command line.


def _raw_ledger(world: World) -> sqlite3.Connection:
    """The exporter's ledger.db opened as its owner could: the append-only triggers dropped."""
    from securexport.ledger.sqlite_store import APPEND_ONLY

    conn = sqlite3.connect(world.exporter.home.ledger_path, isolation_level=None)
    for table in APPEND_ONLY:
        for action in ("update", "delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    return conn


def _assert_verify_fails_at(world: World, index: int, needle: str) -> str:
    with pytest.raises(VerificationError) as info:
        api.ledger_verify(world.exporter)
    message = str(info.value)
    assert info.value.exit_code == 5
    assert isinstance(info.value, LedgerVerificationError) and info.value.index == index, message
    assert f"entry {index}:" in message
    assert needle in message, message
    result = Runner().invoke(
        cli,
        ["--home", str(world.exporter.home.path), "ledger", "verify"],
        env={"SECUREXPORT_KEYSTORE": "file", "SECUREXPORT_PASSPHRASE_FILE": ""},
        catch_exceptions=False,
    )
    assert result.exit_code == 5, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert f"entry {index}:" in result.stderr and needle in result.stderr
    return message


def _three_exports(world: World) -> tuple[Path, Path]:
    """Entries 0 (approval A run 1), 1 (approval B run 1), 2 (approval A run 2)."""
    a = world.write_approval()
    b = world.write_approval(approval_id="APR-2026-0077")
    world.export(a)
    world.export(b)
    world.export(a)
    assert api.ledger_verify(world.exporter).entries_checked == 3
    return a, b


def _signing_key(world: World, role: str, name: str) -> object:
    env = {"exporter": world.exporter, "outsider": world.outsider, "owner": world.owner}[role]
    return KeyStore(env, scrypt_log_n=TEST_LOG_N).signing_key(name)


def _leaf(conn: sqlite3.Connection, index: int) -> bytes:
    return bytes(conn.execute("SELECT leaf FROM entries WHERE idx = ?", (index,)).fetchone()[0])


def _sig_other_manifest(world: World, conn: sqlite3.Connection) -> bytes:
    """A genuine SSHSIG by the exporter, but over entry 2's manifest."""
    return bytes(conn.execute("SELECT signature FROM entries WHERE idx = 2").fetchone()[0])


def _sig_by_outsider(world: World, conn: sqlite3.Connection) -> bytes:
    """The exact manifest bytes, validly signed, by a key the approval does not name."""
    key = _signing_key(world, "outsider", "stranger")
    return sshsig.sign(key, _leaf(conn, 1), sshsig.NAMESPACE_MANIFEST)  # type: ignore[arg-type]


def _sig_wrong_namespace(world: World, conn: sqlite3.Connection) -> bytes:
    """The exporter's signature over the exact bytes, in the approval namespace."""
    key = _signing_key(world, "exporter", "analyst")
    return sshsig.sign(key, _leaf(conn, 1), sshsig.NAMESPACE_APPROVAL)  # type: ignore[arg-type]


def _sig_corrupted(world: World, conn: sqlite3.Connection) -> bytes:
    """The stored signature with its Ed25519 signature bytes flipped (still well-formed)."""
    armored = bytes(conn.execute("SELECT signature FROM entries WHERE idx = 1").fetchone()[0])
    lines = armored.decode().splitlines()
    blob = bytearray(base64.b64decode("".join(lines[1:-1])))
    blob[-5] ^= 0x01  # inside the 64-byte signature, the last field of the blob
    body = base64.b64encode(bytes(blob)).decode()
    wrapped = [body[i : i + 70] for i in range(0, len(body), 70)]
    return ("\n".join([lines[0], *wrapped, lines[-1]]) + "\n").encode()


@pytest.mark.parametrize(
    ("make_signature", "needle"),
    [
        (_sig_other_manifest, "signature is invalid"),
        (_sig_by_outsider, "not an exporter of the approval"),
        (_sig_wrong_namespace, "signature is invalid"),
        (_sig_corrupted, "signature is invalid"),
    ],
    ids=["over-another-manifest", "by-an-outsider", "approval-namespace", "corrupted"],
)
def test_bad_manifest_signature_is_reported(
    world: World, make_signature: object, needle: str
) -> None:
    _three_exports(world)
    with _raw_ledger(world) as conn:
        signature = make_signature(world, conn)  # type: ignore[operator]
        conn.execute("UPDATE entries SET signature = ? WHERE idx = 1", (signature,))
    _assert_verify_fails_at(world, 1, needle)


def test_signature_check_is_not_vacuous(world: World) -> None:
    """Storing the entry's own signature back (re-armored) still verifies: the failures above
    come from the signature, not from the edit."""
    _three_exports(world)
    with _raw_ledger(world) as conn:
        armored = bytes(conn.execute("SELECT signature FROM entries WHERE idx = 1").fetchone()[0])
        conn.execute("UPDATE entries SET signature = ? WHERE idx = 1", (armored,))
    assert api.ledger_verify(world.exporter).entries_checked == 3


def _column_export_id(conn: sqlite3.Connection, a_sha: str) -> None:
    conn.execute("UPDATE entries SET export_id = 'another-export' WHERE idx = 1")


def _column_approval_id(conn: sqlite3.Connection, a_sha: str) -> None:
    conn.execute("UPDATE entries SET approval_id = 'APR-2026-0042' WHERE idx = 1")


def _column_approval_sha256(conn: sqlite3.Connection, a_sha: str) -> None:
    conn.execute("UPDATE entries SET approval_sha256 = ? WHERE idx = 1", ("ab" * 32,))


def _column_runs_shuffled(conn: sqlite3.Connection, a_sha: str) -> None:
    """Entry 1 re-indexed as run 2 of approval A and entry 2 as run 3: the run sequence of the
    index columns stays 1, 2, 3, so only the cross-check against the manifest can see it."""
    conn.execute("UPDATE entries SET run = 3 WHERE idx = 2")
    conn.execute(
        "UPDATE entries SET approval_sha256 = ?, approval_id = 'APR-2026-0042', run = 2 "
        "WHERE idx = 1",
        (a_sha,),
    )


@pytest.mark.parametrize(
    "tamper",
    [_column_export_id, _column_approval_id, _column_approval_sha256, _column_runs_shuffled],
    ids=["export_id", "approval_id", "approval_sha256", "approval-and-run"],
)
def test_index_columns_disagreeing_with_the_manifest_are_reported(
    world: World, tamper: object
) -> None:
    a, _ = _three_exports(world)
    a_sha = hashlib.sha256(a.read_bytes()).hexdigest()
    with _raw_ledger(world) as conn:
        tamper(conn, a_sha)  # type: ignore[operator]
    _assert_verify_fails_at(world, 1, "index columns disagree with the signed manifest")


def _append_under(world: World, approval_raw: bytes, approval_sig: bytes) -> None:
    """Log a manifest of entry 0 re-issued under another approval, signed by the exporter."""
    with Ledger.open(world.exporter.home.ledger_path) as ledger:
        first = ledger.entry(0)
        doc = json.loads(first.leaf)
    approval_sha = hashlib.sha256(approval_raw).hexdigest()
    doc["export_id"] = str(uuid.uuid4())
    doc["approval"]["id"] = "APR-2026-0099"
    doc["approval"]["sha256"] = approval_sha
    doc["approval"]["run"] = 1
    body = manifest.canonical_bytes(doc)
    store = KeyStore(world.exporter, scrypt_log_n=TEST_LOG_N)
    signature = sshsig.sign(store.signing_key("analyst"), body, sshsig.NAMESPACE_MANIFEST)
    with Ledger.open(world.exporter.home.ledger_path) as ledger:
        ledger.append_export(
            body,
            signature,
            export_id=doc["export_id"],
            approval_id="APR-2026-0099",
            approval_sha256=approval_sha,
            run=1,
            max_runs=None,
            signer=store.ledger_signing_key(),
            now=FIXED_NOW,
            attachments={APPROVAL: approval_raw, APPROVAL_SIG: approval_sig},
        )


def test_approval_signed_by_an_untrusted_key_is_reported(world: World) -> None:
    world.export()
    path = world.write_approval(approval_id="APR-2026-0099", sign=False)
    raw = path.read_bytes()
    stranger = _signing_key(world, "outsider", "stranger")
    _append_under(world, raw, sshsig.sign(stranger, raw, sshsig.NAMESPACE_APPROVAL))  # type: ignore[arg-type]
    _assert_verify_fails_at(world, 1, "not a trusted approver")


def test_approval_signed_by_the_trusted_owner_verifies(world: World) -> None:
    """The control for the test above: the same crafted entry, approved by the owner."""
    world.export()
    path = world.write_approval(approval_id="APR-2026-0099")
    _append_under(world, path.read_bytes(), path.with_name(path.name + ".sig").read_bytes())
    assert api.ledger_verify(world.exporter).entries_checked == 2


def test_approver_no_longer_trusted_is_reported(world: World) -> None:
    """The installation stops trusting the owner: every logged export's approval is now
    unverifiable, and verify says so at the first entry."""
    _three_exports(world)
    TrustStore(world.exporter.home).remove("owner")
    _assert_verify_fails_at(world, 0, "not a trusted approver")


def _approval_edited(conn: sqlite3.Connection, other_sha: str) -> None:
    where = "name = ? AND export_id = (SELECT export_id FROM entries WHERE idx = 1)"
    data = bytes(
        conn.execute(f"SELECT data FROM attachments WHERE {where}", (APPROVAL,)).fetchone()[0]
    )
    edited = data.replace(b"Integration test.", b"Any purpose at all.")
    assert edited != data
    conn.execute(f"UPDATE attachments SET data = ? WHERE {where}", (edited, APPROVAL))


def _approval_signature_dropped(conn: sqlite3.Connection, other_sha: str) -> None:
    conn.execute(
        "DELETE FROM attachments WHERE name = ? "
        "AND export_id = (SELECT export_id FROM entries WHERE idx = 1)",
        (APPROVAL_SIG,),
    )


def _approval_dropped(conn: sqlite3.Connection, other_sha: str) -> None:
    conn.execute(
        "DELETE FROM attachments WHERE export_id = (SELECT export_id FROM entries WHERE idx = 1)"
    )


def _approval_swapped(conn: sqlite3.Connection, other_sha: str) -> None:
    """Entry 1's approval and signature replaced by approval A's: both genuinely signed."""
    for name in (APPROVAL, APPROVAL_SIG):
        conn.execute(
            "UPDATE attachments SET data = (SELECT data FROM attachments WHERE name = ? AND "
            "export_id = (SELECT export_id FROM entries WHERE idx = 0)) WHERE name = ? AND "
            "export_id = (SELECT export_id FROM entries WHERE idx = 1)",
            (name, name),
        )


@pytest.mark.parametrize(
    ("tamper", "needle"),
    [
        (_approval_edited, "approval signature is invalid"),
        (_approval_signature_dropped, "not signed"),
        (_approval_dropped, "not stored beside it"),
        (_approval_swapped, "different approval"),
    ],
    ids=["edited", "signature-dropped", "dropped", "swapped"],
)
def test_stored_approval_that_cannot_be_trusted_is_reported(
    world: World, tamper: object, needle: str
) -> None:
    _, b = _three_exports(world)
    with _raw_ledger(world) as conn:
        tamper(conn, hashlib.sha256(b.read_bytes()).hexdigest())  # type: ignore[operator]
    _assert_verify_fails_at(world, 1, needle)


def test_run_beyond_max_runs_is_reported(world: World) -> None:
    world.export(world.write_approval(max_runs=2))
    world.export()  # another approval in between
    with Ledger.open(world.exporter.home.ledger_path) as ledger:
        ledger_sha = ledger.entry(0).approval_sha256
    _append_forged(world, lambda doc: None)  # run 2 of 2: allowed
    assert api.ledger_verify(world.exporter).entries_checked == 3
    _append_forged(world, lambda doc: None)  # run 3 of 2, logged by an edited copy
    with Ledger.open(world.exporter.home.ledger_path) as ledger:
        assert ledger.entry(3).run == 3 and ledger.runs_used(ledger_sha) == 3
    _assert_verify_fails_at(world, 3, "beyond the approval's max_runs")


def _set_transform(column: str, transform: str) -> object:
    def mutate(doc: dict) -> None:
        (item,) = [c for c in doc["columns"] if c["name"] == column]
        item["transform"] = transform

    return mutate


@pytest.mark.parametrize(
    ("column", "transform"),
    [
        ("birth_year", "keep@1"),  # the date of birth in the clear
        ("district", "postcode_trunc@2"),  # another version of the approved transform
        ("offender", "hash@1"),
        ("convictions", "top_code"),  # no version at all
    ],
)
def test_changed_transform_on_an_approved_column_is_reported(
    world: World, column: str, transform: str
) -> None:
    world.export()
    _append_forged(world, _set_transform(column, transform))
    _assert_verify_fails_at(world, 1, "columns differ")


def test_changed_source_of_an_approved_column_is_reported(world: World) -> None:
    def mutate(doc: dict) -> None:
        doc["columns"][1]["source"] = "full_name"

    world.export()
    _append_forged(world, mutate)
    _assert_verify_fails_at(world, 1, "columns differ")


def test_changed_on_invalid_of_an_approved_column_is_reported(world: World) -> None:
    """A manifest claiming another on_invalid (invalid values kept as NULL rather than the
    approved handling) does not match its approval."""

    def mutate(doc: dict) -> None:
        for column in doc["columns"]:
            column["on_invalid"] = "null" if column["on_invalid"] != "null" else "error"

    world.export()
    _append_forged(world, mutate)
    _assert_verify_fails_at(world, 1, "columns differ")


def test_faithful_copy_of_an_export_verifies(world: World) -> None:
    """The control for the crafted entries above: unchanged, one verifies."""
    world.export()
    _append_forged(world, lambda doc: None)
    assert api.ledger_verify(world.exporter).entries_checked == 2


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE entries SET kind = 'note' WHERE idx = 1",
        "UPDATE entries SET created_at = '2020-01-01T00:00:00Z' WHERE idx = 1",
    ],
    ids=["kind", "created_at"],
)
def test_other_index_columns_disagreeing_with_the_manifest_are_reported(
    world: World, sql: str
) -> None:
    _three_exports(world)
    with _raw_ledger(world) as conn:
        conn.execute(sql)
    _assert_verify_fails_at(world, 1, "")


def test_verify_holds_the_ledger_key_to_a_trusted_copy(world: World) -> None:
    """Without a trusted key for its origin, verify can only check the ledger against the key it
    records itself ("pinned"); with one, a ledger re-keyed wholesale fails (exit 5)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from securexport.ledger.log import ledger_verifier_key

    world.export()
    assert api.ledger_verify(world.exporter).checkpoint_key == "pinned"
    pinned = api.ledger_verifier_key(world.exporter)
    origin = pinned.split("+", 1)[0]

    impostor = ledger_verifier_key(origin, Ed25519PrivateKey.generate())
    TrustStore(world.exporter.home).add("their-log", impostor, "ledger")
    with pytest.raises(VerificationError, match="not the key trusted for " + origin) as info:
        api.ledger_verify(world.exporter)
    assert info.value.exit_code == 5

    TrustStore(world.exporter.home).remove("their-log")
    TrustStore(world.exporter.home).add("our-log", pinned, "ledger")
    assert api.ledger_verify(world.exporter).checkpoint_key == "trusted"


def test_list_reads_what_a_logged_manifest_says_and_stops_where_it_stops_making_sense(
    world: World,
) -> None:
    """`ledger list` reads exporter, rows and recipients from each logged manifest, unverified;
    a manifest that stops making sense is "malformed", keeping what was read before that."""
    leaves = {
        "not-json": (b"not json", {"malformed": True}),
        "no-records": (
            b'{"operator":{"name":"x"},"records":null}',
            {"exporter": "x", "malformed": True},
        ),
        "empty": (b'{"operator":{}}', {"exporter": None, "rows": None, "recipients": []}),
    }
    store = KeyStore(world.exporter, scrypt_log_n=TEST_LOG_N)
    with Ledger.open(world.exporter.home.ledger_path) as ledger:
        for export_id, (leaf, _) in leaves.items():
            ledger.append_export(
                leaf,
                b"sig",
                export_id=export_id,
                approval_id="APR-F",
                approval_sha256=hashlib.sha256(export_id.encode()).hexdigest(),
                run=1,
                max_runs=None,
                signer=store.ledger_signing_key(),
                now=FIXED_NOW,
            )
    entries = api.ledger_entries(world.exporter)
    for entry, (export_id, (_, says)) in zip(entries, leaves.items(), strict=True):
        doc = entry.to_json()
        assert list(doc)[:7] == [
            "index",
            "kind",
            "export_id",
            "approval_id",
            "approval_sha256",
            "run",
            "created_at",
        ]
        assert {k: doc[k] for k in list(doc)[7:-1]} == says and doc["bundle"] == "unconfirmed"
        assert entry.export_id == export_id and entry.malformed == ("malformed" in says)
    assert (entries[1].exporter, entries[1].rows, entries[1].recipients) == ("x", None, None)
    shown = api.ledger_show(world.exporter, "empty")
    assert shown.manifest == {"operator": {}} and "bundle" not in shown.to_json()
