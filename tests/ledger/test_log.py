"""The export register: appends, receipts, checkpoints, run caps, tampering, concurrency."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from securexport._crypto import merkle
from securexport._crypto.note import Checkpoint, sign_note
from securexport.errors import KeyUnavailableError, PolicyError, VerificationError
from securexport.ledger.log import Ledger, ledger_verifier_key
from securexport.ledger.receipt import Receipt, parse_receipt, verify_receipt
from securexport.ledger.sqlite_store import SqliteStore
from securexport.ledger.store import Entry, LedgerVerificationError

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
ORIGIN = "securexport.local/00112233aabbccdd"
APPROVAL = hashlib.sha256(b"approval one").hexdigest()


def manifest(n: int, approval: str = APPROVAL) -> bytes:
    return f'{{"approval":"{approval}","export_id":"exp-{n}"}}'.encode()


@pytest.fixture
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(db_path: Path) -> Iterator[Ledger]:
    with Ledger.open(db_path, origin=ORIGIN) as opened:
        yield opened


def vkey(signer: Ed25519PrivateKey, name: str = ORIGIN) -> str:
    return ledger_verifier_key(name, signer)


def append(
    led: Ledger,
    signer: Ed25519PrivateKey,
    n: int,
    *,
    approval: str = APPROVAL,
    run: int | None = None,
    max_runs: int | None = None,
    name: str | None = None,
) -> Receipt:
    return led.append_export(
        manifest(n, approval),
        b"sig-" + str(n).encode(),
        export_id=f"exp-{n}",
        approval_id="APR-1",
        approval_sha256=approval,
        run=led.runs_used(approval) + 1 if run is None else run,
        max_runs=max_runs,
        signer=signer,
        signer_name=name,
        now=NOW,
    )


def ledger_checkpoint_at(led: Ledger, size: int) -> str:
    row = led._store.conn.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
    return str(row[0])


def fill(led: Ledger, signer: Ed25519PrivateKey, count: int) -> list[Receipt]:
    return [append(led, signer, n) for n in range(count)]


def raw(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, isolation_level=None)
    for table in ("entries", "nodes", "checkpoints", "meta"):
        for action in ("update", "delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    return conn


# ---- basics -----------------------------------------------------------------------------------


def test_open_creates_private_file_and_keeps_origin(db_path: Path) -> None:
    with Ledger.open(db_path) as first:
        origin = first.origin
    assert origin.startswith("securexport.local/")
    assert len(origin.split("/")[1]) == 16
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    with Ledger.open(db_path) as again:
        assert again.origin == origin
    with pytest.raises(VerificationError):
        Ledger.open(db_path, origin="securexport.local/ffffffffffffffff")


def test_sqlite_settings(ledger: Ledger, db_path: Path) -> None:
    conn = ledger._store.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_append_prove_verify(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    receipts = fill(ledger, signer, 7)
    for n, receipt in enumerate(receipts):
        assert receipt.index == n
        cp = verify_receipt(receipt.to_bytes(), manifest(n), [vkey(signer)], origin=ORIGIN)
        assert (cp.origin, cp.index, cp.size) == (ORIGIN, n, n + 1)
        assert cp.checkpoint_note == receipt.checkpoint == ledger_checkpoint_at(ledger, n + 1)
        fresh = ledger.prove(f"exp-{n}")
        cp = verify_receipt(fresh.to_bytes(), manifest(n), [vkey(signer)])
        assert cp.size == 7
    report = ledger.verify_all(vkey(signer))
    assert (report.size, report.entries_checked, report.checkpoints_checked) == (7, 7, 7)
    assert ledger.pinned_verifier_key() == ledger.verifier_key(signer) == vkey(signer)
    assert report.root_hash == merkle.root([merkle.leaf_hash(manifest(n)) for n in range(7)])
    assert report.latest_checkpoint == ledger.latest_checkpoint()
    entry = ledger.entry("exp-3")
    assert entry == ledger.entry(3)
    assert (entry.leaf, entry.signature, entry.run, entry.created_at) == (
        manifest(3),
        b"sig-3",
        4,
        "2026-06-01T12:00:00Z",
    )
    assert [e.index for e in ledger.entries(start=2, limit=3)] == [2, 3, 4]


def test_empty_ledger(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    assert ledger.latest_checkpoint() is None
    report = ledger.verify_all(vkey(signer))
    assert report.size == 0
    assert report.root_hash == merkle.EMPTY_ROOT
    with pytest.raises(VerificationError):
        ledger.prove("nope")
    with pytest.raises(VerificationError):
        ledger.entry(0)


def test_receipt_format_is_c2sp_tlog_proof(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    receipts = fill(ledger, signer, 5)
    text = receipts[2].to_bytes().decode()
    head, _, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "index 2"
    assert len(lines) == 2 + 1  # logged at size 3: leaf 2's proof is one hash, MTH(D[0:2])
    assert checkpoint.startswith(f"{ORIGIN}\n3\n")
    assert f"\n\n— {ORIGIN} " in checkpoint
    assert parse_receipt(receipts[2].to_bytes()) == receipts[2]


def test_receipt_for_another_manifest_fails(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    receipts = fill(ledger, signer, 4)
    with pytest.raises(VerificationError):
        verify_receipt(receipts[1].to_bytes(), manifest(2), [vkey(signer)])
    with pytest.raises(VerificationError):
        verify_receipt(receipts[1].to_bytes(), manifest(1) + b" ", [vkey(signer)])


def test_receipt_from_another_ledger_fails(tmp_path: Path, signer: Ed25519PrivateKey) -> None:
    other_key = Ed25519PrivateKey.generate()
    with Ledger.open(tmp_path / "a.db") as a, Ledger.open(tmp_path / "b.db") as b:
        ra = append(a, signer, 1)
        append(b, other_key, 1)
        # b's key does not vouch for a's checkpoint
        with pytest.raises(VerificationError):
            verify_receipt(ra.to_bytes(), manifest(1), [vkey(other_key, b.origin)])
        # the right key, but the caller expects b's origin
        with pytest.raises(VerificationError):
            verify_receipt(ra.to_bytes(), manifest(1), [vkey(signer, a.origin)], origin=b.origin)
        assert verify_receipt(ra.to_bytes(), manifest(1), [vkey(signer, a.origin)]).size == 1


def test_same_key_two_ledgers_origin_must_match_signer_name(
    tmp_path: Path, signer: Ed25519PrivateKey
) -> None:
    """A checkpoint signed by a trusted key under another name than its origin is refused."""
    with Ledger.open(tmp_path / "a.db", origin="securexport.local/aaaaaaaaaaaaaaaa") as a:
        r = append(a, signer, 1, name="someone.else/key")
        with pytest.raises(VerificationError):
            verify_receipt(r.to_bytes(), manifest(1), [vkey(signer, "someone.else/key")])


def test_checkpoint_signed_by_another_key_fails(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    receipt = fill(ledger, signer, 3)[2]
    impostor = Ed25519PrivateKey.generate()
    body = receipt.checkpoint[: receipt.checkpoint.rfind("\n\n") + 1]
    forged = Receipt(receipt.index, receipt.proof, sign_note(body, ORIGIN, impostor))
    with pytest.raises(VerificationError):
        verify_receipt(forged.to_bytes(), manifest(2), [vkey(signer)])
    # and a checkpoint the impostor signed for a different root, with a matching proof
    fake_root = merkle.leaf_hash(manifest(99))
    fake = Receipt(0, (), sign_note(Checkpoint(ORIGIN, 1, fake_root).to_text(), ORIGIN, impostor))
    with pytest.raises(VerificationError):
        verify_receipt(fake.to_bytes(), manifest(99), [vkey(signer)])
    assert verify_receipt(fake.to_bytes(), manifest(99), [vkey(impostor)]).size == 1


def test_receipt_bytes_flipped_anywhere_fail(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    data = fill(ledger, signer, 6)[3].to_bytes()
    for i in range(len(data)):
        for bit in (0, 5):
            broken = bytearray(data)
            broken[i] ^= 1 << bit
            with pytest.raises(VerificationError):
                verify_receipt(bytes(broken), manifest(3), [vkey(signer)])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"c2sp.org/tlog-proof@v2\nindex 0\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex 01\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex -1\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\nAAAA\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\n",
        b"c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\nx\n",
        b"\xff\xfe",
    ],
)
def test_malformed_receipts(data: bytes) -> None:
    with pytest.raises(VerificationError):
        parse_receipt(data)


def test_receipt_size_limit(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    data = fill(ledger, signer, 1)[0].to_bytes()
    with pytest.raises(VerificationError):
        parse_receipt(data, max_bytes=len(data) - 1)


def test_receipt_extra_line_round_trips(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    r = fill(ledger, signer, 2)[1]
    with_extra = Receipt(r.index, r.proof, r.checkpoint, extra=b"opaque")
    assert parse_receipt(with_extra.to_bytes()) == with_extra
    verify_receipt(with_extra.to_bytes(), manifest(1), [vkey(signer)])


# ---- run caps ---------------------------------------------------------------------------------


def test_runs_used_and_max_runs(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    other = hashlib.sha256(b"approval two").hexdigest()
    assert ledger.runs_used(APPROVAL) == 0
    append(ledger, signer, 1, max_runs=2)
    append(ledger, signer, 2, max_runs=2)
    append(ledger, signer, 3, approval=other, max_runs=2)
    assert (ledger.runs_used(APPROVAL), ledger.runs_used(other)) == (2, 1)
    with pytest.raises(PolicyError, match="has used all 2 of its runs"):
        append(ledger, signer, 4, max_runs=2)
    assert ledger.size() == 3  # nothing written


def test_stale_run_number_is_refused(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    append(ledger, signer, 1)
    with pytest.raises(PolicyError, match="stale"):
        append(ledger, signer, 2, run=1)
    with pytest.raises(PolicyError, match="stale"):
        append(ledger, signer, 2, run=3)
    append(ledger, signer, 2, run=2)
    assert ledger.size() == 2
    assert ledger.verify_all(vkey(signer)).size == 2


def test_duplicate_export_id_refused(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    append(ledger, signer, 1)
    with pytest.raises(PolicyError):
        append(ledger, signer, 1)


def test_signing_key_is_pinned(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    append(ledger, signer, 1)
    with pytest.raises(KeyUnavailableError):
        append(ledger, Ed25519PrivateKey.generate(), 2)
    assert ledger.size() == 1


def test_triggers_refuse_update_and_delete(
    ledger: Ledger, signer: Ed25519PrivateKey, db_path: Path
) -> None:
    fill(ledger, signer, 2)
    conn = sqlite3.connect(db_path, isolation_level=None)
    for statement in (
        "UPDATE entries SET leaf = x'00' WHERE idx = 0",
        "DELETE FROM entries WHERE idx = 1",
        "UPDATE checkpoints SET note = 'x'",
        "DELETE FROM checkpoints",
        "DELETE FROM nodes",
        "UPDATE meta SET value = 'x' WHERE key = 'origin'",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    conn.close()
    assert ledger.verify_all(vkey(signer)).size == 2


# ---- tampering caught by verify_all -----------------------------------------------------------


def _verify_fails_at(led: Ledger, signer: Ed25519PrivateKey, index: int | None) -> str:
    with pytest.raises(LedgerVerificationError) as info:
        led.verify_all(vkey(signer))
    assert info.value.index == index, str(info.value)
    assert info.value.exit_code == 5
    return str(info.value)


def test_tamper_leaf_bytes(ledger: Ledger, signer: Ed25519PrivateKey, db_path: Path) -> None:
    fill(ledger, signer, 10)
    with raw(db_path) as conn:
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 6", (manifest(60),))
    _verify_fails_at(ledger, signer, 6)


def test_tamper_leaf_and_every_derived_hash(
    ledger: Ledger, signer: Ed25519PrivateKey, db_path: Path
) -> None:
    """Rewrite leaf, leaf hash, nodes and tree state consistently: the signed checkpoints
    still give the edit away, at the right index."""
    fill(ledger, signer, 10)
    forged = [manifest(n) if n != 4 else manifest(40) for n in range(10)]
    hashes = [merkle.leaf_hash(m) for m in forged]
    tree = merkle.MemoryTree(hashes)
    compact = merkle.CompactRange()
    for h in hashes:
        compact.append(h)
    conn = raw(db_path)
    conn.execute("UPDATE entries SET leaf = ?, leaf_hash = ? WHERE idx = 4", (forged[4], hashes[4]))
    for level, idx, _ in conn.execute("SELECT level, idx, hash FROM nodes").fetchall():
        conn.execute(
            "UPDATE nodes SET hash = ? WHERE level = ? AND idx = ?",
            (tree.node(level, idx), level, idx),
        )
    conn.execute("UPDATE tree_state SET compact = ?", (compact.to_bytes(),))
    conn.close()
    message = _verify_fails_at(ledger, signer, 4)
    assert "checkpoint at size 5" in message


def test_tamper_delete_middle_row(ledger: Ledger, signer: Ed25519PrivateKey, db_path: Path) -> None:
    fill(ledger, signer, 8)
    with raw(db_path) as conn:
        conn.execute("DELETE FROM entries WHERE idx = 5")
    assert "missing" in _verify_fails_at(ledger, signer, 5)


def test_tamper_delete_last_row(ledger: Ledger, signer: Ed25519PrivateKey, db_path: Path) -> None:
    fill(ledger, signer, 8)
    with raw(db_path) as conn:
        conn.execute("DELETE FROM entries WHERE idx = 7")
    assert "missing" in _verify_fails_at(ledger, signer, 7)


def test_tamper_truncate_with_checkpoints(
    ledger: Ledger, signer: Ed25519PrivateKey, db_path: Path
) -> None:
    """Dropping the tail entries together with their checkpoints leaves a log that still
    verifies on its own: only a receipt or a witness that saw size 8 can show the rollback."""
    receipts = fill(ledger, signer, 8)
    with raw(db_path) as conn:
        conn.execute("DELETE FROM entries WHERE idx >= 6")
        conn.execute("DELETE FROM checkpoints WHERE size > 6")
        conn.execute("DELETE FROM nodes WHERE (idx + 1) << level > 6")
        compact = merkle.CompactRange()
        for n in range(6):
            compact.append(merkle.leaf_hash(manifest(n)))
        conn.execute("UPDATE tree_state SET size = 6, compact = ?", (compact.to_bytes(),))
    assert ledger.verify_all(vkey(signer)).size == 6
    # the old receipt of entry 7 still verifies on its own: it is the evidence
    assert verify_receipt(receipts[7].to_bytes(), manifest(7), [vkey(signer)]).size == 8
    with pytest.raises(VerificationError):
        ledger.prove("exp-7")


def test_tamper_reorder_rows(ledger: Ledger, signer: Ed25519PrivateKey, db_path: Path) -> None:
    fill(ledger, signer, 8)
    with raw(db_path) as conn:
        conn.execute("UPDATE entries SET idx = 1000 WHERE idx = 3")
        conn.execute("UPDATE entries SET idx = 3 WHERE idx = 4")
        conn.execute("UPDATE entries SET idx = 4 WHERE idx = 1000")
    _verify_fails_at(ledger, signer, 3)


def test_tamper_checkpoint_note(ledger: Ledger, signer: Ed25519PrivateKey, db_path: Path) -> None:
    fill(ledger, signer, 5)
    impostor = Ed25519PrivateKey.generate()
    with raw(db_path) as conn:
        note = conn.execute("SELECT note FROM checkpoints WHERE size = 3").fetchone()[0]
        body = note[: note.rfind("\n\n") + 1]
        conn.execute(
            "UPDATE checkpoints SET note = ? WHERE size = 3", (sign_note(body, ORIGIN, impostor),)
        )
    assert "does not verify" in _verify_fails_at(ledger, signer, 2)


def test_verify_with_wrong_key_fails(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    fill(ledger, signer, 2)
    with pytest.raises(LedgerVerificationError) as info:
        ledger.verify_all(vkey(Ed25519PrivateKey.generate()))
    assert info.value.index == 0


def test_tamper_run_number(ledger: Ledger, signer: Ed25519PrivateKey, db_path: Path) -> None:
    """Renumbering runs (to free a run under the cap) is caught."""
    fill(ledger, signer, 4)
    with raw(db_path) as conn:
        conn.execute("UPDATE entries SET run = 7 WHERE idx = 2")
    assert "run 7" in _verify_fails_at(ledger, signer, 2)


def test_check_entry_callback(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    fill(ledger, signer, 5)
    seen: list[int] = []

    def check(entry: Entry) -> None:
        seen.append(entry.index)
        if entry.index == 3:
            raise VerificationError("manifest signature does not verify")

    with pytest.raises(LedgerVerificationError, match="manifest signature") as info:
        ledger.verify_all(vkey(signer), check_entry=check)
    assert info.value.index == 3
    assert seen == [0, 1, 2, 3]


# ---- cost -------------------------------------------------------------------------------------


def test_append_costs_logarithmic_hashes(
    ledger: Ledger, signer: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashes computed per append stay within a small multiple of log2(n), up to 1,100 entries."""
    counts = {"node": 0, "leaf": 0, "node_reads": 0}
    real_node, real_leaf = merkle.node_hash, merkle.leaf_hash
    real_read = SqliteStore.node

    def node_hash(left: bytes, right: bytes) -> bytes:
        counts["node"] += 1
        return real_node(left, right)

    def leaf_hash(data: bytes) -> bytes:
        counts["leaf"] += 1
        return real_leaf(data)

    def read_node(self: SqliteStore, level: int, index: int) -> bytes | None:
        counts["node_reads"] += 1
        return real_read(self, level, index)

    monkeypatch.setattr(merkle, "node_hash", node_hash)
    monkeypatch.setattr(merkle, "leaf_hash", leaf_hash)
    monkeypatch.setattr(SqliteStore, "node", read_node)
    worst = 0.0
    for n in range(1, 1101):
        counts.update(node=0, leaf=0, node_reads=0)
        append(ledger, signer, n)
        log_n = max(1, n.bit_length())
        assert counts["leaf"] == 1
        assert counts["node"] <= 3 * log_n + 2, (n, counts)
        assert counts["node_reads"] <= log_n + 1, (n, counts)
        worst = max(worst, counts["node"] / log_n)
    assert worst <= 3


