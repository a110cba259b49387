"""The export register: an append-only RFC 6962 Merkle log of signed manifests (SQLite or PG).

Each export appends one entry whose Merkle leaf is the exact signed manifest bytes.  Every append
runs in one ``BEGIN IMMEDIATE`` transaction that re-checks the approval's run count, inserts the
entry, extends the compact range and the node table (O(log n) hashes), and stores a new
checkpoint signed with the ledger's own Ed25519 key as a C2SP signed note.  The bundle's
``receipt.tlog`` is a ``c2sp.org/tlog-proof@v1`` proof against that checkpoint, checked offline by
:func:`~securexport.ledger.receipt.verify_receipt`.

The stores' triggers stop accidents, not an owner of the database, which is what
:meth:`Ledger.verify_all` is for: it recomputes the whole tree from the leaves and checks every
signed checkpoint against it.

The SQL lives in the stores only: securexport.ledger.sqlite_store (``$SECUREXPORT_HOME/ledger.db``)
and securexport.ledger.postgres_store (a team ledger, opened from a ``postgresql+psycopg://``
URL).  :func:`open_ledger` chooses between them.

Crash safety (tests/system/test_ledger_crash.py kills an export at each stage): an append either
commits whole or leaves no trace, and a bundle is renamed into place only after its entry is
committed, so no bundle exists without its entry.  The converse can happen: an entry whose
bundle was never written (``ledger list`` shows it; ``ledger verify`` accepts it) means the run
died after logging, leaving ``<out>.partial`` files that the next export to that name reports.
Such a run used one run of its approval.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from securexport._crypto import merkle
from securexport._crypto.ed25519 import SigningKey, public_key_bytes
from securexport._crypto.note import Checkpoint, make_verifier_key, open_note, sign_note
from securexport.errors import (
    FileError,
    KeyUnavailableError,
    PolicyError,
    SecurexportError,
    VerificationError,
)
from securexport.ledger.postgres_store import store_for_url
from securexport.ledger.receipt import Receipt
from securexport.ledger.sqlite_store import SqliteStore
from securexport.ledger.store import (
    BUNDLE_OUTCOME,
    KIND_EXPORT,
    SCHEMA_VERSION,
    Entry,
    LedgerVerificationError,
    first_line,
)
from securexport.policy.times import rfc3339

_ORIGIN_RE = re.compile(r"[\x21-\x2a\x2c-\x7e]{1,200}")  # printable ASCII, no space, no '+'


def new_origin() -> str:
    """A fresh, unique log origin: ``securexport.local/<16 hex>``."""
    return f"securexport.local/{secrets.token_hex(8)}"


def ledger_verifier_key(name: str, private_key: SigningKey) -> str:
    """The signed-note verifier key (``name+keyid+base64``) of a ledger signing key."""
    return make_verifier_key(name, public_key_bytes(private_key))


@dataclass(frozen=True)
class VerifyReport:
    size: int
    root_hash: bytes
    origin: str
    entries_checked: int
    checkpoints_checked: int
    latest_checkpoint: str | None = field(repr=False)


class _StoreNodes:
    """A :class:`merkle.NodeSource` over the node table."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def node(self, level: int, index: int) -> bytes:
        found = self._store.node(level, index)
        if found is None:
            raise LedgerVerificationError(
                f"the ledger's node table lacks node {level}/{index}",
                hint="run 'securexport ledger verify'",
            )
        return found


