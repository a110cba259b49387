"""Breach response: sealed entity lists, the manifest digest, and the breach query at scale."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from securexport import api
from securexport._crypto import sshsig
from securexport.cli import cli
from securexport.data.entities import ENTITIES, EntityCollector, parse_entity_list
from securexport.data.transforms import pseudonym_reference
from securexport.errors import UsageError, VerificationError
from securexport.home.keystore import KeyStore
from securexport.home.truststore import TrustStore
from securexport.ledger.log import Ledger
from securexport.policy.manifest import canonical_bytes
from tests.support.cli import Runner
from tests.support.world import FIXED_NOW, TEST_LOG_N, World


def _owner_approval(world: World, **kwargs: object) -> Path:
    owner = f'\n[owner]\nname = "owner"\nage = "{world.ids["owner"].age_recipient}"\n'
    return world.write_approval(extra=owner, **kwargs)  # type: ignore[arg-type]


def test_entity_list_round_trip_and_digest() -> None:
    collector = EntityCollector()
    for value in (3, "3", 7, 7, "x"):
        collector.add(value)
    assert len(collector) == 3  # 3 and "3" are the same id as text
    plain = b"securexport.entity-set/1\n" + collector.salt + b"".join(collector.sorted_hashes())
    parsed = parse_entity_list(plain)
    assert parsed.digest == collector.digest()
    assert parsed.keyed("7") in parsed.hashes and parsed.keyed("8") not in parsed.hashes
    with pytest.raises(VerificationError):
        parse_entity_list(plain[:-1])


def test_export_seals_the_people_it_wrote(world: World, tmp_path: Path) -> None:
    result = world.export(_owner_approval(world))
    records = result.manifest["records"]
    assert records["entities"] > 0 and len(records["entity_set_sha256"]) == 64

    # The owner witnesses the log (the sealed list travels with the sync file).
    TrustStore(world.owner.home).add("contractor", world.ledger_vkey, "ledger")
    sync = tmp_path / "sync.json"
    api.write_sync(world.exporter, 0, sync)
    api.witness(world.owner, sync, "contractor", tmp_path / "c.cosig")

    with sqlite3.connect(world.db_path) as db:
        all_ids = [str(r[0]) for r in db.execute("SELECT offender_id FROM offenders")]
    candidates = tmp_path / "ids.txt"
    candidates.write_text("\n".join(all_ids) + "\n")

    blind = api.breach_report(world.owner, bundles=[result.bundle], log="contractor")
    assert blind.people_at_most == records["entities"] and blind.named is None
    # The same from the mirror, by recipient (a lost laptop) and by auditor.
    for party in ("force", "audit", world.ids["recipient"].age_recipient):
        by_party = api.breach_report(world.owner, recipient=party, log="contractor")
        assert [e.export_id for e in by_party.exports] == [result.export_id]
    with pytest.raises(VerificationError, match="no logged export was sent to stranger"):
        api.breach_report(world.owner, recipient="stranger", log="contractor")
    assert blind.approvals == ["APR-2026-0042"]
    assert {r["name"] for r in blind.recipients} == {"force", "audit"}

    report = api.breach_report(
        world.owner,
        bundles=[result.bundle],
        log="contractor",
        as_name="owner",
        candidates=candidates,
    )
    assert report.named is not None and len(report.named) == records["entities"]

    # The named people are exactly those whose pseudonyms are in the decrypted extract.
    out = api.decrypt(world.recipient, result.bundle, "force", tmp_path / "out")
    with open(out.files[0], newline="", encoding="utf-8") as fh:
        exported = {row["offender"] for row in csv.DictReader(fh)}
    key = KeyStore(world.owner, scrypt_log_n=TEST_LOG_N).pseudonym_key("test-key")
    assert {pseudonym_reference(key, "APR-2026-0042", n) for n in report.named} == exported

    # Without the owner's key nobody can open the list: the exporter's ledger has it sealed.
    with pytest.raises(Exception, match=r"(?i)identit|key"):
        api.breach_report(world.exporter, bundles=[result.bundle], as_name="analyst")


def test_swapped_list_is_detected(world: World, tmp_path: Path) -> None:
    result = world.export(_owner_approval(world))
    other = EntityCollector()
    other.add("1")
    with sqlite3.connect(world.exporter.home.ledger_path) as db:
        db.execute("DROP TRIGGER attachments_no_update")
        db.execute(
            "UPDATE attachments SET data = ? WHERE name = ?",
            (other.sealed(world.ids["owner"].age_recipient), ENTITIES),
        )
    # The owner reads the exporter's ledger file here (as an auditor would, on a copy).
    with (
        sqlite3.connect(world.exporter.home.ledger_path) as src,
        sqlite3.connect(world.owner.home.ledger_path) as dst,
    ):
        src.backup(dst)
    with pytest.raises(VerificationError, match="not the one its signed manifest records"):
        api.breach_report(world.owner, bundles=[result.bundle], as_name="owner")


def test_breach_needs_targets_and_a_key_to_name(world: World, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        api.breach_report(world.owner)
    with pytest.raises(UsageError, match="owner's key"):
        api.breach_report(world.owner, export_ids=["x"], candidates=tmp_path / "ids.txt")


def test_breach_query_over_a_thousand_exports(world: World, tmp_path: Path) -> None:
    """A ledger of 1,200 exports built by direct appends; the query must be exact."""
    template = api.inspect(world.export(_owner_approval(world)).bundle).to_json()
    store = KeyStore(world.owner, scrypt_log_n=TEST_LOG_N)
    signer = store.signing_key("owner")
    ledger_key = store.ledger_signing_key()
    owner_age = world.ids["owner"].age_recipient
    recipient_sets = [
        [{"name": f"force-{j}", "age": world.ids["recipient"].age_recipient}] for j in range(4)
    ]
    rng = random.Random(42)
    truth: dict[str, set[str]] = {}
    facts: dict[str, tuple[str, str]] = {}
    made: dict[str, datetime] = {}
    with Ledger.open(world.owner.home.ledger_path) as led:
        for i in range(1200):
            doc = copy.deepcopy(template)
            export_id = f"syn-{i:05d}"
            approval_id = f"APR-SYN-{i % 17}"
            approval_sha = hashlib.sha256(approval_id.encode()).hexdigest()
            people = {str(p) for p in rng.sample(range(50_000), rng.randint(1, 40))}
            collector = EntityCollector()
            for p in people:
                collector.add(p)
            doc["export_id"] = export_id
            doc["approval"]["id"], doc["approval"]["sha256"] = approval_id, approval_sha
            doc["approval"]["run"] = led.runs_used(approval_sha) + 1
            doc["operator"]["ssh"] = world.ids["owner"].signing_key.to_line()
            doc["recipients"] = recipient_sets[i % 4]
            doc["records"]["entities"] = len(people)
            doc["records"]["entity_set_sha256"] = collector.digest()
            moment = FIXED_NOW + timedelta(hours=i)  # one export an hour, for --since/--until
            doc["created_at"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            made[export_id] = moment
            raw = canonical_bytes(doc)
            led.append_export(
                raw,
                sshsig.sign(signer, raw, sshsig.NAMESPACE_MANIFEST),
                export_id=export_id,
                approval_id=approval_id,
                approval_sha256=approval_sha,
                run=doc["approval"]["run"],
                max_runs=None,
                signer=ledger_key,
                now=moment,
                attachments={ENTITIES: collector.sealed(owner_age)},
            )
            truth[export_id] = people
            facts[export_id] = (approval_id, f"force-{i % 4}")
        assert led.size() == 1200

    leaked = rng.sample(sorted(truth), 9)
    candidates = tmp_path / "ids.txt"
    candidates.write_text("\n".join(str(p) for p in range(50_000)) + "\n")
    report = api.breach_report(
        world.owner, export_ids=leaked, as_name="owner", candidates=candidates
    )
    union = set().union(*(truth[e] for e in leaked))
    assert report.named is not None and set(report.named) == union
    assert report.people_at_most == sum(len(truth[e]) for e in leaked)
    assert report.approvals == sorted({facts[e][0] for e in leaked})
    named_recipients = {r["name"] for r in report.recipients if r["role"] == "recipient"}
    assert named_recipients == {facts[e][1] for e in leaked}
    assert [e.export_id for e in report.exports] == leaked
    assert all(e.people_opened == len(truth[e.export_id]) for e in report.exports)

    # A candidate list that misses people names only those it holds.
    half = tmp_path / "half.txt"
    half.write_text("\n".join(str(p) for p in range(25_000)) + "\n")
    partial = api.breach_report(world.owner, export_ids=leaked, as_name="owner", candidates=half)
    assert partial.named is not None
    assert set(partial.named) == {p for p in union if int(p) < 25_000}

    # The CLI renders the same answer as one JSON document.
    runner = Runner()
    env = {
        "SECUREXPORT_KEYSTORE": "file",
        "SECUREXPORT_PASSPHRASE_FILE": world.owner.passphrase_file or "",
    }
    args = ["--home", str(world.owner.home.path), "--json", "ledger", "breach"]
    for e in leaked:
        args += ["--export-id", e]
    res = runner.invoke(cli, [*args, "--as", "owner", "--candidates", str(candidates)], env=env)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["people"] == len(union)

    # A lost laptop: every export to one recipient, then only those of a period.
    to_force_2 = [e for e in truth if facts[e][1] == "force-2"]
    lost = api.breach_report(world.owner, recipient="force-2")
    assert [e.export_id for e in lost.exports] == to_force_2 and len(to_force_2) == 300
    assert lost.people_at_most == sum(len(truth[e]) for e in to_force_2)
    assert {r["name"] for r in lost.recipients if r["role"] == "recipient"} == {"force-2"}
    start, end = FIXED_NOW + timedelta(hours=100), FIXED_NOW + timedelta(hours=200)
    window = api.breach_report(world.owner, recipient="force-1", since=start, until=end)
    expected = [e for e in truth if facts[e][1] == "force-1" and start <= made[e] <= end]
    assert [e.export_id for e in window.exports] == expected and len(expected) == 25
    # Through the CLI, with whole UTC days (FIXED_NOW is 2026-06-01T12:00Z).
    day_args = ["--recipient", "force-3", "--since", "2026-06-02", "--until", "2026-06-03"]
    base = ["--home", str(world.owner.home.path), "--json", "ledger", "breach"]
    res = runner.invoke(cli, [*base, *day_args], env=env)
    assert res.exit_code == 0, res.stderr
    days = [
        e
        for e in truth
        if facts[e][1] == "force-3"
        and datetime(2026, 6, 2, tzinfo=UTC) <= made[e] < datetime(2026, 6, 4, tzinfo=UTC)
    ]
    assert [x["export_id"] for x in json.loads(res.stdout)["exports"]] == days and len(days) == 12
    with pytest.raises(VerificationError, match="no logged export was sent to nobody"):
        api.breach_report(world.owner, recipient="nobody")
    with pytest.raises(UsageError, match="narrow a --recipient search"):
        api.breach_report(world.owner, since=start)


def test_owner_table_is_parsed_strictly(world: World) -> None:
    from securexport.errors import ApprovalError
    from securexport.policy.approval import parse_approval

    age = world.ids["owner"].age_recipient
    ok = world.approval_text(extra=f'\n[owner]\nname = "owner"\nage = "{age}"\n')
    assert parse_approval(ok.encode()).owner is not None
    assert parse_approval(world.approval_text().encode()).owner is None
    for bad, message in (
        (f'\n[owner]\nname = "owner"\nage = "{age}"\nssh = "x"\n', "unknown key"),
        ('\n[owner]\nname = "owner"\nage = "age1nope"\n', "age"),
        (f'\n[owner]\nage = "{age}"\n', "name"),
    ):
        with pytest.raises(ApprovalError, match=message):
            parse_approval(world.approval_text(extra=bad).encode())
