"""`securexport ledger list/show/verify/prove/checkpoint` through the command line.

Real exports, then each command in human and ``--json`` form.  Proofs and checkpoints are checked
here with a small RFC 6962 / C2SP signed-note implementation written from the specifications, not
with securexport's own verifiers, and the leaves are read from the bundles' ``manifest.json``
with :mod:`zipfile`, not from the ledger.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from click.testing import Result
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from securexport import api
from securexport.cli import cli
from tests.support import rfc6962
from tests.support.cli import CLI_PROCESS, Runner, assert_one_line_error
from tests.support.world import World

# ------------------------------------------------------------------ running the command line


def _run(home: Path, *args: str, passphrase: Path | None = None) -> Result:
    env = {
        "SECUREXPORT_KEYSTORE": "file",
        "SECUREXPORT_PASSPHRASE_FILE": str(passphrase) if passphrase else "",
    }
    return Runner().invoke(cli, ["--home", str(home), *args], env=env, catch_exceptions=False)


def _ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


# ------------------------------------------------------------------ C2SP signed notes, from the spec


@dataclass(frozen=True)
class _Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str


def _parse_vkey(vkey: str) -> tuple[str, int, Ed25519PublicKey]:
    name, key_id, blob = vkey.split("+", 2)
    raw = base64.b64decode(blob, validate=True)
    assert len(raw) == 33 and raw[0] == 0x01, "an Ed25519 note verifier key"
    want_id = int.from_bytes(hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4], "big")
    assert int(key_id, 16) == want_id, "the key id is the first 4 bytes of the key hash"
    return name, want_id, Ed25519PublicKey.from_public_bytes(raw[1:])


def _open_checkpoint(note: str, vkey: str) -> _Checkpoint | None:
    """The checkpoint if ``note`` carries a valid signature by ``vkey``; None otherwise."""
    name, key_id, public = _parse_vkey(vkey)
    body, sep, signatures = note.partition("\n\n")
    if not sep or not note.endswith("\n"):
        return None
    text = body + "\n"
    good = False
    for line in signatures.splitlines():
        dash, signer, blob = line.split(" ")
        assert dash == "\u2014"
        raw = base64.b64decode(blob, validate=True)
        if signer != name or int.from_bytes(raw[:4], "big") != key_id:
            continue
        try:
            public.verify(raw[4:], text.encode())
        except InvalidSignature:
            return None
        good = True
    if not good:
        return None
    origin, size, root, *_extensions = body.split("\n")
    return _Checkpoint(origin, int(size), base64.b64decode(root, validate=True), text)


def _parse_tlog_proof(data: str) -> tuple[int, list[bytes], str]:
    """c2sp.org/tlog-proof@v1: header, index, proof hashes, blank line, checkpoint note."""
    head, sep, note = data.partition("\n\n")
    assert sep
    lines = head.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1].startswith("index ")
    return int(lines[1][len("index ") :]), [base64.b64decode(h) for h in lines[2:]], note


# ------------------------------------------------------------------ a ledger with real exports


@dataclass
class _Logged:
    world: World
    results: list[api.ExportResult]
    approvals: list[Path]

    @property
    def home(self) -> Path:
        return self.world.exporter.home.path

    def manifest_bytes(self, index: int) -> bytes:
        with zipfile.ZipFile(self.results[index].bundle) as bundle:
            return bundle.read("manifest.json")

    def leaves(self) -> list[bytes]:
        return [self.manifest_bytes(i) for i in range(len(self.results))]


def _logged(world: World, count: int = 3) -> _Logged:
    """``count`` exports: approval A, approval B, then A again (runs 1, 1, 2, …)."""
    a = world.write_approval()
    b = world.write_approval(approval_id="APR-2026-0077", max_runs=3)
    order = [a, b] + [a] * (count - 2)
    return _Logged(world, [world.export(p) for p in order[:count]], order[:count])


def _ledger_key(home: Path) -> str:
    return _ok(_run(home, "ledger", "key")).strip()


# ------------------------------------------------------------------ ledger list


def test_list_shows_every_export(world: World) -> None:
    logged = _logged(world)
    doc = json.loads(_ok(_run(logged.home, "--json", "ledger", "list")))
    assert [e["index"] for e in doc] == [0, 1, 2]
    for entry, result, approval in zip(doc, logged.results, logged.approvals, strict=True):
        assert entry["kind"] == "export"
        assert entry["export_id"] == result.export_id
        assert entry["approval_id"] == result.manifest["approval"]["id"]
        assert entry["approval_sha256"] == hashlib.sha256(approval.read_bytes()).hexdigest()
        assert entry["run"] == result.run
        assert entry["created_at"] == "2026-06-01T12:00:00Z"
        assert entry["exporter"] == "analyst"
        assert entry["rows"] == result.rows_written
        assert entry["recipients"] == ["force"]
        assert "malformed" not in entry
    assert [(e["approval_id"], e["run"]) for e in doc] == [
        ("APR-2026-0042", 1),
        ("APR-2026-0077", 1),
        ("APR-2026-0042", 2),
    ]

    lines = _ok(_run(logged.home, "ledger", "list")).splitlines()
    assert len(lines) == 3
    for line, entry in zip(lines, doc, strict=True):
        fields = line.split()
        assert fields[0] == str(entry["index"])
        assert fields[-1] == entry["export_id"]
        assert entry["created_at"] in line
        assert f"{entry['approval_id']} run {entry['run']}" in line
        assert f"{entry['rows']} rows" in line
        assert "by analyst" in line and "to force" in line


def test_list_start_limit_and_empty(world: World, tmp_path: Path) -> None:
    logged = _logged(world)
    page = json.loads(
        _ok(_run(logged.home, "--json", "ledger", "list", "--start", "1", "--limit", "1"))
    )
    assert [e["export_id"] for e in page] == [logged.results[1].export_id]
    assert [e["bundle"] for e in page] == ["written"]  # the status of the page's own entries
    tail = json.loads(_ok(_run(logged.home, "--json", "ledger", "list", "--start", "2")))
    assert [e["index"] for e in tail] == [2]
    assert [e["bundle"] for e in tail] == ["written"]
    human = _ok(_run(logged.home, "ledger", "list", "--start", "1", "--limit", "1"))
    assert human.count("\n") == 1 and logged.results[1].export_id in human
    assert json.loads(_ok(_run(logged.home, "--json", "ledger", "list", "--start", "3"))) == []

    empty = tmp_path / "empty-home"
    assert json.loads(_ok(_run(empty, "--json", "ledger", "list"))) == []
    assert _ok(_run(empty, "ledger", "list")) == "(no exports logged)\n"


# ------------------------------------------------------------------ ledger show


def test_show_gives_the_entry_and_its_signed_manifest(world: World) -> None:
    logged = _logged(world)
    listed = json.loads(_ok(_run(logged.home, "--json", "ledger", "list")))
    for index, result in enumerate(logged.results):
        signed = logged.manifest_bytes(index)
        by_index = json.loads(_ok(_run(logged.home, "--json", "ledger", "show", str(index))))
        by_id = json.loads(_ok(_run(logged.home, "--json", "ledger", "show", result.export_id)))
        human = json.loads(_ok(_run(logged.home, "ledger", "show", str(index))))
        assert by_index == by_id == human
        assert by_index["manifest"] == json.loads(signed)
        # The manifest is canonical JSON: re-serialised, it is the exact signed leaf.
        assert rfc8785.dumps(by_index["manifest"]) == signed
        assert by_index["manifest"]["export_id"] == result.export_id
        # The entry's summary is the one `ledger list` gives.
        core = ("index", "kind", "export_id", "approval_id", "approval_sha256", "run")
        assert all(k in by_index for k in (*core, "created_at", "exporter", "rows", "recipients"))
        common = set(by_index) & set(listed[index])
        assert {k: by_index[k] for k in common} == {k: listed[index][k] for k in common}


@pytest.mark.parametrize("key", ["3", "99", "not-an-export-id"])
def test_show_unknown_entry_is_a_one_line_error(world: World, key: str) -> None:
    logged = _logged(world)
    line = assert_one_line_error(_run(logged.home, "ledger", "show", key), 5)
    assert "not in the ledger" in line
    assert_one_line_error(_run(logged.home, "--json", "ledger", "show", key), 5)


@pytest.mark.parametrize(
    "args",
    [
        ("ledger", "show", "99999999999999999999999"),
        ("ledger", "show", "\u00b2"),
        ("ledger", "list", "--start", "99999999999999999999999"),
    ],
    ids=["show-huge-index", "show-superscript-two", "list-huge-start"],
)
def test_out_of_range_entry_is_a_one_line_error(world: World, args: tuple[str, ...]) -> None:
    logged = _logged(world, count=2)
    assert_one_line_error(_run(logged.home, *args), (2, 5))


# ------------------------------------------------------------------ ledger checkpoint


def test_checkpoint_is_a_c2sp_note_signed_by_the_ledger_key(world: World) -> None:
    logged = _logged(world)
    vkey = _ledger_key(logged.home)
    assert vkey == world.ledger_vkey
    note = _ok(_run(logged.home, "ledger", "checkpoint"))
    assert json.loads(_ok(_run(logged.home, "--json", "ledger", "checkpoint"))) == {
        "checkpoint": note
    }
    checkpoint = _open_checkpoint(note, vkey)
    assert checkpoint is not None, note
    assert checkpoint.origin == vkey.split("+")[0]
    assert checkpoint.size == 3
    assert checkpoint.root == rfc6962.mth(logged.leaves())
    report = json.loads(_ok(_run(logged.home, "--json", "ledger", "verify")))
    assert report["root_hash"] == checkpoint.root.hex()
    assert report["origin"] == checkpoint.origin

    # The independent verifier can say no: another key, or an altered body.
    impostor = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    name = vkey.split("+")[0]
    raw = b"\x01" + impostor
    kid = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex()
    assert _open_checkpoint(note, f"{name}+{kid}+{base64.b64encode(raw).decode()}") is None
    assert _open_checkpoint(note.replace("\n3\n", "\n4\n", 1), vkey) is None

    # Each export moves the checkpoint on, and the old tree is a prefix of the new one.
    world.export(logged.approvals[0])
    newer = _open_checkpoint(_ok(_run(logged.home, "ledger", "checkpoint")), vkey)
    assert newer is not None and newer.size == 4 and newer.root != checkpoint.root


def test_checkpoint_of_an_empty_ledger_is_a_one_line_error(tmp_path: Path) -> None:
    line = assert_one_line_error(_run(tmp_path / "home", "ledger", "checkpoint"), 5)
    assert "empty" in line


# ------------------------------------------------------------------ ledger prove


def test_prove_gives_an_inclusion_proof_against_the_checkpoint(world: World) -> None:
    logged = _logged(world, count=5)  # size 5: proofs of different lengths and shapes
    vkey = _ledger_key(logged.home)
    note = _ok(_run(logged.home, "ledger", "checkpoint"))
    checkpoint = _open_checkpoint(note, vkey)
    assert checkpoint is not None and checkpoint.size == 5
    leaves = logged.leaves()
    for index, result in enumerate(logged.results):
        human = _ok(_run(logged.home, "ledger", "prove", result.export_id))
        doc = json.loads(_ok(_run(logged.home, "--json", "ledger", "prove", result.export_id)))
        assert doc == {"export_id": result.export_id, "receipt": human}
        out = logged.world.root / f"receipt-{index}.tlog"
        wrote = _ok(_run(logged.home, "ledger", "prove", result.export_id, "-o", str(out)))
        assert wrote == f"wrote {out}\n"
        assert out.read_text() == human

        proven_index, proof, proof_note = _parse_tlog_proof(human)
        assert proven_index == index
        assert proof_note == note  # against the checkpoint `ledger checkpoint` prints
        assert proof == rfc6962.path(index, leaves)  # the RFC's PATH, computed from the bundles
        assert (
            rfc6962.root_from_path(leaves[index], index, checkpoint.size, proof) == checkpoint.root
        )
        # …and not for another manifest, position, or a shortened proof.
        other = leaves[(index + 1) % len(leaves)]
        assert rfc6962.root_from_path(other, index, checkpoint.size, proof) != checkpoint.root
        assert rfc6962.root_from_path(leaves[index], index ^ 1, checkpoint.size, proof) != (
            checkpoint.root
        )
        assert rfc6962.root_from_path(leaves[index], index, checkpoint.size, proof[:-1]) != (
            checkpoint.root
        )


def test_prove_unknown_export_is_a_one_line_error(world: World) -> None:
    logged = _logged(world, count=2)
    out = logged.world.root / "nothing.tlog"
    assert_one_line_error(_run(logged.home, "ledger", "prove", "no-such-export", "-o", str(out)), 5)
    assert not out.exists()


# ------------------------------------------------------------------ ledger verify


def test_verify_a_clean_ledger(world: World, tmp_path: Path) -> None:
    logged = _logged(world)
    report = json.loads(_ok(_run(logged.home, "--json", "ledger", "verify")))
    expected = {
        "ok": True,
        "origin": world.ledger_vkey.split("+")[0],
        "size": 3,
        "root_hash": rfc6962.mth(logged.leaves()).hex(),
        "entries_checked": 3,
        "checkpoints_checked": 3,
    }
    assert {k: report.get(k) for k in expected} == expected
    human = _ok(_run(logged.home, "ledger", "verify"))
    assert human.startswith(
        f"ledger OK: 3 entries, 3 checkpoints, root {report['root_hash'][:16]}\u2026"
    )

    empty = tmp_path / "empty-home"
    assert _ok(_run(empty, "ledger", "verify")).startswith("ledger OK: 0 entries, 0 checkpoints")
    assert json.loads(_ok(_run(empty, "--json", "ledger", "verify")))["entries_checked"] == 0


def _raw(db: Path) -> sqlite3.Connection:
    """The ledger file opened as its owner could: the append-only triggers dropped."""
    from securexport.ledger.sqlite_store import APPEND_ONLY

    conn = sqlite3.connect(db, isolation_level=None)
    for table in APPEND_ONLY:
        for action in ("update", "delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    return conn


def _edit_leaf(conn: sqlite3.Connection, index: int) -> None:
    leaf = bytes(conn.execute("SELECT leaf FROM entries WHERE idx = ?", (index,)).fetchone()[0])
    conn.execute(
        "UPDATE entries SET leaf = ? WHERE idx = ?", (leaf.replace(b"analyst", b"analysT"), index)
    )


def _tamper_edit(conn: sqlite3.Connection) -> None:
    _edit_leaf(conn, 1)


def _tamper_edit_two(conn: sqlite3.Connection) -> None:
    _edit_leaf(conn, 3)
    _edit_leaf(conn, 1)


def _tamper_delete(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM entries WHERE idx = 1")


def _tamper_reorder(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE entries SET idx = 1000 WHERE idx = 1")
    conn.execute("UPDATE entries SET idx = 1 WHERE idx = 2")
    conn.execute("UPDATE entries SET idx = 2 WHERE idx = 1000")


def _tamper_signature(conn: sqlite3.Connection) -> None:
    """A real SSHSIG by the exporter, but over entry 2's manifest."""
    sig = conn.execute("SELECT signature FROM entries WHERE idx = 2").fetchone()[0]
    conn.execute("UPDATE entries SET signature = ? WHERE idx = 1", (sig,))


