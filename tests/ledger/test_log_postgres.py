"""The team ledger on PostgreSQL: same schema, same locking guarantees, same tamper evidence.

Each test gets its own database on the session's throwaway server (tests/support/pg.py).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from securexport import api
from securexport._crypto import merkle
from securexport.errors import FileError, PolicyError, UsageError
from securexport.home.config import ledger_url as ledger_target
from securexport.ledger.log import Ledger, ledger_verifier_key, open_ledger
from securexport.ledger.receipt import verify_receipt
from securexport.ledger.store import LedgerVerificationError
from tests.support.pg import PgServer

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
ORIGIN = "securexport.local/00112233aabbccdd"
APPROVAL = hashlib.sha256(b"approval one").hexdigest()


def manifest(n: int) -> bytes:
    return f'{{"approval":"{APPROVAL}","export_id":"exp-{n}"}}'.encode()


def append(led: Ledger, signer: Ed25519PrivateKey, n: int) -> bytes:
    receipt = led.append_export(
        manifest(n),
        b"sig-" + str(n).encode(),
        export_id=f"exp-{n}",
        approval_id="APR-1",
        approval_sha256=APPROVAL,
        run=led.runs_used(APPROVAL) + 1,
        max_runs=None,
        signer=signer,
        now=NOW,
    )
    return receipt.to_bytes()


def vkey(signer: Ed25519PrivateKey) -> str:
    return ledger_verifier_key(ORIGIN, signer)


@pytest.fixture
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def pg_url(postgres_server: PgServer) -> str:
    return postgres_server.create_database(f"ledger_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def superuser(postgres_server: PgServer, pg_url: str) -> Iterator[psycopg.Connection]:
    """A superuser session on the ledger's database, outside securexport."""
    dbname = pg_url.split("?")[0].rsplit("/", 1)[-1]
    with psycopg.connect(postgres_server.conninfo(dbname), autocommit=True) as conn:
        yield conn


@pytest.fixture
def filled(pg_url: str, signer: Ed25519PrivateKey) -> str:
    with Ledger.open(pg_url, origin=ORIGIN) as led:
        for n in range(10):
            append(led, signer, n)
    return pg_url


# ---- URLs (no server needed) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://alice:s3cret@db.example/ledger",
        "postgresql+psycopg://alice@db.example/ledger?password=s3cret",
        "postgresql+psycopg://alice@db.example/ledger?sslpassword=s3cret",
        "postgresql+psycopg://alice@db.example/ledger?options=-c%20password%3Ds3cret",
    ],
)
def test_password_in_ledger_url_is_refused_without_echo(url: str) -> None:
    with pytest.raises(UsageError, match="password") as caught:
        Ledger.open(url)
    assert "s3cret" not in caught.value.message
    assert "PGPASSFILE" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "url", ["mysql://alice@db/ledger", "not a url", "sqlite://", "sqlite:///x.db?mode=ro"]
)
def test_unsupported_ledger_urls(url: str) -> None:
    with pytest.raises(UsageError):
        Ledger.open(url)


def test_sqlite_url_and_default(tmp_path: Path, signer: Ed25519PrivateKey) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'team.db'}", origin=ORIGIN) as led:
        append(led, signer, 1)
    with open_ledger(tmp_path / "team.db", None) as led:
        assert led.size() == 1 and led.origin == ORIGIN


def test_unreachable_server_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="cannot open the ledger"):
        Ledger.open(f"postgresql+psycopg://nobody@/ledger?host={tmp_path}&port=1")


def test_ledger_target_precedence(world) -> None:  # type: ignore[no-untyped-def]
    env = world.exporter
    assert ledger_target(env) is None
    config = env.home.config_path
    config.write_text('\n[ledger]\nurl = "postgresql+psycopg://a@h/db"\n')
    assert ledger_target(env) == "postgresql+psycopg://a@h/db"
    env.ledger_url = "postgresql+psycopg://b@h/db"
    assert ledger_target(env) == "postgresql+psycopg://b@h/db"
    env.ledger_url = None
    config.write_text("[ledger]\nurl = 5\n")
    with pytest.raises(UsageError, match=r"ledger\.url"):
        ledger_target(env)


# ---- the ledger on PostgreSQL -----------------------------------------------------------------


@pytest.mark.postgres
def test_append_prove_verify(pg_url: str, signer: Ed25519PrivateKey) -> None:
    receipts = []
    with Ledger.open(pg_url, origin=ORIGIN) as led:
        assert led.location.startswith("postgresql://postgres@")
        for n in range(7):
            receipts.append(append(led, signer, n))
        assert led.size() == 7
        for n, receipt in enumerate(receipts):
            verdict = verify_receipt(receipt, manifest(n), [vkey(signer)])
            assert verdict.index == n
        fresh = led.prove("exp-3").to_bytes()
        assert verify_receipt(fresh, manifest(3), [vkey(signer)]).size == 7
        report = led.verify_all(vkey(signer))
        assert (report.size, report.entries_checked, report.checkpoints_checked) == (7, 7, 7)
        root = merkle.root([merkle.leaf_hash(manifest(n)) for n in range(7)])
        assert report.root_hash == root
        assert [e.index for e in led.entries(start=2, limit=3)] == [2, 3, 4]
        with pytest.raises(PolicyError, match="stale"):
            led.append_export(
                manifest(99),
                b"s",
                export_id="exp-99",
                approval_id="APR-1",
                approval_sha256=APPROVAL,
                run=3,
                max_runs=None,
                signer=signer,
                now=NOW,
            )
        assert led.size() == 7  # the refused append wrote nothing
    with Ledger.open(pg_url) as again:
        assert again.origin == ORIGIN and again.size() == 7
        assert again.pinned_verifier_key() == vkey(signer)


