"""The whole path through the library: plan, export, inspect, verify, decrypt, refusals."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from pathlib import Path

import pytest

from securexport import api, fsutil
from securexport.errors import (
    FileError,
    KeyUnavailableError,
    PolicyError,
    VerificationError,
)
from securexport.limits import Limits
from tests.support.world import World


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".partial" in p.name or p.suffix == ".sxb")


def test_export_verify_decrypt_round_trip(world: World) -> None:
    result = world.export()
    assert result.bundle.exists()
    assert result.rows_written > 0
    assert oct(result.bundle.stat().st_mode & 0o777) == "0o600"

    verdict = api.verify(world.owner, result.bundle)
    assert verdict.export_id == result.export_id
    assert verdict.rows == result.rows_written
    assert verdict.exporter == "analyst"

    out = world.root / "extract"
    decrypted = api.decrypt(world.recipient, result.bundle, "force", out)
    data = out / "data" / "offenders.csv"
    assert decrypted.files == (data,)
    assert oct(data.stat().st_mode & 0o777) == "0o600"
    rows = _rows(data)
    assert rows[0] == ["offender", "birth_year", "district", "convictions", "release_quarter"]
    assert len(rows) - 1 == result.rows_written
    # The auditor can open it too.
    api.decrypt(world.auditor, result.bundle, "audit", world.root / "audit-extract")
    assert (
        world.root / "audit-extract" / "data" / "offenders.csv"
    ).read_bytes() == data.read_bytes()


def test_decrypt_counting_k_through_scratch_files_gives_the_same_extract(world: World) -> None:
    """A payload with more (class, entity) pairs than decrypt may hold in memory is counted
    through encrypted scratch files beside the output: same result, nothing left behind."""
    result = world.export()
    assert result.rows_written > 10
    small = Limits(max_k_pairs_in_memory=3)
    a, b = world.root / "in-memory", world.root / "spilled"
    api.decrypt(world.recipient, result.bundle, "force", a)
    got = api.decrypt(world.recipient, result.bundle, "force", b, small)
    assert got.rows == result.rows_written
    assert (b / "data" / "offenders.csv").read_bytes() == (
        a / "data" / "offenders.csv"
    ).read_bytes()
    assert sorted(p.name for p in world.root.iterdir() if p.name.startswith(".securexport")) == []
    assert [p.name for p in b.rglob("*")] == ["data", "offenders.csv"]


def test_decrypt_scratch_file_fault_leaves_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk fault while k is recounted through scratch files: exit 7, no extract, no
    .partial directory, no scratch file."""
    from securexport.data import spool

    result = world.export()

    def full(self: spool.Spool, record: bytes) -> None:
        raise FileError("cannot write the scratch file: No space left on device")

    monkeypatch.setattr(spool.Spool, "append", full)
    out = world.root / "extract"
    with pytest.raises(FileError) as info:
        api.decrypt(world.recipient, result.bundle, "force", out, Limits(max_k_pairs_in_memory=3))
    assert info.value.exit_code == 7
    assert not out.exists()
    assert _leftovers(world.root) == [result.bundle.name]
    assert [p for p in world.root.iterdir() if p.name.startswith(".securexport")] == []


def test_export_matches_source_counts(world: World) -> None:
    """rows matched = the source's own count of WMP rows; written = matched - suppressed."""
    result = world.export()
    with sqlite3.connect(world.db_path) as conn:
        (expected,) = conn.execute(
            "SELECT count(*) FROM offenders WHERE force_code = 'WMP'"
        ).fetchone()
    assert result.matching_rows == expected
    assert result.rows_written == expected - result.suppressed_rows
    assert result.manifest["records"]["written"] == result.rows_written


