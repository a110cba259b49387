"""The ledger's checkpoints, receipts, consistency proofs and witness cosignatures, checked by
Go's golang.org/x/mod/sumdb/note and sumdb/tlog (tests/oracles/go/sxoracle.go, issue 13).

Each artefact is made by securexport, accepted by Go, then refused by Go once one byte of it
is flipped: the control that shows the oracle can say no, and says it for the right reason
(the flip is made inside the base64, so the artefact still parses and the check itself fails).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from securexport import api
from securexport.bundle.container import COSIGNATURE, MANIFEST, RECEIPT, open_bundle
from securexport.home.truststore import TrustStore
from securexport.ledger.log import Ledger, ledger_verifier_key
from securexport.ledger.sync import make_sync
from securexport.limits import DEFAULT_LIMITS
from tests.support.oracles import GoOracle, build_go_oracle
from tests.support.world import World

# One worker builds the program and runs these.
pytestmark = pytest.mark.xdist_group("go-oracle")

LOG = "contractor"
EM_DASH = "\u2014"


@pytest.fixture(scope="session")
def go_oracle(tmp_path_factory: pytest.TempPathFactory) -> GoOracle:
    """Go's note and tlog packages as a checker, built once per session."""
    return build_go_oracle(tmp_path_factory.mktemp("go-oracle"))


def flip_b64(text: str, line_no: int, *, word: int = -1, at: int = 0) -> str:
    """``text`` with one byte flipped inside the base64 of line ``line_no`` (its last word, or
    word ``word``), ``at`` bytes into the decoded value (negative: from its end)."""
    lines = text.split("\n")
    words = lines[line_no].split(" ")
    raw = bytearray(base64.b64decode(words[word]))
    raw[at] ^= 0x01
    words[word] = base64.b64encode(bytes(raw)).decode()
    lines[line_no] = " ".join(words)
    return "\n".join(lines)


def line_index(text: str, test: Callable[[str], bool]) -> int:
    return next(i for i, line in enumerate(text.split("\n")) if test(line))


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# ------------------------------------------------------------------ the product's artefacts


