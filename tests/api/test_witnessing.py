"""The data owner's witness: sync → witness → cosign, rollback, caps, expiry, required cosigs."""

from __future__ import annotations

import copy
import dataclasses
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from securexport import api
from securexport._crypto import sshsig
from securexport._crypto.cosignature import (
    add_cosignature,
    cosign,
    make_cosigner_key,
    parse_cosigner_key,
    verify_cosignature,
)
from securexport._crypto.note import Checkpoint
from securexport.bundle.container import (
    APPROVAL,
    APPROVAL_SIG,
    COSIGNATURE,
    add_cosignature_member,
    open_bundle,
)
from securexport.cli import cli
from securexport.errors import PolicyError, UsageError, VerificationError
from securexport.home.keystore import KeyStore
from securexport.home.truststore import TrustStore
from securexport.ledger.log import Ledger
from securexport.ledger.receipt import Receipt
from securexport.ledger.sync import parse_sync
from securexport.limits import DEFAULT_LIMITS
from securexport.policy.manifest import canonical_bytes
from tests.support.cli import Runner
from tests.support.world import FIXED_NOW, TEST_LOG_N, World

LOG = "contractor"


# ------------------------------------------------------------------ cosignature/v1 primitives


def test_cosignature_round_trip_and_tamper() -> None:
    key = Ed25519PrivateKey.generate()
    vkey = make_cosigner_key("example.org/witness", key.public_key())
    assert parse_cosigner_key(vkey).name == "example.org/witness"
    text = Checkpoint("example.org/log", 3, b"\x01" * 32).to_text()
    note = text + "\n\u2014 example.org/log AAAAAAAA\n"
    cosigned = add_cosignature(note, cosign(text, "example.org/witness", key, 1_700_000_000))
    assert verify_cosignature(cosigned, vkey) == (text, 1_700_000_000)
    tampered = cosigned.replace("\n3\n", "\n4\n")
    with pytest.raises(VerificationError):
        verify_cosignature(tampered, vkey)
    other = make_cosigner_key("example.org/witness", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(VerificationError):
        verify_cosignature(cosigned, other)
    with pytest.raises(VerificationError):  # no cosignature at all
        verify_cosignature(note, vkey)


def test_cosigner_key_rejects_note_keys() -> None:
    from securexport._crypto.note import make_verifier_key

    key = Ed25519PrivateKey.generate()
    with pytest.raises(ValueError, match="0x04"):
        parse_cosigner_key(make_verifier_key("w", key.public_key()))


# ------------------------------------------------------------------ helpers


def _setup(world: World, *, required: bool = True, **kwargs: Any) -> tuple[Path, str]:
    TrustStore(world.owner.home).add(LOG, world.ledger_vkey, "ledger")
    wkey = api.witness_verifier_key(world.owner)
    extra = f'\n[witness]\nkey = "{wkey}"\nrequired = {"true" if required else "false"}\n'
    return world.write_approval(extra=extra, **kwargs), wkey


def _sync(world: World, since: int) -> Path:
    world.counter += 1
    path = world.root / f"sync-{world.counter}.json"
    api.write_sync(world.exporter, since, path)
    return path


def _witness(world: World, sync: Path, env: Any = None) -> Path:
    out = sync.with_suffix(".cosig")
    api.witness(env or world.owner, sync, LOG, out)
    return out


def _forge(world: World, bundle: Path, now: datetime, **changes: Any) -> None:
    """Log an export the way an edited copy of securexport could: caps and windows unchecked."""
    with open_bundle(bundle, DEFAULT_LIMITS) as opened:
        doc = json.loads(opened.member("manifest.json"))
        approval_raw, approval_sig = opened.member(APPROVAL), opened.member(APPROVAL_SIG)
    doc = copy.deepcopy(doc)
    doc["export_id"] = f"forged-{world.counter}-{now.timestamp()}"
    doc["created_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    store = KeyStore(world.exporter, scrypt_log_n=TEST_LOG_N)
    with Ledger.open(world.exporter.home.ledger_path) as led:
        doc["approval"]["run"] = led.runs_used(doc["approval"]["sha256"]) + 1
        for key, value in changes.items():
            doc[key] = value
        raw = canonical_bytes(doc)
        sig = sshsig.sign(store.signing_key("analyst"), raw, sshsig.NAMESPACE_MANIFEST)
        led.append_export(
            raw,
            sig,
            export_id=doc["export_id"],
            approval_id=doc["approval"]["id"],
            approval_sha256=doc["approval"]["sha256"],
            run=doc["approval"]["run"],
            max_runs=None,
            signer=store.ledger_signing_key(),
            now=now,
            attachments={APPROVAL: approval_raw, APPROVAL_SIG: approval_sig},
        )


# ------------------------------------------------------------------ the round trip


def test_required_cosignature_refused_then_accepted(world: World, tmp_path: Path) -> None:
    approval, wkey = _setup(world)
    result = world.export(approval)
    with pytest.raises(VerificationError, match="witness cosignature"):
        api.verify(world.recipient, result.bundle)
    with pytest.raises(VerificationError, match="witness cosignature"):
        api.decrypt(world.recipient, result.bundle, "force", tmp_path / "out0")
    assert not (tmp_path / "out0").exists()

    sync = _sync(world, 0)
    parsed = parse_sync(sync.read_bytes())
    assert len(parsed.entries) == 1 and APPROVAL in parsed.entries[0].attachments
    cosig = _witness(world, sync)
    _, ts = verify_cosignature(cosig.read_text(), wkey)
    assert ts == int(FIXED_NOW.timestamp())
    api.cosign_bundle(world.exporter, result.bundle, cosig)
    with open_bundle(result.bundle, DEFAULT_LIMITS) as opened:
        assert opened.has(COSIGNATURE)
    assert not result.bundle.with_name(result.bundle.name + ".partial").exists()

    verdict = api.verify(world.recipient, result.bundle)
    assert any(c.startswith("witness cosignature") for c in verdict.checks)
    out = api.decrypt(world.recipient, result.bundle, "force", tmp_path / "out1")
    assert out.rows == result.rows_written


def test_cosignature_by_another_witness_refused(world: World) -> None:
    approval, _ = _setup(world)
    result = world.export(approval)
    # The owner's witness cosigns, but the approval was changed to name a stranger's key.
    sync = _sync(world, 0)
    cosig = _witness(world, sync)
    api.cosign_bundle(world.exporter, result.bundle, cosig)
    stranger = make_cosigner_key("someone/else", Ed25519PrivateKey.generate().public_key())
    other = world.write_approval(extra=f'\n[witness]\nkey = "{stranger}"\n', approval_id="APR-2")
    second = world.export(other)
    cosig2 = _witness(world, _sync(world, 1))
    with pytest.raises(VerificationError):  # the exporter's side notices first…
        api.cosign_bundle(world.exporter, second.bundle, cosig2)
    with Ledger.open(world.exporter.home.ledger_path) as led:  # …so add it by hand
        proof = led.prove_at(second.export_id, 2)
    receipt = Receipt(proof.index, proof.proof, cosig2.read_text()).to_bytes()
    add_cosignature_member(second.bundle, receipt, DEFAULT_LIMITS)
    with pytest.raises(VerificationError, match="does not verify"):
        api.verify(world.recipient, second.bundle)


def test_optional_witness_without_cosignature_accepted(world: World) -> None:
    approval, _ = _setup(world, required=False)
    result = world.export(approval)
    api.verify(world.recipient, result.bundle)


def test_cosign_needs_a_checkpoint_covering_the_export(world: World) -> None:
    approval, _ = _setup(world)
    first = world.export(approval)
    cosig = _witness(world, _sync(world, 0))
    second = world.export(approval)
    with pytest.raises(UsageError, match="does not cover"):
        api.cosign_bundle(world.exporter, second.bundle, cosig)
    api.cosign_bundle(world.exporter, first.bundle, cosig)
    # The next sync starts where the witness stopped; the new cosignature covers both.
    cosig2 = _witness(world, _sync(world, 1))
    api.cosign_bundle(world.exporter, second.bundle, cosig2)
    api.verify(world.recipient, second.bundle)


# ------------------------------------------------------------------ what the witness refuses


def _backup(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def _restore(src: Path, dst: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    dst.unlink()
    _backup(src, dst)


def test_sync_from_beyond_what_the_witness_saw_refused(world: World) -> None:
    approval, _ = _setup(world)
    world.export(approval)
    with pytest.raises(UsageError, match="has seen 0 entries") as caught:
        _witness(world, _sync(world, 1))
    assert caught.value.hint is not None and "--since 0" in caught.value.hint


def test_run_beyond_cap_refused_by_witness(world: World) -> None:
    approval, _ = _setup(world, max_runs=1)
    result = world.export(approval)
    with pytest.raises(PolicyError, match="used all 1"):  # the exporter's installation refuses…
        world.export(approval)
    cosig = _witness(world, _sync(world, 0))
    _forge(world, result.bundle, FIXED_NOW)  # …but an edited copy logs a second run
    with pytest.raises(PolicyError, match="run 2 of an approval allowing 1"):
        _witness(world, _sync(world, 1))
    assert cosig.exists()
    with pytest.raises(UsageError):  # nothing was stored: the witness still expects size 1
        _witness(world, _sync(world, 2))


def test_expired_approval_refused_by_witness(world: World) -> None:
    approval, _ = _setup(world, expires="2026-07-01T00:00:00Z")
    result = world.export(approval)
    later = datetime(2026, 7, 2, tzinfo=UTC)
    _forge(world, result.bundle, later)
    owner_later = dataclasses.replace(world.owner, now=lambda: later + timedelta(hours=1))
    with pytest.raises(PolicyError, match="outside the approval's validity window"):
        _witness(world, _sync(world, 0), owner_later)


def test_backdated_export_refused_by_witness(world: World) -> None:
    approval, _ = _setup(world)
    world.export(approval)
    much_later = dataclasses.replace(world.owner, now=lambda: FIXED_NOW + timedelta(days=60))
    with pytest.raises(PolicyError, match="backdated"):
        _witness(world, _sync(world, 0), much_later)


def test_untrusted_log_and_tampered_sync_refused(world: World) -> None:
    approval, _ = _setup(world)
    world.export(approval)
    sync = _sync(world, 0)
    with pytest.raises(UsageError, match="no trusted ledger"):
        api.witness(world.owner, sync, "nobody", world.root / "x.cosig")
    doc = json.loads(sync.read_bytes())
    doc["checkpoint"] = doc["checkpoint"].replace("\n1\n", "\n2\n", 1)
    bad = world.root / "bad-sync.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(VerificationError):
        api.witness(world.owner, bad, LOG, world.root / "y.cosig")
    assert not (world.root / "y.cosig").exists()


def test_cli_sync_witness_cosign(world: World, passphrase_file: Path) -> None:
    approval, _ = _setup(world)
    result = world.export(approval)
    env = {"SECUREXPORT_KEYSTORE": "file", "SECUREXPORT_PASSPHRASE_FILE": str(passphrase_file)}
    runner = Runner()
    sync = world.root / "cli-sync.json"
    cosig = world.root / "cli.cosig"

    def run(home: Path, *args: str) -> Any:
        return runner.invoke(cli, ["--home", str(home), "--json", *args], env=env)

    out = run(world.exporter.home.path, "ledger", "sync", "--since", "0", "-o", str(sync))
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["size"] == 1
    # The real clock is used here: allow the fixed export date.
    out = run(
        world.owner.home.path, "ledger", "witness", str(sync), "--log", LOG,
        "-o", str(cosig), "--max-delay-days", "3650",
    )  # fmt: skip
    assert out.exit_code in (0, 3), out.stderr
    if out.exit_code == 3:  # the machine's clock is before the fixed export date
        pytest.skip("system clock earlier than the test world's export")
    assert json.loads(out.stdout)["new_entries"] == 1
    out = run(world.exporter.home.path, "ledger", "cosign", str(result.bundle), str(cosig))
    assert out.exit_code == 0, out.stderr
    out = run(world.recipient.home.path, "verify", str(result.bundle))
    assert out.exit_code == 0, out.stderr


def test_export_with_an_unapproved_column_refused_by_witness(world: World) -> None:
    """The witness holds each export against its approval with the same checks as verify."""
    approval, _ = _setup(world)
    result = world.export(approval)
    _witness(world, _sync(world, 0))
    columns = copy.deepcopy(result.manifest["columns"])
    columns.append(
        {"name": "full_name", "source": "full_name", "transform": "keep@1", "on_invalid": "error"}
    )
    _forge(world, result.bundle, FIXED_NOW, columns=columns)
    with pytest.raises(PolicyError, match="columns differ"):
        _witness(world, _sync(world, 1))


# ------------------------------------------------------------------ revoked keys, rollback exit 5


def _owner_revokes(world: World, kind: str, target: str) -> None:
    """The owner signs a revocation and imports it into the witness's own home."""
    world.counter += 1
    path = world.root / f"revocation-{world.counter}.json"
    api.revoke(world.owner, kind, target, "owner", path, reason="test")
    api.import_revocation(world.owner, path)


def _revocation_targets(world: World) -> dict[str, tuple[str, str]]:
    return {
        "exporter key": ("exporter", world.ids["exporter"].signing_key.to_line()),
        "recipient key": ("recipient", world.ids["recipient"].age_recipient),
        "auditor key": ("recipient", world.ids["auditor"].age_recipient),
    }


@pytest.mark.parametrize("which", ["exporter key", "recipient key", "auditor key"])
def test_witness_stops_cosigning_for_a_revoked_key(world: World, which: str) -> None:
    approval, _ = _setup(world)
    world.export(approval)
    sync = _sync(world, 0)
    kind, target = _revocation_targets(world)[which]
    _owner_revokes(world, kind, target)
    out = sync.with_suffix(".cosig")
    with pytest.raises(PolicyError, match="revoked") as caught:
        api.witness(world.owner, sync, LOG, out)
    assert caught.value.exit_code == 3
    message = str(caught.value)
    assert "entry 0:" in message
    if kind == "exporter":
        assert world.ids["exporter"].signing_key.fingerprint() in message
    else:
        assert target in message
    assert not out.exists()
    # Nothing was stored: the witness still expects the log from size 0.
    with pytest.raises(UsageError, match="has seen 0 entries"):
        _witness(world, _sync(world, 1))


def test_witness_cosigns_despite_unrelated_revocations(world: World) -> None:
    """The control for the test above: revocations of other keys change nothing."""
    approval, wkey = _setup(world)
    world.export(approval)
    _owner_revokes(world, "recipient", world.ids["outsider"].age_recipient)
    _owner_revokes(world, "exporter", world.ids["outsider"].signing_key.to_line())
    _owner_revokes(world, "approval", "APR-1999-0001")
    cosig = _witness(world, _sync(world, 0))
    verify_cosignature(cosig.read_text(), wkey)


def test_witness_refuses_exports_after_the_key_is_revoked_but_keeps_what_it_cosigned(
    world: World,
) -> None:
    """A revocation stops the next cosignature, not the earlier one."""
    approval, wkey = _setup(world)
    world.export(approval)
    first = _witness(world, _sync(world, 0))
    world.export(approval)
    _owner_revokes(world, "recipient", world.ids["recipient"].age_recipient)
    with pytest.raises(PolicyError, match=r"entry 1: .*revoked"):
        _witness(world, _sync(world, 1))
    assert verify_cosignature(first.read_text(), wkey)[0].split("\n")[1] == "1"


def _rolled_back(world: World) -> tuple[Path, Path]:
    """The witness saw 2 entries; then the ledger is restored to 1 and something else logged at
    index 1.  Returns (the backup of size 1, the rolled-back ledger's path)."""
    approval, _ = _setup(world)
    ledger_db = world.exporter.home.ledger_path
    world.export(approval)
    saved = world.root / "ledger-after-1.db"
    _backup(ledger_db, saved)
    world.export(approval)
    _witness(world, _sync(world, 0))
    _restore(saved, ledger_db)
    world.export(approval)
    return saved, ledger_db


def test_rolled_back_ledger_exits_5(world: World) -> None:
    """A tail rolled back and rewritten, or cut: caught by the witness's stored checkpoint."""
    saved, ledger_db = _rolled_back(world)
    for since, needle in (
        (0, "rolled back or forked"),
        (1, "rolled back or forked"),
        (2, "not consistent"),
    ):
        sync = _sync(world, since)
        out = sync.with_suffix(".cosig")
        with pytest.raises(VerificationError, match=needle) as caught:
            api.witness(world.owner, sync, LOG, out)
        assert caught.value.exit_code == 5, (since, caught.value)
        assert not out.exists()
    _restore(saved, ledger_db)  # the log cut back to 1 entry
    sync = _sync(world, 0)
    with pytest.raises(VerificationError, match="shrank") as caught:
        api.witness(world.owner, sync, LOG, sync.with_suffix(".cosig"))
    assert caught.value.exit_code == 5


def test_rolled_back_ledger_exits_5_on_the_command_line(
    world: World, passphrase_file: Path
) -> None:
    """`ledger witness` exits 5 (not 3: this is not a policy refusal) with one error line.
    The consistency checks come before any check that reads the clock, so the real clock of
    the command line does not matter here."""
    saved, ledger_db = _rolled_back(world)
    env = {"SECUREXPORT_KEYSTORE": "file", "SECUREXPORT_PASSPHRASE_FILE": str(passphrase_file)}

    def witness_cli(sync: Path, *extra: str) -> Any:
        out = sync.with_suffix(".cosig")
        result = Runner().invoke(
            cli,
            [
                *("--home", str(world.owner.home.path), *extra),
                *("ledger", "witness", str(sync), "--log", LOG, "-o", str(out)),
                *("--max-delay-days", "3650"),
            ],
            env=env,
            catch_exceptions=False,
        )
        assert not out.exists()
        return result

    cases = [(_sync(world, 0), "rolled back or forked"), (_sync(world, 1), "rolled back")]
    _restore(saved, ledger_db)
    cases.append((_sync(world, 0), "shrank"))
    for sync, needle in cases:
        for extra in ((), ("--json",)):
            result = witness_cli(sync, *extra)
            assert result.exit_code == 5, (sync, result.stdout, result.stderr)
            assert result.stdout == ""
            lines = [ln for ln in result.stderr.splitlines() if ln]
            assert lines[0].startswith("securexport: error: ") and needle in lines[0], lines
            assert all(ln.startswith(("securexport: error:", "securexport: hint:")) for ln in lines)
