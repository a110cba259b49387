"""Go's archive/zip test archives (Debian golang-1.19-src) through our reading path.

Independent, odd and hostile ZIPs written by other tools: every one must be refused cleanly as
a bundle (exit 5, nothing written) and must either parse or be refused by our structure checker
with ZipStructureError — never another exception, never a hang.  The files are read in place
from the Debian package (installed by scripts/install-system-deps.sh), never committed.
"""

from __future__ import annotations

import base64
import glob
import io
import itertools
import re
import time
from pathlib import Path

import pytest

from securexport import api
from securexport.bundle.zipcheck import ZipStructureError, inspect_zip
from securexport.errors import SecurexportError
from tests.support.world import World

TESTDATA = sorted(glob.glob("/usr/share/go-*/src/archive/zip/testdata"))


def _archives() -> list[tuple[str, bytes]]:
    if not TESTDATA:
        return []
    root = Path(TESTDATA[-1])
    found = []
    for path in sorted(root.iterdir()):
        data = path.read_bytes()
        if path.name.endswith(".base64"):
            data = base64.b64decode(data)
        found.append((path.name, data))
    return found


ARCHIVES = _archives()
pytestmark = pytest.mark.tools


def test_go_testdata_is_installed() -> None:
    """make test installs golang-1.19-src; without it this suite would silently shrink."""
    assert len(ARCHIVES) >= 30, (
        "Go archive/zip testdata missing: run scripts/install-system-deps.sh"
    )


@pytest.mark.parametrize(("name", "data"), ARCHIVES, ids=[n for n, _ in ARCHIVES])
def test_structure_checker_parses_or_refuses(
    name: str, data: bytes, record_property: object
) -> None:
    record_property("external_vectors", 1)  # type: ignore[operator]
    started = time.monotonic()
    try:
        entries = inspect_zip(io.BytesIO(data), len(data), max_entries=64, allow_methods={0, 8, 99})
    except ZipStructureError:
        entries = None
    assert time.monotonic() - started < 2
    if entries is not None:  # what we accept is internally consistent
        ends = sorted((e.header_offset, e.data_end) for e in entries)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(ends))


def test_every_go_archive_is_refused_as_a_bundle(world: World, tmp_path: Path) -> None:
    refused = 0
    for name, data in ARCHIVES:
        bundle = tmp_path / f"{name}.sxb"
        bundle.write_bytes(data)
        out = tmp_path / f"out-{name}"
        for call in (
            lambda b=bundle: api.verify(world.recipient, b),
            lambda b=bundle, o=out: api.decrypt(world.recipient, b, "force", o),
        ):
            with pytest.raises(SecurexportError) as info:
                call()
            assert info.value.exit_code == 5, (name, info.value)
        assert not out.exists()
        assert not out.with_name(out.name + ".partial").exists()
        refused += 1
    assert refused == len(ARCHIVES)


def test_every_go_archive_is_refused_as_a_signed_payload(world: World, tmp_path: Path) -> None:
    """Each archive as the payload.zip of a bundle a malicious exporter signed and logged (hash,
    signature and receipt all valid): decrypt reaches our ZIP checks and refuses it, exit 5,
    writing nothing, in bounded time."""
    from tests.adversarial.harness import Ctx

    ctx = Ctx(world)
    for name, data in ARCHIVES:
        bundle = ctx.forge_payload(data)
        out = tmp_path / f"signed-{name}"
        for call in (
            lambda b=bundle: api.verify(world.recipient, b),
            lambda b=bundle, o=out: api.decrypt(world.recipient, b, "force", o),
        ):
            started = time.monotonic()
            with pytest.raises(SecurexportError) as info:
                call()
            assert time.monotonic() - started < 10, name
            assert info.value.exit_code == 5, (name, info.value)
            # Signature, hashes and receipt hold: the refusal is about the payload's inside.
            assert re.search(r"archive|payload", str(info.value)), (name, info.value)
            assert not re.search(r"signature|receipt|hash", str(info.value)), (name, info.value)
        assert not out.exists()
        assert not out.with_name(out.name + ".partial").exists()