def _tamper_checkpoint(conn: sqlite3.Connection) -> None:
    """The checkpoint at size 2 re-signed (same name, same text) by another key."""
    from securexport._crypto.note import sign_note

    note = conn.execute("SELECT note FROM checkpoints WHERE size = 2").fetchone()[0]
    name = note.rsplit("\n\u2014 ", 1)[1].split(" ")[0]
    forged = sign_note(note[: note.index("\n\n") + 1], name, Ed25519PrivateKey.generate())
    conn.execute("UPDATE checkpoints SET note = ? WHERE size = 2", (forged,))


@pytest.mark.parametrize(
    ("tamper", "needle"),
    [
        (_tamper_edit, "do not match their logged hash"),
        (_tamper_edit_two, "do not match their logged hash"),
        (_tamper_delete, "missing"),
        (_tamper_reorder, ""),
        (_tamper_signature, "signature"),
        (_tamper_checkpoint, "checkpoint at size 2"),
    ],
    ids=["edited", "two-edited", "deleted", "reordered", "signature", "checkpoint"],
)
def test_verify_a_tampered_ledger_exits_5_naming_the_first_bad_entry(
    world: World, tamper: Any, needle: str
) -> None:
    logged = _logged(world, count=4)
    _ok(_run(logged.home, "ledger", "verify"))
    with _raw(world.exporter.home.ledger_path) as conn:
        tamper(conn)
    line = assert_one_line_error(_run(logged.home, "ledger", "verify"), 5)
    assert "entry 1:" in line, line
    assert needle in line
    assert assert_one_line_error(_run(logged.home, "--json", "ledger", "verify"), 5) == line


def test_verify_exit_code_from_a_real_process(world: World) -> None:
    logged = _logged(world)
    command = [*CLI_PROCESS, "--home", str(logged.home), "ledger", "verify"]
    clean = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.startswith("ledger OK: 3 entries")
    with _raw(world.exporter.home.ledger_path) as conn:
        _tamper_edit(conn)
    bad = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 5, (bad.stdout, bad.stderr)
    assert bad.stdout == ""
    assert bad.stderr.startswith("securexport: error: ledger verification failed at entry 1:")
