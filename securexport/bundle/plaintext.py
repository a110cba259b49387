"""Holding decrypted plaintext against its approval (DESIGN.md §8.4).

A recipient checks that the exporter put no more into the payload than was approved: the header
is exactly the approved column names, the row count is the manifest's (never above the row cap),
every cell is something its transform can produce, and k holds.  Errors name a row number and a
column, never a value.

CSV is checked a block of lines at a time (docs/performance.md): a block of plain lines (no
quotes, NUL or lone CR/LF, ``\\r\\n`` endings, the right number of fields) is split into columns,
each column is checked as a whole (a per-column memo of values already accepted by
:func:`transforms.cell_validator`; pseudonyms by their alphabet) and counted for k.  The first
block that is anything else (or holds a bad value, or too many rows) is handed to the exact
row-by-row check from its first line on, so what is accepted or refused, and the row and column
an error names, are the row-by-row check's.

k is counted over distinct (class, entity) pairs, whatever order the rows come in: the order
is the exporter's, and counting runs of one entity (as the export does over its own ordered
query) would let an exporter split one person into several.  The pairs of a large payload
(more than ``Limits.max_k_pairs_in_memory``) go, by hash, to several encrypted scratch files
and are counted one file at a time, so memory stays bounded however many rows there are.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import struct
import sys
from array import array
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter, call, itemgetter, mod
from pathlib import Path

from securexport.data import transforms
from securexport.data.spool import Spool
from securexport.errors import VerificationError
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy.approval import Approval

Row = list[str | None]

BLOCK = 1 << 20  # plaintext bytes read per block (whole lines)
MEMO_MAX = 65_536  # accepted values remembered per column
_PLAIN_FORBIDDEN = (b'"', b"\x00")  # a quoted field, or NUL: left to the csv module


def _csv_rows(path: Path, offset: int = 0) -> Iterator[Row]:
    # The csv module refuses fields above 128 KiB by default, but an export writes cells up to
    # Limits.max_cell_bytes: without this a legitimate bundle with a large cell would not open.
    if csv.field_size_limit() < DEFAULT_LIMITS.max_cell_bytes:
        csv.field_size_limit(DEFAULT_LIMITS.max_cell_bytes)
    with open(path, "rb") as raw:
        raw.seek(offset)
        with io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh, strict=True):
                yield [cell if cell != "" else None for cell in row]


def _jsonl_rows(path: Path, names: list[str]) -> Iterator[Row]:
    yield list(names)  # JSONL has no header line: object keys are checked per row
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise VerificationError(f"payload row {number} is not valid JSON") from exc
            if not isinstance(obj, dict) or list(obj) != names:
                raise VerificationError(
                    f"payload row {number} does not have exactly the approved columns"
                )
            yield [
                None if v is None else (v if isinstance(v, str) else json.dumps(v))
                for v in obj.values()
            ]


def _csv_key(cell: str | None) -> bytes:
    # The block check counts classes over raw bytes (b"" for an empty field): the same here.
    return b"" if cell is None else cell.encode("utf-8")


def _json_key(cell: str | None) -> bytes:
    # JSON tells null from "" (and may hold lone surrogates): one byte string for each.
    return b"n" if cell is None else b"s" + cell.encode("utf-8", "surrogatepass")


_ID_BYTES = 8
_COUNT = struct.Struct("=I")
_SPILL_EVERY = 50_000  # pairs added one at a time (the row-by-row check) are spilled in lots


def _pack(items: list[bytes]) -> bytes:
    """Byte strings as one record: their number, their lengths, then the bytes."""
    return _COUNT.pack(len(items)) + array("I", map(len, items)).tobytes() + b"".join(items)


def _unpack(record: bytes) -> list[bytes]:
    (n,) = _COUNT.unpack_from(record)
    lengths = array("I")
    head = _COUNT.size + n * lengths.itemsize
    lengths.frombytes(record[_COUNT.size : head])
    ends = list(itertools.accumulate(lengths, initial=head))
    if ends[-1] != len(record):
        raise ValueError("record lengths do not add up")
    return list(map(record.__getitem__, map(slice, ends, ends[1:])))


class _DistinctPairs:
    """Distinct (class id, entity) pairs, counted per class id: exactly, in bounded memory.

    When at most ``in_memory`` pairs can come (the manifest's row count says so), one set.
    Otherwise each pair goes, by its hash, to one of ``ceil(expected / in_memory)`` encrypted
    scratch files beside the plaintext (securexport.spool): equal pairs always go to the same
    file, so counting each file's distinct pairs and adding the counts per class is exact,
    with one file's pairs in memory at a time.
    """

    def __init__(self, expected: int, in_memory: int, directory: Path) -> None:
        self._set: set[bytes] = set()
        self._pending: list[bytes] = []
        parts = -(-expected // max(1, in_memory))
        # The exporter chooses the pairs: with string hashing made predictable
        # (PYTHONHASHSEED), a secret salt keeps them from all landing in one file.
        self._salt = b"" if sys.flags.hash_randomization else os.urandom(16)
        self._spools = [
            Spool(directory, outcome="nothing was decrypted")
            for _ in range(parts if parts > 1 else 0)
        ]

    def update(self, pairs: Iterable[bytes]) -> None:
        if not self._spools:
            self._set.update(pairs)
            return
        items = pairs if isinstance(pairs, list) else list(pairs)
        if not items:
            return
        # Each pair to the list of its spool, by hash: one pass in C, however many spools.
        lists: list[list[bytes]] = [[] for _ in self._spools]
        appends = list(map(attrgetter("append"), lists))
        hashed = map(bytes.__add__, items, itertools.repeat(self._salt)) if self._salt else items
        where = map(mod, map(hash, hashed), itertools.repeat(len(lists)))
        deque(map(call, map(appends.__getitem__, where), items), maxlen=0)
        for chosen, spool in zip(lists, self._spools, strict=True):
            if chosen:
                spool.append(_pack(chosen))

    def add(self, pair: bytes) -> None:
        if not self._spools:
            self._set.add(pair)
            return
        self._pending.append(pair)
        if len(self._pending) >= _SPILL_EVERY:
            self.update(self._pending)
            self._pending = []

    def class_sizes(self) -> Counter[bytes]:
        """Distinct entities per class id."""
        ids = itemgetter(slice(0, _ID_BYTES))
        if not self._spools:
            return Counter(map(ids, self._set))
        self.update(self._pending)
        self._pending = []
        sizes: Counter[bytes] = Counter()
        for spool in self._spools:
            distinct: set[bytes] = set()
            for record in spool.replay():
                distinct.update(_unpack(record))
            spool.close()
            sizes.update(map(ids, distinct))
        return sizes

    def close(self) -> None:
        for spool in self._spools:
            spool.close()


class _Check:
    """Rows checked so far, and the classes counted for k (memory grows with the number of
    classes; the (class, entity) pairs are bounded by ``Limits.max_k_pairs_in_memory``)."""

    def __init__(
        self,
        approval: Approval,
        expected_rows: int,
        scratch: Path = Path(os.curdir),
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.approval = approval
        self.expected_rows = expected_rows
        self.names = [col.name for col in approval.columns]
        self.validators = [transforms.cell_validator(col) for col in approval.columns]
        self.alphabets = [transforms.cell_alphabet(col) for col in approval.columns]
        self.memo: list[set[bytes]] = [set() for _ in approval.columns]
        privacy = approval.privacy
        self.privacy = privacy is not None
        self.qi_index = [self.names.index(q) for q in privacy.quasi_identifiers] if privacy else []
        self.entity_col = next(
            (
                i
                for i, col in enumerate(approval.columns)
                if col.source == approval.entity and col.transform in ("pseudonym", "keep")
            ),
            None,
        )
        # Class -> id (8 bytes); id + entity when the entity is in the output, else rows per
        # class id (which can only overstate k: documented in docs/formats.md).  Byte strings,
        # not tuples: a million of them kept in a set cost no garbage-collector passes.
        ids = itertools.count()
        # A class is its QI cells joined by commas (a tuple when a cell holds a comma, which
        # only the row-by-row check sees): the block check builds those keys without tuples.
        self.class_ids: defaultdict[bytes | tuple[bytes, ...], bytes] = defaultdict(
            lambda: next(ids).to_bytes(_ID_BYTES, "big")
        )
        self.pairs = _DistinctPairs(
            expected_rows if self.privacy and self.entity_col is not None else 0,
            limits.max_k_pairs_in_memory,
            scratch,
        )
        self.class_rows: Counter[bytes] = Counter()
        self.count = 0

    # ------------------------------------------------------------------ row by row (exact)

    def rows(self, rows: Iterator[Row], key: Callable[[str | None], bytes]) -> None:
        names, validators, approval = self.names, self.validators, self.approval
        try:
            for row in rows:
                self.count += 1
                count = self.count
                if count > self.expected_rows or count > approval.row_cap:
                    raise VerificationError(
                        "payload holds more rows than the manifest states or the approval allows"
                    )
                if len(row) != len(names):
                    raise VerificationError(
                        f"payload row {count} has {len(row)} fields, expected {len(names)}"
                    )
                for index, (cell, ok) in enumerate(zip(row, validators, strict=True)):
                    if not ok(cell):
                        raise VerificationError(
                            f"payload row {count}, column {names[index]!r}: value is not what "
                            f"transform {approval.columns[index].transform} produces"
                        )
                if self.privacy:
                    parts = [key(row[i]) for i in self.qi_index]
                    joined = b",".join(parts)
                    cid = self.class_ids[tuple(parts) if any(b"," in p for p in parts) else joined]
                    if self.entity_col is not None:
                        self.pairs.add(cid + key(row[self.entity_col]))
                    else:
                        self.class_rows[cid] += 1
        except (csv.Error, UnicodeDecodeError) as exc:
            raise VerificationError(f"payload row {self.count + 1} is not valid UTF-8 CSV") from exc

    # ------------------------------------------------------------------ a block at a time

    def header_bytes(self) -> bytes | None:
        """The header line as an export writes it, when the csv module reads it back as is."""
        if any(name == "" or any(c in name for c in ',"\r\n\x00') for name in self.names):
            return None
        return ",".join(self.names).encode("utf-8") + b"\r\n"

    def block(self, chunk: bytes) -> bool:
        """Check and count whole lines ending in ``\\r\\n``; False (nothing counted) when the
        row-by-row check must decide from the block's first line on."""
        lines_n = chunk.count(b"\n")
        if (
            chunk.count(b"\r") != lines_n
            or chunk.count(b"\r\n") != lines_n
            or any(b in chunk for b in _PLAIN_FORBIDDEN)
        ):
            return False
        if not chunk.isascii():
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                return False
        count = self.count + lines_n
        if count > self.expected_rows or count > self.approval.row_cap:
            return False
        lines = chunk.split(b"\r\n")
        lines.pop()  # after the last \r\n
        ncols = len(self.names)
        if ncols == 1:
            # A blank line is a row of no fields to the csv module; a comma, of two.
            if b"" in lines or b"," in chunk:
                return False
            cols = [lines]
        else:
            if set(map(bytes.count, lines, itertools.repeat(b","))) != {ncols - 1}:
                return False
            flat = b",".join(lines).split(b",")
            cols = [flat[j::ncols] for j in range(ncols)]
        for j, col in enumerate(cols):
            if not self._column(j, col):
                return False
        if self.privacy:
            qi = self.qi_index
            keys: Iterable[bytes]
            if len(qi) > 1:  # cells hold no comma or LF: "a,b,\n,c,d,\n," -> [a,b  c,d]
                width = len(qi) + 1
                proj = [b"\n"] * (width * lines_n)
                for slot, i in enumerate(qi):
                    proj[slot::width] = cols[i]
                keys = (b",".join(proj) + b",").split(b",\n,")
                keys.pop()
            else:
                keys = cols[qi[0]] if qi else itertools.repeat(b"", lines_n)
            ids = map(self.class_ids.__getitem__, keys)
            if self.entity_col is not None:
                self.pairs.update(map(bytes.__add__, ids, cols[self.entity_col]))
            else:
                self.class_rows.update(ids)
        self.count = count
        return True

    def _column(self, j: int, col: list[bytes]) -> bool:
        if self.approval.columns[j].transform == "keep":
            return True
        alphabet = self.alphabets[j]
        if alphabet is not None:
            return (
                set(map(len, col)) <= {0, alphabet.length}
                and not b"".join(col).translate(None, alphabet.symbols.encode("ascii"))
                and set(map(itemgetter(-1), filter(None, col))) <= set(alphabet.last.encode())
            )
        memo = self.memo[j]
        new = set(col)
        new -= memo
        ok = self.validators[j]
        for value in new:
            if not ok(value.decode("utf-8") if value else None):
                return False
        if len(memo) + len(new) <= MEMO_MAX:
            memo |= new
        return True

    def csv_file(self, path: Path) -> int | None:
        """Check the file a block at a time; the byte offset where the row-by-row check must
        take over (0: from the header), or None when every line was checked."""
        header = self.header_bytes()
        if header is None:
            return 0
        with open(path, "rb") as fh:
            if fh.read(len(header)) != header:
                return 0
            offset = len(header)
            rest = b""
            while data := fh.read(BLOCK):
                buf = rest + data if rest else data
                cut = buf.rfind(b"\n") + 1
                rest = buf[cut:]
                if cut:
                    if not self.block(buf[:cut]):
                        return offset
                    offset += cut
            return offset if rest else None

    # ------------------------------------------------------------------ the end

    def k_found(self) -> int | None:
        if self.entity_col is not None:
            sizes = list(self.pairs.class_sizes().values())
        else:
            sizes = list(self.class_rows.values())
        return min(sizes) if self.privacy and sizes else None


def _header(rows: Iterator[Row], names: list[str]) -> None:
    try:
        header = next(rows)
    except StopIteration:
        raise VerificationError("payload file is empty: no header row") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise VerificationError("payload file is not valid UTF-8 CSV") from exc
    if header != names:
        raise VerificationError("payload header is not exactly the approved column names")


def check_plaintext(
    path: Path, approval: Approval, expected_rows: int, limits: Limits = DEFAULT_LIMITS
) -> dict[str, object]:
    """Check one decrypted data file; return what was checked (rows, k recomputed).  A large
    payload's k recount uses nameless encrypted scratch files in the file's directory."""
    check = _Check(approval, expected_rows, path.parent, limits)
    try:
        return _check(check, path, approval, expected_rows)
    finally:
        check.pairs.close()


def _check(check: _Check, path: Path, approval: Approval, expected_rows: int) -> dict[str, object]:
    if approval.output_format == "csv":
        offset = check.csv_file(path)
        if offset is not None:
            rows = _csv_rows(path, offset)
            if offset == 0:
                _header(rows, check.names)
            check.rows(rows, _csv_key)
    else:
        rows = _jsonl_rows(path, check.names)
        _header(rows, check.names)
        check.rows(rows, _json_key)
    count = check.count
    if count != expected_rows:
        raise VerificationError(
            f"payload holds {count} rows but the manifest states {expected_rows}"
        )
    k_found = check.k_found()
    privacy = approval.privacy
    if privacy and k_found is not None and k_found < privacy.k:
        raise VerificationError(
            f"payload breaks k-anonymity: a class of size {k_found} is below k={privacy.k}"
        )
    return {"rows": count, "k_recomputed": k_found, "entity_counted": check.entity_col is not None}
