"""Fuzz targets shared by tests/system/test_fuzz_parsers.py (hypothesis) and scripts/fuzz.py (a timed
mutation loop): each parser of untrusted bytes must accept or raise a SecurexportError subclass,
never another exception, and never hang.

Seeds are real artefacts from a small securexport world (a bundle, its manifest, approval and
receipt); :func:`mutate` damages them the way files get damaged or forged: flipped bits,
overwritten and inserted bytes, truncation, duplicated and swapped slices.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from securexport.bundle.container import (
    APPROVAL,
    APPROVAL_SIG,
    MANIFEST,
    MEMBER_ORDER,
    PAYLOAD,
    RECEIPT,
    check_payload,
    open_bundle,
    write_bundle,
)
from securexport.ledger.receipt import parse_receipt, verify_receipt
from securexport.limits import Limits
from securexport.policy import authorise as policy
from securexport.policy.approval import parse_approval
from securexport.policy.manifest import parse_manifest

LIMITS = Limits(max_bundle_bytes=1 << 20)


@dataclass
class Seeds:
    bundle: bytes
    members: dict[str, bytes]
    ledger_key: str
    approver_line: str
    workdir: Path


def make_seeds(root: Path) -> Seeds:
    """A world, one export, and the artefacts the targets start from."""
    import io
    import zipfile

    from securexport.synthetic import make_offenders_db
    from tests.adversarial.harness import ADV_EXPIRES
    from tests.support.world import build_world

    root.mkdir(parents=True, exist_ok=True)
    template = root / "template.db"
    make_offenders_db(template, people=3000, seed=7)
    passphrase = root / "passphrase.txt"
    passphrase.write_bytes(b"fuzz\n")
    passphrase.chmod(0o600)
    (root / "world").mkdir()
    world = build_world(root / "world", template, passphrase)
    approval = world.write_approval(expires=ADV_EXPIRES, min_rows=1)
    bundle = world.export(approval).bundle.read_bytes()
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    return Seeds(
        bundle=bundle,
        members=members,
        ledger_key=world.ledger_vkey,
        approver_line=world.ids["owner"].signing_key.to_line(),
        workdir=root,
    )


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four random damages to ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(7)
        pos = rng.randrange(len(out) + 1) if out else 0
        if kind == 0 and out:  # flip a bit
            i = min(pos, len(out) - 1)
            out[i] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:  # overwrite a byte with an interesting value
            out[min(pos, len(out) - 1)] = rng.choice([0, 0x0A, 0x22, 0x2C, 0x5C, 0x7F, 0x80, 0xFF])
        elif kind == 2:  # truncate
            del out[pos:]
        elif kind == 3:  # insert random bytes
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif kind == 4 and out:  # duplicate a slice
            end = min(len(out), pos + rng.randint(1, 64))
            out[pos:pos] = out[pos:end]
        elif kind == 5 and len(out) > 8:  # delete a slice
            del out[pos : pos + rng.randint(1, 32)]
        elif kind == 6 and len(out) > 8:  # overwrite with a little-endian integer (sizes, offsets)
            value = rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, 2**31, len(out)])
            out[pos : pos + 4] = value.to_bytes(4, "little")
    return bytes(out)


def target_bundle(seeds: Seeds, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=seeds.workdir, suffix=".sxb") as fh:
        fh.write(data)
        fh.flush()
        with open_bundle(Path(fh.name), LIMITS) as bundle:
            bundle.payload_sha256()
            manifest = parse_manifest(bundle.member(MANIFEST), max_bytes=LIMITS.max_manifest_bytes)
            check_payload(bundle, {f.path: f.bytes for f in manifest.files}, LIMITS)


def target_payload(seeds: Seeds, data: bytes) -> None:
    """The inner payload.zip, damaged, inside an outer bundle that is intact (CRCs right): the
    bundle target rarely gets this far, since a damaged member fails its CRC first."""
    members = [
        (name, data if name == PAYLOAD else seeds.members[name])
        for name in MEMBER_ORDER
        if name in seeds.members
    ]
    with tempfile.NamedTemporaryFile(dir=seeds.workdir, suffix=".sxb") as fh:
        write_bundle(fh, members)
        fh.flush()
        with open_bundle(Path(fh.name), LIMITS) as bundle:
            manifest = parse_manifest(bundle.member(MANIFEST), max_bytes=LIMITS.max_manifest_bytes)
            check_payload(bundle, {f.path: f.bytes for f in manifest.files}, LIMITS)


def target_manifest(seeds: Seeds, data: bytes) -> None:
    parse_manifest(data, max_bytes=LIMITS.max_manifest_bytes)


def target_approval(seeds: Seeds, data: bytes) -> None:
    parse_approval(data)


def target_signed_approval(seeds: Seeds, data: bytes) -> None:
    from securexport._crypto.sshkey import SshPublicKey

    trusted = SshPublicKey.parse(seeds.approver_line)
    policy.load_signed_approval(
        data,
        seeds.members[APPROVAL_SIG],
        lambda key: "owner" if key == trusted else None,
        LIMITS,
    )


def target_receipt(seeds: Seeds, data: bytes) -> None:
    parse_receipt(data)
    verify_receipt(data, seeds.members[MANIFEST], [seeds.ledger_key])


TARGETS: dict[str, tuple[Callable[[Seeds, bytes], None], Callable[[Seeds], bytes]]] = {
    "bundle": (target_bundle, lambda s: s.bundle),
    "payload": (target_payload, lambda s: s.members[PAYLOAD]),
    "manifest": (target_manifest, lambda s: s.members[MANIFEST]),
    "approval": (target_approval, lambda s: s.members[APPROVAL]),
    "signed-approval": (target_signed_approval, lambda s: s.members[APPROVAL]),
    "receipt": (target_receipt, lambda s: s.members[RECEIPT]),
}