# ---- concurrency ------------------------------------------------------------------------------


def _worker(path: str, seed: bytes, worker: int, count: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    done = retries = 0
    with Ledger.open(Path(path)) as led:
        while done < count:
            n = worker * 1000 + done
            try:
                led.append_export(
                    manifest(n),
                    b"sig",
                    export_id=f"exp-{n}",
                    approval_id="APR-1",
                    approval_sha256=APPROVAL,
                    run=led.runs_used(APPROVAL) + 1,
                    max_runs=None,
                    signer=key,
                    now=NOW,
                )
                done += 1
            except PolicyError:
                retries += 1  # another process logged a run of the same approval meanwhile
    queue.put((worker, done, retries))


def test_concurrent_appends_from_8_processes(db_path: Path, signer: Ed25519PrivateKey) -> None:
    with Ledger.open(db_path, origin=ORIGIN):
        pass
    seed = signer.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(db_path), seed, w, 25, queue)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    results = [queue.get(timeout=5) for _ in procs]
    assert all(p.exitcode == 0 for p in procs)
    assert sorted(r[1] for r in results) == [25] * 8
    with Ledger.open(db_path) as led:
        entries = list(led.entries())
        assert [e.index for e in entries] == list(range(200))
        assert sorted(e.run for e in entries) == list(range(1, 201))
        assert len({e.export_id for e in entries}) == 200
        report = led.verify_all(vkey(signer))
        assert (report.size, report.checkpoints_checked) == (200, 200)
        some = entries[123]
        verify_receipt(led.prove(some.export_id).to_bytes(), some.leaf, [vkey(signer)])


