"""Revocations: signed, imported, and refused by export (3), verify and decrypt (5), the witness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from securexport import api
from securexport._crypto import sshsig
from securexport.cli import cli
from securexport.errors import PolicyError, UsageError, VerificationError
from securexport.home.keystore import KeyStore
from securexport.home.truststore import TrustStore
from securexport.policy.revocation import SCHEMA, make_revocation, parse_revocation
from tests.support.cli import Runner
from tests.support.world import FIXED_NOW, TEST_LOG_N, World

# ------------------------------------------------------------------ the document


def test_make_and_parse_round_trip() -> None:
    raw = make_revocation("approval", "APR-2026-0042", FIXED_NOW, "leaked")
    rev = parse_revocation(raw)
    assert (rev.kind, rev.approval_id, rev.reason) == ("approval", "APR-2026-0042", "leaked")
    assert rev.revoked_at == "2026-06-01T12:00:00Z"
    sha = "ab" * 32
    assert parse_revocation(make_revocation("approval", sha, FIXED_NOW)).approval_sha256 == sha


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"kind": "approval", "approval_id": "APR-1", "extra": "x"}, "unknown keys"),
        ({"kind": "approval"}, "exactly one target"),
        ({"kind": "approval", "approval_id": "APR-1", "approval_sha256": "ab" * 32}, "exactly one"),
        ({"kind": "approval", "approval_id": "apr; drop"}, "not an approval id"),
        ({"kind": "recipient", "age": "age1notakey"}, "not an age1"),
        ({"kind": "exporter", "ssh": "ssh-rsa AAAA"}, "ssh-ed25519"),
        ({"kind": "everything", "approval_id": "APR-1"}, "unknown kind"),
    ],
)
def test_parse_rejects(doc: dict[str, Any], message: str) -> None:
    full = {"schema": SCHEMA, "revoked_at": "2026-06-01T12:00:00Z", **doc}
    with pytest.raises(VerificationError, match=message):
        parse_revocation(rfc8785.dumps(full))


def test_parse_rejects_non_canonical() -> None:
    raw = make_revocation("approval", "APR-1", FIXED_NOW)
    with pytest.raises(VerificationError, match="canonical"):
        parse_revocation(json.dumps(json.loads(raw), indent=1).encode())


def test_make_rejects_bad_targets() -> None:
    with pytest.raises(UsageError):
        make_revocation("recipient", "age1bad", FIXED_NOW)
    with pytest.raises(UsageError):
        make_revocation("exporter", "not a key", FIXED_NOW)


# ------------------------------------------------------------------ import


def _revoke(world: World, kind: str, target: str, *, signer: str = "owner") -> Path:
    world.counter += 1
    path = world.root / f"revocation-{world.counter}.json"
    env = world.owner if signer == "owner" else world.outsider
    api.revoke(env, kind, target, signer, path, reason="test")
    return path


def _import_everywhere(world: World, path: Path) -> None:
    for env in (world.exporter, world.recipient, world.owner):
        api.import_revocation(env, path)


def test_import_requires_a_trusted_approver(world: World) -> None:
    path = _revoke(world, "approval", "APR-2026-0042", signer="stranger")
    with pytest.raises(VerificationError, match="not a trusted approver"):
        api.import_revocation(world.exporter, path)
    assert api.list_revocations(world.exporter) == []


def test_import_refuses_a_tampered_revocation(world: World) -> None:
    path = _revoke(world, "approval", "APR-2026-0042")
    path.write_bytes(path.read_bytes().replace(b"APR-2026-0042", b"APR-2026-0043"))
    with pytest.raises(VerificationError):
        api.import_revocation(world.exporter, path)


def test_import_refuses_an_approval_signature(world: World) -> None:
    """A signature in the approval namespace cannot pass as a revocation."""
    raw = make_revocation("approval", "APR-2026-0042", FIXED_NOW)
    path = world.root / "cross.json"
    path.write_bytes(raw)
    key = KeyStore(world.owner, scrypt_log_n=TEST_LOG_N).signing_key("owner")
    (world.root / "cross.json.sig").write_bytes(sshsig.sign(key, raw, sshsig.NAMESPACE_APPROVAL))
    with pytest.raises(VerificationError):
        api.import_revocation(world.exporter, path)


def test_import_is_idempotent_and_listed(world: World) -> None:
    path = _revoke(world, "approval", "APR-2026-0042")
    assert api.import_revocation(world.exporter, path)[2] is True
    assert api.import_revocation(world.exporter, path)[2] is False
    assert [r.approval_id for r in api.list_revocations(world.exporter)] == ["APR-2026-0042"]


def test_damaged_stored_revocation_fails_closed(world: World) -> None:
    result = world.export()
    path = _revoke(world, "recipient", world.ids["outsider"].age_recipient)
    api.import_revocation(world.recipient, path)
    stored = next(world.recipient.home.revocations_dir.glob("*.json"))
    stored.write_bytes(stored.read_bytes().replace(b"test", b"tost"))
    with pytest.raises(Exception, match="damaged"):
        api.verify(world.recipient, result.bundle)


# ------------------------------------------------------------------ what it stops


def _targets(world: World) -> dict[str, tuple[str, str]]:
    return {
        "approval id": ("approval", "APR-2026-0042"),
        "exporter": ("exporter", world.ids["exporter"].signing_key.to_line()),
        "recipient": ("recipient", world.ids["recipient"].age_recipient),
        "auditor": ("recipient", world.ids["auditor"].age_recipient),
    }


@pytest.mark.parametrize(
    "which", ["approval id", "approval sha256", "exporter", "recipient", "auditor"]
)
def test_revocation_stops_export_verify_decrypt(world: World, which: str, tmp_path: Path) -> None:
    approval = world.write_approval()
    before = world.export(approval)  # made before the revocation
    if which == "approval sha256":
        import hashlib

        kind, target = "approval", hashlib.sha256(approval.read_bytes()).hexdigest()
    else:
        kind, target = _targets(world)[which]
    _import_everywhere(world, _revoke(world, kind, target))

    with pytest.raises(PolicyError, match="revoked") as caught:
        world.export(approval)
    assert caught.value.exit_code == 3
    with pytest.raises(VerificationError, match="revoked") as caught_v:
        api.verify(world.recipient, before.bundle)
    assert caught_v.value.exit_code == 5
    with pytest.raises(VerificationError, match="revoked"):
        api.decrypt(
            world.recipient,
            before.bundle,
            "auditor" if which == "recipient" else "force",
            tmp_path / "o",
        )
    assert not (tmp_path / "o").exists()


def test_unrelated_revocation_changes_nothing(world: World) -> None:
    approval = world.write_approval()
    _import_everywhere(world, _revoke(world, "approval", "APR-1999-0001"))
    _import_everywhere(world, _revoke(world, "recipient", world.ids["outsider"].age_recipient))
    result = world.export(approval)
    api.verify(world.recipient, result.bundle)


def test_revocation_by_sha_spares_other_versions(world: World) -> None:
    import hashlib

    first = world.write_approval()
    _import_everywhere(
        world, _revoke(world, "approval", hashlib.sha256(first.read_bytes()).hexdigest())
    )
    renewed = world.write_approval(max_runs=5)  # same id, new bytes
    world.export(renewed)
    with pytest.raises(PolicyError):
        world.export(first)


def test_witness_stops_cosigning_for_a_revoked_approval(world: World) -> None:
    TrustStore(world.owner.home).add("contractor", world.ledger_vkey, "ledger")
    world.export()
    sync = world.root / "sync.json"
    api.write_sync(world.exporter, 0, sync)
    api.import_revocation(world.owner, _revoke(world, "approval", "APR-2026-0042"))
    with pytest.raises(PolicyError, match="revoked"):
        api.witness(world.owner, sync, "contractor", world.root / "out.cosig")
    assert not (world.root / "out.cosig").exists()


# ------------------------------------------------------------------ the command line


def test_cli_revoke_and_import(world: World, passphrase_file: Path) -> None:
    env = {"SECUREXPORT_KEYSTORE": "file", "SECUREXPORT_PASSPHRASE_FILE": str(passphrase_file)}
    runner = Runner()
    result = world.export()
    out_file = world.root / "cli-revocation.json"
    pub = world.root / "analyst.pub"
    pub.write_text(world.ids["exporter"].signing_key.to_line("analyst") + "\n")
    owner = ["--home", str(world.owner.home.path)]
    res = runner.invoke(
        cli,
        [*owner, "--json", "revoke", "exporter", str(pub), "--as", "owner", "-o", str(out_file)],
        env=env,
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["kind"] == "exporter" and doc["signature"].endswith(".sig")
    assert "PRIVATE" not in res.stdout + res.stderr

    recipient = ["--home", str(world.recipient.home.path)]
    res = runner.invoke(cli, [*recipient, "--json", "revoke", "import", str(out_file)], env=env)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["approver"] == "owner"
    res = runner.invoke(cli, [*recipient, "verify", str(result.bundle)], env=env)
    assert res.exit_code == 5 and res.stdout == ""
    assert res.stderr.startswith("securexport: error: exporter key SHA256:")

    outsider = ["--home", str(world.outsider.home.path)]
    TrustStore(world.outsider.home).remove("owner")
    res = runner.invoke(cli, [*outsider, "revoke", "import", str(out_file)], env=env)
    assert res.exit_code == 5 and res.stdout == ""
