"""The export (DESIGN.md §8.3): an approved, minimised, encrypted, signed and logged bundle.

:func:`export` is an orchestrator of named steps, in the order the design fixes and the crash
tests check (the stage names are ``Environment.on_stage``'s):

    authorise → check the source → read (one snapshot) → [after-count] → write payload.zip
    → [after-payload] → seal and sign the manifest → [after-manifest-sign] → log
    ([ledger-before-commit], [after-ledger-commit]) → assemble the bundle → [before-rename]
    → rename

Nothing that looks valid is left behind on failure: the payload and the bundle are written as
locked ``.partial`` files and renamed only at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from securexport import __version__
from securexport._crypto import agefile, sshsig
from securexport._crypto.ed25519 import SigningKey
from securexport.api.approvals import load_for_run
from securexport.bundle.container import (
    APPROVAL,
    APPROVAL_SIG,
    KEY_FILE,
    MANIFEST,
    MANIFEST_SIG,
    PAYLOAD,
    README,
    RECEIPT,
    FileRecord,
    PayloadWriter,
    new_payload_password,
    readme_text,
    write_bundle,
)
from securexport.data import parallel, pipeline, transforms
from securexport.data.entities import ENTITIES, EntityCollector
from securexport.data.source import BuiltQuery, Snapshot, Source, database_role, open_source
from securexport.data.spool import scratch_directory
from securexport.environment import Environment
from securexport.errors import (
    FileError,
    KeyUnavailableError,
    PolicyError,
    SecurexportError,
    UsageError,
)
from securexport.fsutil import fsync_file, partial_output, scratch_partial
from securexport.home.keystore import BackgroundUnlock, KeyStore, PublicIdentity, open_keystore
from securexport.home.ledger import open_ledger
from securexport.home.revocations import load_revocations
from securexport.ledger.log import Ledger, writer_record
from securexport.ledger.receipt import Receipt
from securexport.ledger.store import WRITER
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy import authorise
from securexport.policy.approval import Approval, transform_version
from securexport.policy.manifest import SCHEMA as MANIFEST_SCHEMA
from securexport.policy.manifest import canonical_bytes
from securexport.policy.times import rfc3339


@dataclass(frozen=True)
class ExportResult:
    bundle: Path
    export_id: str
    run: int
    rows_written: int
    matching_rows: int
    suppressed_rows: int
    k_achieved: int | None
    payload_sha256: str
    ledger_index: int
    manifest: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "export_id": self.export_id,
            "run": self.run,
            "rows_written": self.rows_written,
            "matching_rows": self.matching_rows,
            "suppressed_rows": self.suppressed_rows,
            "k_achieved": self.k_achieved,
            "payload_sha256": self.payload_sha256,
            "ledger_index": self.ledger_index,
        }


# ---------------------------------------------------------------------------------------------
# The parts of one export, as the steps hand them on


@dataclass(frozen=True)
class _Job:
    """An authorised run: the signed approval, who runs it, when, and where it goes."""

    signed: authorise.SignedApproval
    approval_raw: bytes
    approval_sig: bytes
    store: KeyStore
    me: PublicIdentity
    now: datetime
    output: Path

    @property
    def approval(self) -> Approval:
        return self.signed.approval

    @property
    def run_date(self) -> date:
        return self.now.astimezone(UTC).date()


@dataclass(frozen=True)
class _SourceFacts:
    """What the manifest records of the database the rows came from."""

    driver: str
    dsn_fingerprint: str
    role: str | None
    schema_sha256: str
    database_id: str | None
    live: dict[str, str]  # column name → type, of the approved dataset


@dataclass(frozen=True)
class _Payload:
    """payload.zip as written, and the key file that opens it."""

    path: Path
    files: Sequence[FileRecord]
    rows: int
    sha256: str
    size: int
    key_file: bytes


# ---------------------------------------------------------------------------------------------
# The orchestrator


def export(
    env: Environment,
    approval_path: Path,
    source_url: str,
    as_name: str,
    output: Path,
    limits: Limits = DEFAULT_LIMITS,
    *,
    parallel_min_rows: int | None = None,
) -> ExportResult:
    """Run an approved export into a bundle (DESIGN.md §8.3 order; see the module docstring).

    ``parallel_min_rows``: tables with at least this many rows are read by two processes
    (securexport.data.parallel; default ``parallel.MIN_ROWS``).
    """
    job = _authorise(env, approval_path, as_name, output, limits)
    approval = job.approval
    # Breach response: who was exported, sealed to the data owner (securexport.data.entities).
    people = EntityCollector() if approval.owner is not None else None
    with open_ledger(env) as ledger:
        run = authorise.next_run(approval, ledger.runs_used(approval.sha256))
        _report_missing_bundles(env, ledger, approval)
        pseudonym_key, signing_keys = _unlock_keys(job, as_name)
        ctx = transforms.RunContext(
            run_date=job.run_date, pseudonym_key=pseudonym_key, pseudonym_domain=approval.domain
        )
        with contextlib.ExitStack() as stack, signing_keys, open_source(source_url) as source:
            facts = _check_source(source, source_url, approval)
            compiled = pipeline.prepare(approval, facts.live, job.run_date, ctx)
            with source.snapshot() as snapshot:
                read = _read(
                    env, job, source, snapshot, compiled, facts, people, signing_keys, limits,
                    parallel_min_rows,
                )  # fmt: skip
                stack.callback(read.close)
                signing_key, ledger_key = signing_keys.result()
                pipeline.check_counts(approval, read.counts)
                env.on_stage("after-count")
                manifest, receipt, payload = _write_logged_bundle(
                    env, job, ledger, run, facts, compiled, read, people, signing_key, ledger_key
                )
    counts, outcome = read.counts, read.counts.outcome
    return ExportResult(
        bundle=output,
        export_id=manifest["export_id"],
        run=manifest["approval"]["run"],
        rows_written=payload.rows,
        matching_rows=counts.matching,
        suppressed_rows=outcome.suppressed_rows if outcome else counts.invalid_suppressed,
        k_achieved=outcome.k_achieved if outcome else None,
        payload_sha256=payload.sha256,
        ledger_index=receipt.index,
        manifest=manifest,
    )


# ---------------------------------------------------------------------------------------------
# The steps


def _authorise(
    env: Environment, approval_path: Path, as_name: str, output: Path, limits: Limits
) -> _Job:
    """The approval is signed by a trusted approver, valid now, names this exporter, and
    nothing it names is revoked; the output name is free."""
    signed, approval_raw, approval_sig = load_for_run(env, approval_path, limits)
    approval = signed.approval
    now = env.now()
    authorise.check_window(approval, now)
    store = open_keystore(env)
    me = store.public_identity(as_name)
    authorise.require_exporter(approval, me.signing_key, as_name)
    load_revocations(env.home).check(
        approval,
        exporter=me.signing_key,
        recipients=[p.age for p in (*approval.recipients, *approval.auditors)],
        error=PolicyError,
    )
    if str(output) == "-":  # a bundle is written in place (its ZIP is sealed at the end)
        raise UsageError(
            "a bundle is written to a file, not to standard output",
            hint="give a file name: export APPROVAL --source URL --as NAME -o FILE.sxb",
        )
    if output.exists() or output.is_symlink():
        raise FileError(f"{output} exists already", hint="choose a new output name")
    return _Job(signed, approval_raw, approval_sig, store, me, now, output)


def _unlock_keys(
    job: _Job, as_name: str
) -> tuple[bytes | None, BackgroundUnlock[tuple[SigningKey, SigningKey]]]:
    """The pseudonym key now, checked against the approval; the signing and ledger keys on a
    thread started once the read's worker is forked (see :func:`_read`)."""
    approval, store = job.approval, job.store
    pseudonym_key: bytes | None = None
    if approval.pseudonym_key_id is not None:
        pseudonym_key = store.pseudonym_key(approval.pseudonym_key_id)
        if transforms.key_check(pseudonym_key) != approval.pseudonym_key_check:
            raise KeyUnavailableError(
                f"pseudonym key {approval.pseudonym_key_id!r} does not match the approval's key_check",
                hint="import the key the data owner sent for this approval",
            )
    # The first key unlocks before a row is read (a wrong passphrase fails early); the others
    # unlock on another thread while the rows are read (scrypt, ~0.8 s each for key files,
    # releases the GIL).  The store is not used again until they are done.
    if pseudonym_key is None:
        store.signing_key(as_name)
    signing_keys = store.unlock_in_background(
        lambda: (store.signing_key(as_name), store.ledger_signing_key()), start=False
    )
    return pseudonym_key, signing_keys