class Ledger:
    """The export register.  Open with :meth:`open`; one instance per process/thread."""

    def __init__(self, store: SqliteStore, origin: str) -> None:
        self._store = store
        self.origin = origin
        self.location = store.display  # a path or a URL without credentials

    @classmethod
    def open(cls, target: Path | str, *, origin: str | None = None) -> Ledger:
        """Open (creating if needed) the ledger at ``target``: a :class:`Path` (SQLite) or a URL,
        ``postgresql+psycopg://USER@HOST/DB`` (a team ledger; a password in it is refused) or
        ``sqlite:///path``.  A new ledger gets ``origin`` or a fresh
        ``securexport.local/<16 hex>``; an existing ledger keeps its origin."""
        if origin is not None and not _ORIGIN_RE.fullmatch(origin):
            raise ValueError(f"invalid ledger origin {origin!r}")
        store = SqliteStore(target) if isinstance(target, Path) else store_for_url(target)
        path = store.display
        try:
            with store.write_transaction():
                store.create_schema()
                version = store.get_meta("schema")
                if version is None:
                    store.put_meta("schema", SCHEMA_VERSION)
                elif version != SCHEMA_VERSION:
                    raise FileError(f"{path} is not a {SCHEMA_VERSION} ledger ({version})")
                stored = store.get_meta("origin")
                if stored is None:
                    stored = origin or new_origin()
                    store.put_meta("origin", stored)
                elif origin is not None and origin != stored:
                    raise VerificationError(
                        f"the ledger at {path} has origin {stored}, not {origin}"
                    )
        except store.errors as exc:
            store.close()
            raise FileError(f"cannot open the ledger {path}: {first_line(exc)}") from exc
        except BaseException:
            store.close()
            raise
        return cls(store, stored)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    def append_export(
        self,
        manifest: bytes,
        signature: bytes,
        *,
        export_id: str,
        approval_id: str,
        approval_sha256: str,
        run: int,
        max_runs: int | None,
        signer: SigningKey,
        now: datetime,
        signer_name: str | None = None,
        attachments: Mapping[str, bytes] | None = None,
        renumber: Callable[[int], tuple[bytes, bytes]] | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> Receipt:
        """Log one export and return its receipt, in one ``BEGIN IMMEDIATE`` transaction.

        ``before_commit`` is called inside the transaction, just before COMMIT (the crash tests
        stop the process there).

        ``attachments`` (name → bytes: the approval and its signature, the entity list for
        breach response) are stored beside the entry in the same transaction; they are not
        part of the tree.

        ``signer`` is the ledger's Ed25519 key; checkpoints are signed under ``signer_name``,
        which defaults to (and, for receipts to verify, must be) the ledger's origin.

        ``run`` is the run number the caller checked before exporting (``runs_used + 1``).  If
        another export of the same approval was logged meanwhile, ``renumber(new_run)`` gives
        the manifest and signature re-made for the next free run, inside the transaction (still
        within ``max_runs``); without it this refuses (PolicyError) and nothing is written.
        Costs O(log n) hashes and node reads.
        """
        created_at = rfc3339(now)
        signer_name = self.origin if signer_name is None else signer_name
        verifier_key = make_verifier_key(signer_name, public_key_bytes(signer))
        try:
            with self._store.write_transaction():
                receipt = self._append_locked(
                    manifest,
                    signature,
                    export_id=export_id,
                    approval_id=approval_id,
                    approval_sha256=approval_sha256,
                    run=run,
                    max_runs=max_runs,
                    signer=signer,
                    signer_name=signer_name,
                    verifier_key=verifier_key,
                    created_at=created_at,
                    renumber=renumber,
                )
                for name, data in (attachments or {}).items():
                    self._store.insert_attachment(export_id, name, data)
                if before_commit is not None:
                    before_commit()
        except self._store.errors as exc:
            raise FileError(f"cannot write to the ledger: {first_line(exc)}") from exc
        return receipt

    def _append_locked(
        self,
        manifest: bytes,
        signature: bytes,
        *,
        export_id: str,
        approval_id: str,
        approval_sha256: str,
        run: int,
        max_runs: int | None,
        signer: SigningKey,
        signer_name: str,
        verifier_key: str,
        created_at: str,
        renumber: Callable[[int], tuple[bytes, bytes]] | None = None,
    ) -> Receipt:
        store = self._store
        stored_key = store.get_meta("verifier_key")
        if stored_key is None:
            store.put_meta("verifier_key", verifier_key)
        elif stored_key != verifier_key:
            raise KeyUnavailableError(
                "this is not the ledger's signing key",
                hint=f"the ledger's checkpoints are signed by {stored_key}",
            )
        used = store.runs_used(approval_sha256)
        if max_runs is not None and used >= max_runs:
            raise PolicyError(f"approval {approval_id} has used all {max_runs} of its runs")
        if run != used + 1 and renumber is not None:
            run = used + 1
            manifest, signature = renumber(run)
        if run != used + 1:
            raise PolicyError(
                f"run number {run} of approval {approval_id} is stale "
                f"({used} runs are logged), retry",
                hint="another export of this approval was logged meanwhile; run the export again",
            )
        if store.has_export_id(export_id):
            raise PolicyError(f"export {export_id} is already in the ledger")

        compact = store.tree_state()
        index = compact.size
        leaf = merkle.leaf_hash(manifest)
        new_nodes: list[tuple[int, int, bytes]] = []
        compact.append(leaf, on_node=lambda lvl, idx, h: new_nodes.append((lvl, idx, h)))
        store.insert_entry(
            Entry(
                index=index,
                kind=KIND_EXPORT,
                export_id=export_id,
                approval_id=approval_id,
                approval_sha256=approval_sha256,
                run=run,
                created_at=created_at,
                leaf=manifest,
                signature=signature,
                leaf_hash=leaf,
            )
        )
        store.insert_nodes(new_nodes)
        store.put_tree_state(compact)
        root_hash = compact.root()
        checkpoint = Checkpoint(self.origin, compact.size, root_hash)
        note = sign_note(checkpoint.to_text(), signer_name, signer)
        store.insert_checkpoint(compact.size, root_hash, note, created_at)
        proof = merkle.inclusion_proof(_StoreNodes(store), index, compact.size)
        if not merkle.verify_inclusion(leaf, index, compact.size, proof, root_hash):
            raise LedgerVerificationError("the ledger's node table is inconsistent", index=index)
        return Receipt(index, tuple(proof), note)

    # -- reading -----------------------------------------------------------------------------

    def verifier_key(self, private_key: SigningKey) -> str:
        """The note verifier key for this ledger's checkpoints, signed with ``private_key``."""
        return ledger_verifier_key(self.origin, private_key)

    def pinned_verifier_key(self) -> str | None:
        """The verifier key recorded by the first append (None for an empty ledger)."""
        return self._store.get_meta("verifier_key")

    def runs_used(self, approval_sha256: str) -> int:
        """How many exports of the approval with this SHA-256 are logged."""
        return self._store.runs_used(approval_sha256)

    def size(self) -> int:
        return self._store.tree_state().size

    def entries(self, *, start: int = 0, limit: int | None = None) -> Iterator[Entry]:
        """Entries in log order, streamed."""
        return self._store.entries(start, limit)

    def entry(self, key: int | str) -> Entry:
        """One entry by index or export id."""
        found = (
            self._store.entry_by_index(key)
            if isinstance(key, int)
            else self._store.entry_by_export_id(key)
        )
        if found is None:
            raise VerificationError(f"{key} is not in the ledger")
        return found

    def latest_checkpoint(self) -> str | None:
        """The newest signed checkpoint note, or None for an empty ledger."""
        latest = self._store.latest_checkpoint()
        return None if latest is None else latest[1]

    def attachment(self, export_id: str, name: str) -> bytes | None:
        """An attachment stored beside an entry (None if there is none by that name)."""
        return self._store.attachment(export_id, name)

    # -- bundle status: was the bundle of each logged export written? -----------------------

    def record_bundle_outcome(self, export_id: str, written: bool, now: datetime) -> None:
        """Record (not in the tree) whether the bundle of a committed export was written."""
        record = {"status": "written" if written else "failed", "at": rfc3339(now)}
        try:
            with self._store.write_transaction():
                self._store.insert_attachment(
                    export_id, BUNDLE_OUTCOME, json.dumps(record, sort_keys=True).encode()
                )
        except self._store.errors as exc:
            raise FileError(f"cannot write to the ledger: {first_line(exc)}") from exc

    def bundle_states(
        self, approval_sha256: str | None = None, *, start: int = 0, limit: int | None = None
    ) -> list[BundleState]:
        """Whether each logged export's bundle was written (all, one approval's, or a range)."""
        stop = 2**62 if limit is None else start + limit
        with self._store.read_transaction():
            records = self._store.bundle_records(approval_sha256, start, stop)
        return [
            BundleState(index, run, export_id, _bundle_state(outcome, writer))
            for index, run, export_id, writer, outcome in records
        ]

    def checkpoint_at(self, size: int) -> str:
        """The signed checkpoint note at tree size ``size``."""
        found = self._store.checkpoint_at(size)
        if found is None:
            raise VerificationError(f"the ledger has no checkpoint at size {size}")
        return found[1]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 PROOF(old_size, D[0:new_size]) from the node table."""
        if not 0 <= old_size <= new_size <= self.size():
            raise VerificationError(
                f"no consistency proof from size {old_size} to {new_size} "
                f"(the ledger holds {self.size()} entries)"
            )
        return merkle.consistency_proof(_StoreNodes(self._store), old_size, new_size)

    def prove_at(self, export_id: str, size: int) -> Receipt:
        """A receipt for ``export_id`` against the stored checkpoint at ``size``."""
        store = self._store
        with store.read_transaction():
            found = store.entry_by_export_id(export_id)
            checkpoint = store.checkpoint_at(size)
            if found is None or checkpoint is None or found.index >= size:
                raise VerificationError(
                    f"export {export_id} is not in the ledger's checkpoint at size {size}"
                )
            proof = merkle.inclusion_proof(_StoreNodes(store), found.index, size)
        if not merkle.verify_inclusion(
            merkle.leaf_hash(found.leaf), found.index, size, proof, checkpoint[0]
        ):
            raise LedgerVerificationError(
                f"entry {found.index} does not match the checkpoint at size {size}",
                index=found.index,
                hint="run 'securexport ledger verify'",
            )
        return Receipt(found.index, tuple(proof), checkpoint[1])

    def prove(self, export_id: str) -> Receipt:
        """A fresh receipt for ``export_id`` against the latest checkpoint."""
        store = self._store
        with store.read_transaction():
            found = store.entry_by_export_id(export_id)
            latest = store.latest_checkpoint()
            if found is None or latest is None:
                raise VerificationError(f"export {export_id} is not in the ledger")
            size, note = latest
            checkpoint = Checkpoint.parse(note[: note.rfind("\n\n") + 1])
            proof = merkle.inclusion_proof(_StoreNodes(store), found.index, size)
        if not merkle.verify_inclusion(
            merkle.leaf_hash(found.leaf), found.index, size, proof, checkpoint.root_hash
        ):
            raise LedgerVerificationError(
                f"entry {found.index} does not match the latest checkpoint",
                index=found.index,
                hint="run 'securexport ledger verify'",
            )
        return Receipt(found.index, tuple(proof), note)

    def verify_all(
        self,
        verifier_key: str,
        *,
        check_entry: Callable[[Entry], None] | None = None,
    ) -> VerifyReport:
        """Recompute the whole tree from the leaves and check everything against it.

        Checks, in log order: indexes have no gaps; each stored leaf hash and node matches the
        recomputed one; every checkpoint is signed by ``verifier_key`` (whose name must be the
        origin), names this origin, and has the recomputed root at its size; run numbers of each
        approval count 1, 2, 3, …; the last checkpoint covers every entry; ``check_entry`` (the
        caller's per-entry checks: manifest signature, approval policy, that the indexed columns
        match the manifest) passes.  The first failure raises :class:`LedgerVerificationError`
        naming the entry's index.
        """
        store = self._store
        with store.read_transaction():
            return self._verify_locked(store, verifier_key, check_entry)

    def _verify_locked(
        self,
        store: SqliteStore,
        verifier_key: str,
        check_entry: Callable[[Entry], None] | None,
    ) -> VerifyReport:
        # Streams entries and checkpoints side by side: memory stays O(log n + approvals).
        compact = merkle.CompactRange()
        runs: dict[str, int] = {}
        latest_note: str | None = None
        latest_size = -1
        checked = checkpoints_checked = 0
        new_nodes: list[tuple[int, int, bytes]] = []

        def collect(level: int, idx: int, h: bytes) -> None:
            new_nodes.append((level, idx, h))

        def fail(index: int | None, message: str) -> LedgerVerificationError:
            where = f"entry {index}: " if index is not None else ""
            return LedgerVerificationError(
                f"ledger verification failed at {where}{message}", index=index
            )

        def check_checkpoint(size: int, stored_root: bytes, note: str) -> None:
            index = size - 1 if size else None
            try:
                opened = open_note(note, [verifier_key])
                checkpoint = Checkpoint.parse(opened.text)
            except VerificationError as exc:
                raise fail(index, f"the checkpoint at size {size} does not verify ({exc})") from exc
            if checkpoint.origin != self.origin or checkpoint.origin not in opened.verified_by:
                raise fail(index, f"the checkpoint at size {size} is for another log")
            if checkpoint.size != size or checkpoint.root_hash != stored_root:
                raise fail(index, f"the checkpoint at size {size} was altered")
            if stored_root != compact.root():
                raise fail(index, f"the tree no longer matches the checkpoint at size {size}")

        pending = store.checkpoints()
        next_cp = next(pending, None)

        def consume_checkpoints() -> None:
            nonlocal next_cp, latest_note, latest_size, checkpoints_checked
            while next_cp is not None and next_cp[0] == compact.size:
                check_checkpoint(*next_cp)
                latest_size, latest_note = next_cp[0], next_cp[2]
                checkpoints_checked += 1
                next_cp = next(pending, None)

        consume_checkpoints()  # a checkpoint of the empty tree, if any
        for entry in store.entries(0, None):
            index = compact.size
            if entry.index != index:
                raise fail(index, "missing (the entries have a gap)")
            recomputed = merkle.leaf_hash(entry.leaf)
            if entry.leaf_hash != recomputed:
                raise fail(index, "the manifest bytes do not match their logged hash")
            new_nodes.clear()
            compact.append(recomputed, on_node=collect)
            for level, idx, h in new_nodes:
                if store.node(level, idx) != h:
                    raise fail(index, f"the node table disagrees with the leaves at {level}/{idx}")
            if entry.kind == KIND_EXPORT:
                expected_run = runs.get(entry.approval_sha256, 0) + 1
                if entry.run != expected_run:
                    raise fail(
                        index,
                        f"run {entry.run} of approval {entry.approval_id} "
                        f"should be run {expected_run}",
                    )
                runs[entry.approval_sha256] = expected_run
            consume_checkpoints()
            if check_entry is not None:
                try:
                    check_entry(entry)
                except SecurexportError as exc:
                    raise fail(index, exc.message) from exc
            checked += 1
        size = compact.size
        if next_cp is not None:
            raise fail(
                size,
                f"missing (a checkpoint covers {next_cp[0]} entries, only {size} are present)",
            )
        if size and latest_size != size:
            raise fail(size - 1, "not covered by any signed checkpoint")
        if store.count_nodes() != 2 * size - size.bit_count():
            raise fail(None, "the node table holds nodes that no entry explains")
        if store.tree_state() != compact:
            raise fail(None, "the stored tree state does not match the entries")
        return VerifyReport(
            size=size,
            root_hash=compact.root(),
            origin=self.origin,
            entries_checked=checked,
            checkpoints_checked=checkpoints_checked,
            latest_checkpoint=latest_note,
        )


def open_ledger(home_ledger_path: Path, url: str | None, *, origin: str | None = None) -> Ledger:
    """The installation's export register: the team ledger at ``url`` when one is configured
    (``--ledger URL`` or ``[ledger] url`` in config.toml), else ``ledger.db`` in the home."""
    return Ledger.open(url if url else home_ledger_path, origin=origin)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if unknown): tells pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def writer_record() -> bytes:
    """This process, as recorded beside the entry it commits (:data:`WRITER`)."""
    pid = os.getpid()
    record = {
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "pid": pid,
        "start": _start_time(pid),
    }
    return json.dumps(record, sort_keys=True).encode()


BUNDLE_STATES = ("written", "missing", "in-progress", "unconfirmed")


@dataclass(frozen=True)
class BundleState:
    index: int
    run: int
    export_id: str
    state: str  # one of BUNDLE_STATES


def _bundle_state(outcome: Any, writer: Any) -> str:
    if outcome is not None:
        with contextlib.suppress(ValueError, TypeError):
            status = json.loads(bytes(outcome)).get("status")
            if status in ("written", "failed"):
                return "written" if status == "written" else "missing"
    try:
        record = json.loads(bytes(writer)) if writer is not None else None
        if not isinstance(record, dict):
            return "unconfirmed"  # logged before bundle status was recorded
        if record.get("host") != socket.gethostname() or record.get("boot_id") != _boot_id():
            return "unconfirmed"  # another machine, or before a reboot: cannot tell here
        pid = int(record["pid"])
    except (ValueError, KeyError, TypeError):
        return "unconfirmed"
    if not record.get("start"):
        return "unconfirmed"  # no /proc here: a live process cannot be told from a dead one
    return "in-progress" if _start_time(pid) == record["start"] else "missing"
