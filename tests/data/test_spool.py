"""securexport.spool: the export's encrypted, nameless scratch file."""

from __future__ import annotations

import csv
import io
import os
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securexport.data import pipeline
from securexport.data.spool import Spool, SpoolError
from securexport.errors import FileError

CANARY = b"CANARY-offender-0000123"


def _spool_file(spool: Spool) -> int:
    return spool._file.fileno()


def test_round_trip_in_order(tmp_path: Path) -> None:
    records = [CANARY + bytes([i]) * i for i in range(50)] + [b""]
    with Spool(tmp_path) as spool:
        for r in records:
            spool.append(r)
        assert len(spool) == len(records)
        assert list(spool.replay()) == records


def test_no_name_and_no_plaintext_on_disk(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append(CANARY * 1000)
        assert list(tmp_path.iterdir()) == []  # nameless: nothing to find, nothing left
        fd = _spool_file(spool)
        os.lseek(fd, 0, os.SEEK_SET)
        on_disk = os.read(fd, 1 << 20)
        assert len(on_disk) > 1000 * len(CANARY)
        assert CANARY not in on_disk
        assert os.fstat(fd).st_mode & 0o077 == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", [0, 3, 4, 20, -1])
def test_a_flipped_byte_is_refused(tmp_path: Path, where: int) -> None:
    with Spool(tmp_path) as spool:
        spool.append(CANARY)
        spool.append(CANARY)
        fd = _spool_file(spool)
        spool._file.flush()
        size = os.fstat(fd).st_size
        at = where % size
        byte = os.pread(fd, 1, at)
        os.pwrite(fd, bytes([byte[0] ^ 0x01]), at)
        with pytest.raises(SpoolError) as info:
            list(spool.replay())
        # a disk fault, not a bug: exit 7, one line with a hint
        assert info.value.exit_code == 7
        assert "nothing was exported" in info.value.message and info.value.hint


def test_swapped_records_are_refused(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append(b"A" * 10)
        spool.append(b"B" * 10)
        spool._file.flush()
        fd = _spool_file(spool)
        data = os.pread(fd, 1 << 16, 0)
        half = len(data) // 2
        os.pwrite(fd, data[half:] + data[:half], 0)
        with pytest.raises(SpoolError):
            list(spool.replay())


def test_truncated_or_extended_file_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append(b"A" * 10)
        spool._file.flush()
        fd = _spool_file(spool)
        size = os.fstat(fd).st_size
        os.pwrite(fd, b"\x00", size)
        with pytest.raises(SpoolError, match="longer"):
            list(spool.replay())
        os.ftruncate(fd, size - 1)
        with pytest.raises(SpoolError):
            list(spool.replay())


def test_unwritable_directory_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="scratch file"):
        Spool(tmp_path / "missing")


# ------------------------------------------------------------------ pipeline's spooled batches

row_text = st.lists(
    st.tuples(st.text(max_size=12), st.text(max_size=6) | st.none()), min_size=1, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(rows=row_text, data=st.data())
def test_dropping_rows_keeps_exactly_the_others(
    rows: list[tuple[str, str | None]], data: st.DataObject
) -> None:
    """Any text (newlines, quotes, non-ASCII) survives pack → unpack → drop, row-exact."""
    classes = data.draw(st.lists(st.integers(0, 4), min_size=len(rows), max_size=len(rows)))
    small = frozenset(data.draw(st.sets(st.integers(0, 4))))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    lengths = array("I", map(writer.writerow, rows))
    digests = b"".join(i.to_bytes(32, "big") for i in range(len(rows)))
    batch = pipeline._Batch(lengths, array("I", classes), digests, text.getvalue().encode())
    back = pipeline._Batch.unpack(batch.pack())
    assert back == batch
    out, count, kept_digests = pipeline._drop_rows(back, small)
    kept = [i for i, c in enumerate(classes) if c not in small]
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\r\n").writerows(rows[i] for i in kept)
    assert out.decode() == expected.getvalue()
    assert count == len(kept)
    assert kept_digests == b"".join(i.to_bytes(32, "big") for i in kept)


def test_the_error_says_what_the_command_did_not_do(tmp_path: Path) -> None:
    """Decrypt's k recount spools too: its damaged scratch file says nothing was decrypted."""
    with Spool(tmp_path, outcome="nothing was decrypted") as spool:
        spool.append(CANARY)
        fd = _spool_file(spool)
        spool._file.flush()
        os.pwrite(fd, b"\xff", os.fstat(fd).st_size - 1)
        with pytest.raises(SpoolError) as info:
            list(spool.replay())
    assert info.value.exit_code == 7
    assert info.value.message.endswith("; nothing was decrypted")