def _check_source(source: Source, source_url: str, approval: Approval) -> _SourceFacts:
    """The source is the database the approval names, with the schema it was approved on."""
    live = source.table_columns(approval.dataset)
    schema_fp = source.schema_fingerprint(approval.dataset)
    if approval.schema_sha256 and approval.schema_sha256 != schema_fp:
        raise PolicyError(
            f"schema drift: the live schema of {approval.dataset!r} does not match the "
            "approval's schema_sha256",
        )
    database_id = source.database_id()
    if approval.database_id is not None and approval.database_id != database_id:
        raise PolicyError("the source is not the database the approval names (database_id differs)")
    return _SourceFacts(
        driver=source.driver,
        dsn_fingerprint=source.dsn_fingerprint,
        role=database_role(source_url),
        schema_sha256=schema_fp,
        database_id=database_id,
        live=live,
    )


def _read(
    env: Environment,
    job: _Job,
    source: Source,
    snapshot: Snapshot,
    compiled: pipeline.CompiledPlan,
    facts: _SourceFacts,
    people: EntityCollector | None,
    signing_keys: BackgroundUnlock[tuple[SigningKey, SigningKey]],
    limits: Limits,
    parallel_min_rows: int | None,
) -> pipeline.ReadResult:
    """One read of the source, in two processes when that pays: rows are transformed, counted
    and sealed into encrypted spools; only then is it known which classes are too small."""
    reading = parallel.start(
        source,
        snapshot,
        compiled,
        facts.live,
        job.run_date,
        scratch_directory(job.output),
        collector=people,
        max_cell_chars=limits.max_cell_bytes,
        min_rows=parallel.MIN_ROWS if parallel_min_rows is None else parallel_min_rows,
    )
    try:
        # The key thread starts only now that the worker process is forked.
        signing_keys.start()
        # The matching rows are counted while they are read (one scan, no COUNT first), so
        # the reading bar has no total; the writing bar's is exact (the rows spooled).
        with _progress(env, None, "reading") as bar:
            return reading.finish(bar)
    except BaseException:
        reading.abandon()  # the worker must not outlive a failed export
        raise