def test_pseudonyms_are_stable_across_runs_and_never_raw(world: World) -> None:
    a = world.export()
    b = world.export()
    out_a, out_b = world.root / "a", world.root / "b"
    api.decrypt(world.recipient, a.bundle, "force", out_a)
    api.decrypt(world.recipient, b.bundle, "force", out_b)
    rows_a = _rows(out_a / "data" / "offenders.csv")
    rows_b = _rows(out_b / "data" / "offenders.csv")
    assert rows_a == rows_b  # deterministic order and pseudonyms: monthly extracts link
    with sqlite3.connect(world.db_path) as conn:
        raw_ids = {r[0] for r in conn.execute("SELECT offender_id FROM offenders")}
    assert not raw_ids & {r[0] for r in rows_a[1:]}
    assert b.run == a.run + 1


def test_plan_reports_without_writing(world: World) -> None:
    approval = world.write_approval()
    before = set(world.root.rglob("*"))
    report = api.plan(world.owner, approval, world.source_url)
    assert set(world.root.rglob("*")) == before
    assert report.verdict == "ok"
    assert report.matching_rows > 0
    assert (
        report.written_rows
        == report.matching_rows - report.suppressed_rows - report.invalid_suppressed_rows
    )
    assert sum(report.histogram.values()) > 0
    result = world.export(approval)
    assert result.rows_written == report.written_rows  # plan needs no pseudonym key, agrees anyway


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"row_cap": 5}, PolicyError, "row_cap"),
        ({"min_rows": 10_000_000, "row_cap": 10_000_000}, PolicyError, "min_rows"),
        ({"expires": "2026-02-01T00:00:00Z"}, PolicyError, "expired"),
        ({"not_before": "2026-12-01T00:00:00Z"}, PolicyError, "not valid before"),
        (
            {
                "privacy": '[privacy]\nquasi_identifiers = ["birth_year", "district", "release_quarter"]\nk = 50\non_violation = "abort"\n'
            },
            PolicyError,
            "k",
        ),
    ],
)
def test_refusals_write_nothing(world: World, kwargs: dict, error: type, needle: str) -> None:
    approval = world.write_approval(**kwargs)
    out = world.root / "refused.sxb"
    with pytest.raises(error) as info:
        world.export(approval, out=out)
    assert needle in str(info.value)
    assert not out.exists()
    assert _leftovers(world.root) == []


def test_unsigned_and_untrusted_approvals_refused(world: World) -> None:
    unsigned = world.write_approval(sign=False)
    with pytest.raises(PolicyError, match="not signed"):
        world.export(unsigned)
    # Signed by someone who is not a trusted approver (the outsider).
    path = world.write_approval(sign=False)
    api.sign_approval(world.outsider, path, "stranger")
    with pytest.raises(PolicyError, match="not a trusted approver"):
        world.export(path)
    # Edited after signing.
    signed = world.write_approval()
    signed.write_text(signed.read_text().replace("row_cap  = 100000", "row_cap  = 100001"))
    with pytest.raises(PolicyError, match="signature is invalid"):
        world.export(signed)
    assert _leftovers(world.root) == []


def test_exporter_not_listed_refused(world: World) -> None:
    other = world.ids["outsider"].signing_key.to_line()
    approval = world.write_approval(exporter_key=other)
    with pytest.raises(PolicyError, match="not an exporter"):
        world.export(approval)


def test_max_runs_enforced_from_ledger(world: World) -> None:
    approval = world.write_approval(max_runs=1)
    world.export(approval)
    with pytest.raises(PolicyError, match="runs"):
        world.export(approval)


def test_unknown_column_is_schema_drift(world: World) -> None:
    columns = '[[column]]\nname = "x"\nsource = "no_such_column"\ntransform = "keep"\nrole = "sensitive"\n'
    approval = world.write_approval(columns=columns, privacy="", pseudonym=False)
    with pytest.raises(PolicyError, match="no_such_column"):
        world.export(approval)


def test_output_exists_refused(world: World) -> None:
    out = world.root / "exists.sxb"
    out.write_bytes(b"keep me")
    with pytest.raises(FileError):
        world.export(out=out)
    assert out.read_bytes() == b"keep me"


