"""An encrypted, nameless scratch file.

The export reads its rows once: it transforms them, counts the k-anonymity classes and
formats the output in the same pass, but cannot know which classes are too small until the
last row.  The formatted batches wait here.  Decrypt's recount of k spills the (class, entity)
pairs of a large payload here too (securexport.bundle.plaintext), so that its memory stays
bounded.  Records are AES-256-GCM encrypted (:class:`securexport._crypto.aead.RecordCipher`)
under a key that exists only in this process's memory, in a file with no name (``O_TMPFILE``,
or created and unlinked at once by :func:`tempfile.TemporaryFile`): nothing readable reaches
the disk, and a crash leaves nothing behind.  Records are numbered by their GCM nonce, so a
reordered, dropped, replayed or altered record is refused when read back (a defence in depth:
the file is ours alone for the length of one command).
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from securexport._crypto import aead
from securexport.errors import FileError
from securexport.fsutil import os_error_message

_LENGTH = struct.Struct(">I")
MAX_RECORD = 1 << 30  # one batch; far above any 10,000-row batch of capped cells


class SpoolError(FileError):
    """The scratch file did not read back as written (disk fault or interference): exit 7."""

    def __init__(self, message: str, outcome: str = "nothing was exported") -> None:
        super().__init__(
            f"{message}; {outcome}",
            hint="check the disk beside the output (or anything touching its files), then run again",
        )


class Spool:
    """Append records, then read them back once, in order.  Use as a context manager.

    ``outcome``: what an error reading it back means for the command (said in the message).
    """

    def __init__(self, directory: Path, *, outcome: str = "nothing was exported") -> None:
        self._outcome = outcome
        try:
            self._file: BinaryIO = tempfile.TemporaryFile(  # noqa: SIM115 - closed in close()
                mode="w+b", dir=directory, prefix=".securexport-spool-"
            )
        except OSError as exc:
            raise FileError(
                f"cannot create a scratch file in {directory}: {os_error_message(exc)}"
            ) from exc
        self._cipher = aead.RecordCipher()
        self._written = 0
        self.bytes = 0  # ciphertext bytes written (for figures)

    def append(self, record: bytes) -> None:
        if len(record) > MAX_RECORD:
            raise SpoolError("a batch is too large for the scratch file", self._outcome)
        sealed = self._cipher.seal(self._written, record)
        try:
            self._file.write(_LENGTH.pack(len(sealed)))
            self._file.write(sealed)
        except OSError as exc:
            raise FileError(f"cannot write the scratch file: {os_error_message(exc)}") from exc
        self._written += 1
        self.bytes += len(sealed) + _LENGTH.size

    def __len__(self) -> int:
        return self._written

    def flush(self) -> None:
        """Push buffered records to the file (a forked writer does, before it leaves)."""
        try:
            self._file.flush()
        except OSError as exc:
            raise FileError(f"cannot write the scratch file: {os_error_message(exc)}") from exc

    def adopt(self, records: int, nbytes: int) -> None:
        """Take over ``records`` appended by a forked child through this same file and key
        (this process must not have appended any: the nonces would repeat)."""
        if self._written:
            raise ValueError("this spool has records of its own")
        self._written = records
        self.bytes = nbytes

    def replay(self) -> Iterator[bytes]:
        """Every record, in the order appended."""
        try:
            self._file.flush()
            self._file.seek(0)
        except OSError as exc:
            raise FileError(f"cannot read the scratch file: {os_error_message(exc)}") from exc
        for n in range(self._written):
            head = self._file.read(_LENGTH.size)
            if len(head) != _LENGTH.size:
                raise SpoolError("the scratch file is shorter than what was written", self._outcome)
            (size,) = _LENGTH.unpack(head)
            if size > MAX_RECORD + aead.TAG_BYTES:
                raise SpoolError("the scratch file is damaged", self._outcome)
            sealed = self._file.read(size)
            try:
                yield self._cipher.open(n, sealed)
            except aead.RecordError:
                raise SpoolError("the scratch file is damaged", self._outcome) from None
        if self._file.read(1):
            raise SpoolError("the scratch file is longer than what was written", self._outcome)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scratch_directory(output: Path) -> Path:
    """Where an export's spool goes: beside its output (the same disk the bundle needs)."""
    parent = output.parent
    return parent if str(parent) else Path(os.curdir)