def test_world_artefacts_accepted_and_flipped_bytes_refused(
    world: World, go_oracle: GoOracle, tmp_path: Path
) -> None:
    TrustStore(world.owner.home).add(LOG, world.ledger_vkey, "ledger")
    wkey = api.witness_verifier_key(world.owner)
    approval = world.write_approval(extra=f'\n[witness]\nkey = "{wkey}"\nrequired = false\n')
    vkey = world.ledger_vkey
    world.export(approval)
    old_note = write(tmp_path / "old.note", api.ledger_checkpoint(world.exporter))
    second = world.export(approval)
    world.export(approval)

    # A checkpoint (signed note).
    text = api.ledger_checkpoint(world.exporter)
    note = write(tmp_path / "checkpoint.note", text)
    assert go_oracle.check("note", vkey, note).split(" ")[2] == "3"
    sig = line_index(text, lambda line: line.startswith(EM_DASH))
    assert "note:" in go_oracle.refuse(
        "note", vkey, write(tmp_path / "bad-sig.note", flip_b64(text, sig, at=-1))
    )
    assert "note:" in go_oracle.refuse(  # the root hash changed: the signature no longer holds
        "note", vkey, write(tmp_path / "bad-root.note", flip_b64(text, 2, at=5))
    )
    stranger = ledger_verifier_key(first_line(text), Ed25519PrivateKey.generate())
    assert "note:" in go_oracle.refuse("note", stranger, note)

    # A receipt: the bundle's own, and a fresh one against the newest checkpoint.
    with open_bundle(second.bundle, DEFAULT_LIMITS) as opened:
        leaf, bundled = opened.member(MANIFEST), opened.member(RECEIPT)
    leaf_file = write(tmp_path / "manifest.json", leaf)
    assert go_oracle.check("receipt", vkey, write(tmp_path / "r0.tlog", bundled), leaf_file)
    receipt = api.ledger_prove(world.exporter, second.export_id).decode()
    assert go_oracle.check("receipt", vkey, write(tmp_path / "r.tlog", receipt), leaf_file) == (
        f"receipt {first_line(text)} index 1 of 3"
    )
    proof_line = line_index(receipt, lambda line: line.startswith("index ")) + 1
    bad = write(tmp_path / "bad-proof.tlog", flip_b64(receipt, proof_line, at=7))
    assert "inclusion:" in go_oracle.refuse("receipt", vkey, bad, leaf_file)
    other_leaf = write(tmp_path / "other.json", leaf[:-1] + bytes([leaf[-1] ^ 1]))
    assert "inclusion:" in go_oracle.refuse(
        "receipt", vkey, write(tmp_path / "r.tlog", receipt), other_leaf
    )

    # Sync files: from 0 (Go recomputes the root from the entries) and from 1 (consistency).
    sync0, sync1 = tmp_path / "sync0.json", tmp_path / "sync1.json"
    api.write_sync(world.exporter, 0, sync0)
    api.write_sync(world.exporter, 1, sync1)
    assert go_oracle.check("sync", vkey, sync0).endswith("root of 3 entries")
    assert go_oracle.check("sync", vkey, sync1, old_note).endswith("1..3 consistent")
    doc = json.loads(sync1.read_bytes())
    assert doc["consistency"]
    doc["consistency"][0] = flip_b64(doc["consistency"][0], 0, at=0)
    bad_sync = write(tmp_path / "bad-sync1.json", json.dumps(doc))
    assert "consistency:" in go_oracle.refuse("sync", vkey, bad_sync, old_note)
    doc = json.loads(sync0.read_bytes())
    doc["entries"][2]["manifest"] = flip_b64(doc["entries"][2]["manifest"], 0, at=3)
    bad_sync = write(tmp_path / "bad-sync0.json", json.dumps(doc))
    assert "tree hash" in go_oracle.refuse("sync", vkey, bad_sync)
    old_text = old_note.read_text()
    sig = line_index(old_text, lambda line: line.startswith(EM_DASH))
    bad_old = write(tmp_path / "bad-old.note", flip_b64(old_text, sig, at=10))
    assert "old checkpoint" in go_oracle.refuse("sync", vkey, sync1, bad_old)

    # The witness's cosignature, standalone and in the bundle.
    cosig = tmp_path / "sync0.cosig"
    api.witness(world.owner, sync0, LOG, cosig)
    cosigned = cosig.read_text()
    assert go_oracle.check("cosig", vkey, wkey, cosig) == (
        f"cosig {first_line(text)} 3 by {wkey.split('+')[0]} "
        f"at {int(world.owner.now().timestamp())}"
    )
    line = line_index(cosigned, lambda line: line.startswith(f"{EM_DASH} {wkey.split('+')[0]} "))
    for where in (-1, 7):  # the Ed25519 signature, the timestamp
        bad_cosig = write(tmp_path / "bad.cosig", flip_b64(cosigned, line, at=where))
        assert "note:" in go_oracle.refuse("cosig", vkey, wkey, bad_cosig)
    stranger_w = api.witness_verifier_key(world.outsider)
    assert "no cosignature" in go_oracle.refuse("cosig", vkey, stranger_w, cosig)
    api.cosign_bundle(world.exporter, second.bundle, cosig)
    with open_bundle(second.bundle, DEFAULT_LIMITS) as opened:
        in_bundle = opened.member(COSIGNATURE).decode()
    assert go_oracle.check("receipt", vkey, write(tmp_path / "rc.tlog", in_bundle), leaf_file)
    cosigned_note = in_bundle[in_bundle.index("\n\n") + 2 :]
    assert go_oracle.check("cosig", vkey, wkey, write(tmp_path / "rc.note", cosigned_note))


def first_line(text: str) -> str:
    return text.split("\n", 1)[0]


# ------------------------------------------------------------------ every proof shape


def test_every_inclusion_and_consistency_proof_of_small_trees(
    go_oracle: GoOracle, tmp_path: Path
) -> None:
    """Sizes 1..9: each entry's receipt, and each sync from each earlier size, accepted by Go."""
    signer = Ed25519PrivateKey.generate()
    origin = "securexport.local/0123456789abcdef"
    vkey = ledger_verifier_key(origin, signer)
    now = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
    leaves: dict[str, Path] = {}
    with Ledger.open(tmp_path / "ledger.db", origin=origin) as led:
        for n in range(1, 10):
            export_id = f"exp-{n}"
            approval = hashlib.sha256(export_id.encode()).hexdigest()
            manifest = json.dumps({"approval": approval, "export_id": export_id}).encode()
            leaves[export_id] = write(tmp_path / f"{export_id}.json", manifest)
            led.append_export(
                manifest,
                b"sig",
                export_id=export_id,
                approval_id="APR-1",
                approval_sha256=approval,
                run=1,
                max_runs=None,
                signer=signer,
                now=now,
            )
            for i, (eid, leaf) in enumerate(leaves.items()):
                receipt = write(tmp_path / "r.tlog", led.prove(eid).to_bytes())
                assert go_oracle.check("receipt", vkey, receipt, leaf).endswith(f"{i} of {n}")
            for since in range(n + 1):
                sync = write(tmp_path / "sync.json", make_sync(led, since)[0].to_bytes())
                old = [] if since == 0 else [write(tmp_path / "old.note", led.checkpoint_at(since))]
                go_oracle.check("sync", vkey, sync, *old)