def test_wrong_recipient_cannot_decrypt(world: World) -> None:
    result = world.export()
    out = world.root / "nope"
    with pytest.raises(KeyUnavailableError):
        api.decrypt(world.outsider, result.bundle, "stranger", out)
    assert not out.exists()
    assert not (world.root / "nope.partial").exists()


def test_flipped_byte_in_each_member_is_detected(world: World) -> None:
    import zipfile

    result = world.export()
    data = result.bundle.read_bytes()
    with zipfile.ZipFile(result.bundle) as zf:
        infos = zf.infolist()
    for info in infos:
        offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        position = offset + info.compress_size // 2
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        path = world.root / f"tampered-{info.filename}.sxb"
        path.write_bytes(bytes(tampered))
        with pytest.raises(VerificationError):
            api.verify(world.owner, path)
        with pytest.raises(VerificationError):
            api.decrypt(world.recipient, path, "force", world.root / f"out-{info.filename}")
        assert not (world.root / f"out-{info.filename}").exists()


def test_decrypt_refuses_non_empty_directory(world: World) -> None:
    result = world.export()
    out = world.root / "full"
    out.mkdir()
    (out / "x").write_text("x")
    with pytest.raises(FileError):
        api.decrypt(world.recipient, result.bundle, "force", out)


def test_no_plaintext_on_disk(world: World, tmp_path: Path) -> None:
    """A unique canary in the source must appear in no file left after the run.  Files that
    exist only during the run (nameless spools, deleted temporaries) are covered by
    tests/system/test_no_plaintext_written.py, which traces every write."""
    needle, approval = world.plant_canary()
    result = world.export(approval)
    for path in list(tmp_path.rglob("*")) + list(Path("/tmp").glob("*")):
        if path.is_file() and path != world.db_path and not path.name.startswith("offenders.db"):
            try:
                assert needle not in path.read_bytes(), f"canary found in {path}"
            except PermissionError:
                continue
    # And it is really there once decrypted (so the check above could fail).
    out = world.root / "canary-out"
    api.decrypt(world.recipient, result.bundle, "force", out)
    assert needle in (out / "data" / "offenders.csv").read_bytes()