def _write_logged_bundle(
    env: Environment,
    job: _Job,
    ledger: Ledger,
    run: int,
    facts: _SourceFacts,
    compiled: pipeline.CompiledPlan,
    read: pipeline.ReadResult,
    people: EntityCollector | None,
    signing_key: SigningKey,
    ledger_key: SigningKey,
) -> tuple[dict[str, Any], Receipt, _Payload]:
    """payload.zip, the signed manifest, the ledger entry and the bundle, each durable before
    the next begins; an entry committed for a bundle that never appears is said so."""
    approval, output = job.approval, job.output
    manifest: dict[str, Any] = {}
    committed: int | None = None  # the ledger index, once committed
    try:
        with partial_output(output, notice=env.notice) as bundle_partial:
            # The bundle's partial is locked first, so a payload partial that is not locked is
            # a killed run's leftover (clear_stale_partial).
            payload_path = output.with_name(output.name + ".payload.partial")
            with scratch_partial(payload_path, env.notice) as fd:
                payload = _write_payload(env, job, fd, payload_path, compiled, read, people)
                manifest = _manifest(job, run, facts, compiled.query, read.counts, payload)
                attachments = _attachments(job, manifest, people)
                sign = _ManifestSigner(manifest, signing_key)
                manifest_bytes, manifest_sig = sign(run)
                env.on_stage("after-manifest-sign")
                # A concurrent export of this approval may take our run number first: the
                # manifest is then re-signed for the next free run, inside the ledger's
                # transaction (max_runs still holds).
                receipt = ledger.append_export(
                    manifest_bytes,
                    manifest_sig,
                    export_id=manifest["export_id"],
                    approval_id=approval.id,
                    approval_sha256=approval.sha256,
                    run=run,
                    max_runs=approval.max_runs,
                    signer=ledger_key,
                    now=job.now,
                    attachments=attachments,
                    renumber=sign,
                    before_commit=lambda: env.on_stage("ledger-before-commit"),
                )
                committed = receipt.index
                env.on_stage("after-ledger-commit")
                manifest_bytes, manifest_sig = sign.last
                _assemble(job, bundle_partial, payload, manifest_bytes, manifest_sig, receipt)
                env.on_stage("before-rename")
    except BaseException:
        if committed is not None:
            with contextlib.suppress(Exception):
                ledger.record_bundle_outcome(manifest["export_id"], False, env.now())
            env.warn(
                f"ledger entry {committed} (run {manifest['approval']['run']} of approval "
                f"{approval.id}) was committed, but its bundle was not written: `securexport "
                "ledger list` shows it as missing, and the run stays used"
            )
        raise
    try:
        ledger.record_bundle_outcome(manifest["export_id"], True, env.now())
    except FileError:
        env.warn(
            "the bundle was written, but the ledger could not record that: "
            "`securexport ledger list` shows it as unconfirmed"
        )
    return manifest, receipt, payload