@pytest.mark.postgres
def test_same_schema_as_sqlite(filled: str, superuser: psycopg.Connection) -> None:
    tables = superuser.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    ).fetchall()
    columns = {(t, c) for t, c, _ in tables}
    assert {"meta", "entries", "nodes", "tree_state", "checkpoints"} <= {t for t, _ in columns}
    assert ("entries", "leaf") in columns and ("entries", "approval_sha256") in columns
    assert {d for t, c, d in tables if c in ("leaf", "hash", "root_hash")} == {"bytea"}


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET run = 9 WHERE idx = 2",
        "DELETE FROM entries WHERE idx = 9",
        "DELETE FROM nodes",
        "UPDATE checkpoints SET note = 'x'",
        "DELETE FROM meta WHERE key = 'origin'",
        "TRUNCATE entries CASCADE",
        "TRUNCATE checkpoints",
    ],
)
def test_triggers_refuse_update_delete_truncate(
    filled: str, superuser: psycopg.Connection, statement: str
) -> None:
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        superuser.execute(statement)
    assert superuser.execute("SELECT count(*) FROM entries").fetchone() == (10,)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("tamper", "index", "message"),
    [
        ("UPDATE entries SET leaf = '\\x7b7d'::bytea WHERE idx = 6", 6, "manifest bytes"),
        ("DELETE FROM entries WHERE idx = 4", 4, "gap"),
        ("UPDATE entries SET run = 12 WHERE idx = 8", 8, "run 12 .* should be run 9"),
        (
            "UPDATE checkpoints SET note = replace(note, '\n5\n', '\n6\n') WHERE size = 5",
            4,
            "size 5",
        ),
    ],
)
def test_tamper_as_superuser_is_found_at_its_index(
    filled: str,
    superuser: psycopg.Connection,
    signer: Ed25519PrivateKey,
    tamper: str,
    index: int,
    message: str,
) -> None:
    """A superuser can switch the triggers off; verify_all still names the entry."""
    for table in ("entries", "checkpoints"):
        superuser.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    assert superuser.execute(tamper).rowcount == 1
    with Ledger.open(filled) as led:
        with pytest.raises(LedgerVerificationError, match=message) as caught:
            led.verify_all(vkey(signer))
    assert caught.value.index == index


@pytest.mark.postgres
def test_tamper_leaf_and_every_derived_hash(
    filled: str, superuser: psycopg.Connection, signer: Ed25519PrivateKey
) -> None:
    """Rewriting a leaf and its leaf hash consistently still breaks the signed checkpoints."""
    superuser.execute("ALTER TABLE entries DISABLE TRIGGER USER")
    forged = b'{"forged":true}'
    superuser.execute(
        "UPDATE entries SET leaf = %s, leaf_hash = %s WHERE idx = 5",
        (forged, merkle.leaf_hash(forged)),
    )
    with Ledger.open(filled) as led, pytest.raises(LedgerVerificationError) as caught:
        led.verify_all(vkey(signer))
    assert caught.value.index == 5


# ---- concurrency ------------------------------------------------------------------------------


def _worker(url: str, seed: bytes, worker: int, count: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    done = retries = 0
    with Ledger.open(url) as led:
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


@pytest.mark.postgres
def test_concurrent_appends_from_8_processes(pg_url: str, signer: Ed25519PrivateKey) -> None:
    with Ledger.open(pg_url, origin=ORIGIN):
        pass
    seed = signer.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(pg_url, seed, w, 25, queue)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    results = [queue.get(timeout=5) for _ in procs]
    assert all(p.exitcode == 0 for p in procs)
    assert sorted(r[1] for r in results) == [25] * 8
    with Ledger.open(pg_url) as led:
        entries = list(led.entries())
        assert [e.index for e in entries] == list(range(200))  # no gaps
        assert sorted(e.run for e in entries) == list(range(1, 201))  # no run counted twice
        assert len({e.export_id for e in entries}) == 200
        report = led.verify_all(vkey(signer))  # one tree: no fork
        assert (report.size, report.checkpoints_checked) == (200, 200)
        some = entries[123]
        verify_receipt(led.prove(some.export_id).to_bytes(), some.leaf, [vkey(signer)])


def _open_origin(url: str) -> str:
    with Ledger.open(url) as led:
        return led.origin


@pytest.mark.postgres
def test_concurrent_open_of_a_new_ledger(pg_url: str) -> None:
    """Schema creation and origin choice are race-free on an empty database too."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        origins = pool.map(_open_origin, [pg_url] * 6)
    assert len(set(origins)) == 1


# ---- through the API: [ledger] url in config.toml -----------------------------------------------


@pytest.mark.postgres
def test_export_logs_to_the_team_ledger(world, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    for env in (world.exporter, world.owner):
        config = env.home.config_path
        config.write_text(f'\n[ledger]\nurl = "{pg_url}"\n')
    # The team ledger has an origin of its own: the approval names its verifier key.
    world.ledger_vkey = api.ledger_verifier_key(world.exporter)
    result = world.export()
    verdict = api.verify(world.recipient, result.bundle)
    assert verdict.ledger_index == 0 and verdict.ledger_size == 1
    with Ledger.open(world.exporter.home.ledger_path) as local:
        assert local.size() == 0  # nothing went to the home's ledger.db
    # Another installation pointed at the same ledger sees and audits the export.
    [entry] = api.ledger_entries(world.owner)
    assert entry.export_id == result.export_id
    assert api.ledger_verify(world.owner).size == 1
    second = world.export()
    assert (second.run, second.ledger_index) == (2, 1)