def _plant(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def test_partials_left_by_a_killed_export_are_removed_with_a_notice(world: World) -> None:
    """A killed run's partials hold no lock: the next run removes them, says so, and goes on."""
    out = world.root / "killed.sxb"
    stale = [out.with_name("killed.sxb.partial"), out.with_name("killed.sxb.payload.partial")]
    for path in stale:
        _plant(path, b"encrypted leftovers")
    stderr = world.exporter.stderr
    assert isinstance(stderr, io.StringIO)
    before = stderr.getvalue()
    assert world.export(out=out).bundle == out
    notices = stderr.getvalue()[len(before) :]
    for path in stale:
        assert not path.exists()
        assert f"removed {path}, left by an interrupted run" in notices
    api.verify(world.recipient, out)  # raises unless the bundle is sound


@pytest.mark.parametrize("name", ["held.sxb.partial", "held.sxb.payload.partial"])
def test_a_partial_another_run_is_writing_is_refused_and_kept(world: World, name: str) -> None:
    out = world.root / "held.sxb"
    held = world.root / name
    fd = fsutil.create_locked_partial(held)  # this process is the "other run"
    try:
        os.write(fd, b"being written")
        with pytest.raises(FileError, match="is being written by another run") as info:
            world.export(out=out)
        assert info.value.exit_code == 7
        assert held.read_bytes() == b"being written"
        assert not out.exists()
    finally:
        os.close(fd)
    assert sorted(p.name for p in world.root.iterdir() if p.name.startswith("held")) == [name]


@pytest.mark.parametrize("mode", [0o644, 0o400])
def test_a_file_that_is_not_our_partial_is_refused_and_kept(world: World, mode: int) -> None:
    out = world.root / "foreign.sxb"
    foreign = world.root / "foreign.sxb.partial"
    _plant(foreign, b"someone else's file", mode)
    with pytest.raises(FileError, match="is not a partial file of securexport") as info:
        world.export(out=out)
    assert info.value.exit_code == 7
    assert foreign.read_bytes() == b"someone else's file"
    assert not out.exists()


def test_decrypt_removes_a_killed_decrypts_partial_directory(world: World) -> None:
    """A killed decrypt leaves plaintext in DIR.partial (with our marker, unlocked): the next
    decrypt removes it; a directory without the marker, or one still locked, is refused."""
    bundle = world.export().bundle
    out = world.root / "plain"
    partial = world.root / "plain.partial"
    partial.mkdir(mode=0o700)
    (partial / fsutil.PARTIAL_DIR_MARKER).touch()
    (partial / "data").mkdir()
    (partial / "data" / "offenders.csv").write_text("plaintext of a killed run")
    api.decrypt(world.recipient, bundle, "force", out)
    assert not partial.exists()
    assert not (out / fsutil.PARTIAL_DIR_MARKER).exists()
    assert sorted(p.name for p in out.iterdir()) == ["data"]

    # Without the marker, it is not known to be ours: refused and left alone.
    foreign = world.root / "plain2.partial"
    foreign.mkdir(mode=0o700)
    (foreign / "keep.txt").write_text("not securexport's")
    with pytest.raises(FileError, match=r"plain2\.partial exists") as info:
        api.decrypt(world.recipient, bundle, "force", world.root / "plain2")
    assert info.value.exit_code == 7
    assert (foreign / "keep.txt").read_text() == "not securexport's"
    assert not (world.root / "plain2").exists()

    # Marked but locked by a live run: refused and left alone.
    live = world.root / "plain3.partial"
    fd = fsutil.claim_partial_dir(live, None)
    try:
        with pytest.raises(FileError, match=r"plain3\.partial exists"):
            api.decrypt(world.recipient, bundle, "force", world.root / "plain3")
        assert (live / fsutil.PARTIAL_DIR_MARKER).exists()
    finally:
        os.close(fd)


def test_decrypt_verifies_before_touching_a_key(world: World) -> None:
    """A tampered bundle is refused (exit 5) before any key is unlocked: with no passphrase
    available, an unlock attempt would fail with exit 4 instead."""
    import dataclasses
    import zipfile

    result = world.export()
    tampered = world.root / "tampered.sxb"
    with zipfile.ZipFile(result.bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "manifest.json":
                data = data.replace(b'"format":"csv"', b'"format":"jsonl"')
            dst.writestr(info, data)
    locked = dataclasses.replace(world.recipient, passphrase_file=None)
    with pytest.raises(VerificationError) as info:
        api.decrypt(locked, tampered, "force", world.root / "out")
    assert info.value.exit_code == 5
    with pytest.raises(KeyUnavailableError):  # the same environment really cannot unlock keys
        api.decrypt(locked, result.bundle, "force", world.root / "out2")


def test_cell_beyond_the_decrypt_limit_is_never_exported(world: World) -> None:
    """Decrypt refuses cells over Limits.max_cell_bytes, so export must refuse to write one."""
    from securexport.limits import DEFAULT_LIMITS

    huge = "x" * (DEFAULT_LIMITS.max_cell_bytes + 1)
    with sqlite3.connect(world.db_path) as conn:
        conn.execute(
            "UPDATE offenders SET notes = ? WHERE rowid = (SELECT min(rowid) FROM offenders "
            "WHERE force_code = 'WMP')",
            (huge,),
        )
    columns = (
        '[[column]]\nname = "notes"\nsource = "notes"\ntransform = "keep"\nrole = "sensitive"\n'
    )
    approval = world.write_approval(columns=columns, privacy="", pseudonym=False)
    out = world.root / "huge.sxb"
    with pytest.raises(PolicyError, match="cell limit") as info:
        world.export(approval, out=out)
    assert info.value.exit_code == 3
    assert "xxxx" not in str(info.value)
    assert not out.exists()
    assert _leftovers(world.root) == []