def _write_payload(
    env: Environment,
    job: _Job,
    fd: int,
    path: Path,
    compiled: pipeline.CompiledPlan,
    read: pipeline.ReadResult,
    people: EntityCollector | None,
) -> _Payload:
    """Replay the spooled rows into ``payload.zip`` (one AES-256 entry) on ``fd``, fsync it, and
    wrap its password for the approval's recipients and auditors."""
    approval = job.approval
    password = new_payload_password()
    ext = "csv" if approval.output_format == "csv" else "jsonl"
    with os.fdopen(fd, "w+b") as payload_fh:
        writer = PayloadWriter(payload_fh, password)
        with writer:
            entry = writer.open_entry(f"data/{approval.dataset}.{ext}")
            with _progress(env, read.spooled_rows, "writing") as bar:
                written = pipeline.replay(compiled, read, entry, bar, collector=people)
            entry.close()
        files = writer.close()
        payload_fh.flush()
        fsync_file(payload_fh.fileno(), path)
    if written != pipeline.written_rows(read.counts):  # a defect, never a user error
        raise SecurexportError(
            "internal error: the rows written differ from the rows counted; nothing was exported"
        )
    env.on_stage("after-payload")
    sha256, size = _sha256_file(path)
    parties = [*approval.recipients, *approval.auditors]
    key_file = agefile.encrypt(password.encode("ascii"), [p.age for p in parties])
    del password
    return _Payload(path, files, written, sha256, size, key_file)


def _attachments(
    job: _Job, manifest: dict[str, Any], people: EntityCollector | None
) -> dict[str, bytes]:
    """What the ledger stores beside the entry: the approval, its signature, the sealed entity
    list (whose size and digest the manifest then records) and this process."""
    approval = job.approval
    attachments = {APPROVAL: job.approval_raw, APPROVAL_SIG: job.approval_sig}
    if people is not None and approval.owner is not None:
        manifest["records"]["entities"] = len(people)
        manifest["records"]["entity_set_sha256"] = people.digest()
        attachments[ENTITIES] = people.sealed(approval.owner.age)
    attachments[WRITER] = writer_record()
    return attachments