def test_concurrent_open_of_a_new_ledger(db_path: Path) -> None:
    """Schema creation and origin choice are race-free: every process sees the same origin."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        origins = pool.map(_open_origin, [str(db_path)] * 6)
    assert len(set(origins)) == 1


def _open_origin(path: str) -> str:
    with Ledger.open(Path(path)) as led:
        return led.origin


def test_bundle_state_of_each_outcome_and_writer() -> None:
    """How `ledger list` tells an orphan from a live export (securexport.ledger.log._bundle_state)."""
    import json as _json
    import os as _os
    import socket

    from securexport.ledger.log import _boot_id, _bundle_state, _start_time, writer_record

    me = writer_record()
    assert _json.loads(me)["pid"] == _os.getpid()

    def writer(**change: object) -> bytes:
        record = _json.loads(me)
        record.update(change)
        return _json.dumps(record).encode()

    written = _json.dumps({"status": "written", "at": "x"}).encode()
    failed = _json.dumps({"status": "failed", "at": "x"}).encode()
    assert _bundle_state(written, me) == "written"
    assert _bundle_state(failed, me) == "missing"  # the export said so itself
    assert _bundle_state(None, me) == "in-progress"  # this very process is alive
    # A process of this boot that is gone (no pid exceeds pid_max, at most 2^22): an orphan.
    assert _bundle_state(None, writer(pid=2**22 + 1)) == "missing"
    # Its pid reused by another process (another start time): an orphan too.
    assert _bundle_state(None, writer(start=str(int(_start_time(_os.getpid())) + 1))) == "missing"
    assert _bundle_state(None, writer(host=socket.gethostname() + "-other")) == "unconfirmed"
    assert _bundle_state(None, writer(boot_id="another-boot")) == "unconfirmed"
    assert _bundle_state(None, writer(start="")) == "unconfirmed"  # no /proc to ask
    assert _bundle_state(None, None) == "unconfirmed"  # logged before bundle status existed
    assert _bundle_state(None, b"not json") == "unconfirmed"
    assert _bundle_state(b"garbage", me) == "in-progress"  # an unreadable outcome is ignored
    assert _boot_id() and _start_time(_os.getpid())