class _ManifestSigner:
    """Signs the manifest for a run number; the ledger calls it again to renumber."""

    def __init__(self, manifest: dict[str, Any], key: SigningKey) -> None:
        self._manifest = manifest
        self._key = key
        self.last = (b"", b"")

    def __call__(self, run: int) -> tuple[bytes, bytes]:
        self._manifest["approval"]["run"] = run
        raw = canonical_bytes(self._manifest)
        self.last = (raw, sshsig.sign(self._key, raw, sshsig.NAMESPACE_MANIFEST))
        return self.last


def _assemble(
    job: _Job,
    bundle_partial: Path,
    payload: _Payload,
    manifest_bytes: bytes,
    manifest_sig: bytes,
    receipt: Receipt,
) -> None:
    """The outer ZIP, in MEMBER_ORDER, into the locked bundle partial."""
    approval = job.approval
    readme = readme_text(
        dataset=approval.dataset,
        exporter=job.me.name,
        recipients=[p.name for p in (*approval.recipients, *approval.auditors)],
    )
    with open(bundle_partial, "r+b") as out_fh:
        write_bundle(
            out_fh,
            [
                (PAYLOAD, payload.path),
                (KEY_FILE, payload.key_file),
                (MANIFEST, manifest_bytes),
                (MANIFEST_SIG, manifest_sig),
                (APPROVAL, job.approval_raw),
                (APPROVAL_SIG, job.approval_sig),
                (RECEIPT, receipt.to_bytes()),
                (README, readme.encode("utf-8")),
            ],
        )


def _report_missing_bundles(env: Environment, ledger: Ledger, approval: Approval) -> None:
    """Say which earlier runs of this approval were logged but never got their bundle."""
    for item in ledger.bundle_states(approval.sha256):
        if item.state == "missing":
            env.warn(
                f"run {item.run} of approval {approval.id} (ledger entry {item.index}, export "
                f"{item.export_id}) has no bundle: that export was interrupted after its ledger "
                "entry was committed; the run stays used"
            )


@contextlib.contextmanager
def _progress(env: Environment, total: int | None, desc: str) -> Iterator[Any]:
    if not env.stderr_isatty or not env.progress:
        yield None
        return
    from tqdm import tqdm  # only on a terminal: tqdm costs start-up time

    # A terminal that reports no size (a pty nobody sized: CI, `script`) would get no bar at
    # all: tqdm draws nothing in 0 columns, and hides bars below a screen of 0 lines.
    try:
        size = os.get_terminal_size(env.stderr.fileno())
        width, height = size.columns, size.lines
    except (OSError, ValueError):
        width = height = 0
    bar = tqdm(
        total=total,
        desc=desc,
        unit="rows",
        file=env.stderr,
        leave=False,
        ncols=None if width else 80,
        nrows=None if height else 24,
        colour=None,  # never coloured (NO_COLOR holds trivially): only \r and cursor moves
    )
    try:
        yield bar
    finally:
        bar.close()


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# ---------------------------------------------------------------------------------------------
# The manifest, from its parts


def _manifest(
    job: _Job,
    run: int,
    facts: _SourceFacts,
    query: BuiltQuery,
    counts: pipeline.Counts,
    payload: _Payload,
) -> dict[str, Any]:
    """The manifest document (DESIGN.md §4, docs/formats.md), before canonical encoding."""
    approval, signed, me = job.approval, job.signed, job.me
    used_sources = set(approval.source_columns)
    return {
        "schema": MANIFEST_SCHEMA,
        "export_id": str(uuid.uuid4()),
        "created_at": rfc3339(job.now),
        "run_date": job.run_date.isoformat(),
        "tool": {"name": "securexport", "version": __version__},
        "operator": {
            "name": me.name,
            "key_fingerprint": me.signing_key.fingerprint(),
            "ssh": me.signing_key.to_line(),
            "host": socket.gethostname(),
        },
        "approval": {
            "id": approval.id,
            "sha256": approval.sha256,
            "signer": signed.signer_name,
            "signer_fingerprint": signed.signer.fingerprint(),
            "not_before": rfc3339(approval.not_before),
            "expires": rfc3339(approval.expires),
            "run": run,
            "limits": _limits_part(approval),
        },
        "source": {
            "driver": facts.driver,
            "dsn_fingerprint": facts.dsn_fingerprint,
            "role": facts.role,
            "dataset": approval.dataset,
            "entity": approval.entity,
            "schema_sha256": facts.schema_sha256,
            "database_id": facts.database_id,
        },
        "query": {"sql": query.sql, "params": {k: _json_param(v) for k, v in query.params.items()}},
        "columns": _columns_part(approval),
        "dropped_columns": [c for c in facts.live if c not in used_sources],
        "records": _records_part(approval, counts, payload.rows),
        "format": approval.output_format,
        "files": [
            {"path": f.path, "bytes": f.bytes, "rows": f.rows, "hmac_sha256": f.hmac_sha256}
            for f in payload.files
        ],
        "payload": {
            "sha256": payload.sha256,
            "bytes": payload.size,
            "encryption": "zip-winzip-aes256-ae2",
        },
        "key_file": {
            "sha256": hashlib.sha256(payload.key_file).hexdigest(),
            "format": "age-v1-x25519",
        },
        "recipients": [{"name": p.name, "age": p.age} for p in approval.recipients],
        "auditors": [{"name": p.name, "age": p.age} for p in approval.auditors],
        "conditions": dict(approval.conditions),
    }


def _records_part(approval: Approval, counts: pipeline.Counts, written: int) -> dict[str, Any]:
    outcome = counts.outcome
    records: dict[str, Any] = {
        "matching": counts.matching,
        "invalid_suppressed": counts.invalid_suppressed,
        "suppressed": outcome.suppressed_rows if outcome else counts.invalid_suppressed,
        "written": written,
    }
    if outcome is not None and approval.privacy is not None:
        records["k"] = approval.privacy.k
        records["k_achieved"] = outcome.k_achieved
        records["class_sizes"] = {str(s): n for s, n in sorted(outcome.histogram.items())}
        records["class_sizes_written"] = {
            str(s): n for s, n in sorted(outcome.histogram_after.items())
        }
        records["suppressed_classes"] = outcome.suppressed_classes
        records["suppressed_fraction"] = str(outcome.suppressed_fraction)
    return records


def _columns_part(approval: Approval) -> list[dict[str, Any]]:
    columns = []
    for col in approval.columns:
        item: dict[str, Any] = {
            "name": col.name,
            "source": col.source,
            "transform": transform_version(col),
            "on_invalid": col.on_invalid,
        }
        if col.role:
            item["role"] = col.role
        if col.justification:
            item["justification"] = col.justification
        columns.append(item)
    return columns


def _limits_part(approval: Approval) -> dict[str, Any]:
    limits: dict[str, Any] = {"row_cap": approval.row_cap, "min_rows": approval.min_rows}
    if approval.max_runs is not None:
        limits["max_runs"] = approval.max_runs
    if approval.privacy is not None:
        limits["k"] = approval.privacy.k
        limits["on_violation"] = approval.privacy.on_violation
        limits["max_suppressed_fraction"] = str(approval.privacy.max_suppressed_fraction)
    return limits


def _json_param(value: object) -> object:
    """A bound SQL parameter as it is recorded in the manifest (no floats)."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_json_param(v) for v in value]
    return str(value)
