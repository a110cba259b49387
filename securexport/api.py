"""The recipes users and the CLI call: approvals, plan, export, inspect, verify, decrypt, ledger.

Typed and usable from Python without click.  Each function takes an :class:`Environment` (clock,
streams, home, passphrase source) and returns a result object; the CLI only renders it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from securexport import __version__, policy, transforms
from securexport._crypto import agefile, sshsig
from securexport._crypto.sshkey import InvalidKeyError
from securexport._testhooks import crash_point
from securexport._testhooks import scrypt_log_n as test_scrypt_log_n
from securexport.approval import Approval, RelativeDate, approval_template, parse_approval
from securexport.environment import Environment
from securexport.errors import (
    FileError,
    KeyUnavailableError,
    PolicyError,
    SecurexportError,
    UsageError,
    VerificationError,
)
from securexport.fsutil import (
    atomic_write,
    claim_partial_dir,
    fsync_dir,
    fsync_file,
    os_error_message,
    partial_output,
    release_partial_dir,
    scratch_partial,
)
from securexport.keys import KeyStore
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.manifest import SCHEMA as MANIFEST_SCHEMA
from securexport.manifest import Manifest, canonical_bytes, parse_manifest
from securexport.revocation import Revocations
from securexport.trust import TrustStore

# Modules only some commands need are imported where they are used, so that `approval plan`,
# `keys` and `--version` start quickly (issue 5: start-up counts in every figure).
if TYPE_CHECKING:
    from securexport import pipeline
    from securexport.bundle import OpenedBundle
    from securexport.source import BuiltQuery

ProgressFactory = Callable[[int, str], Any]


# ---------------------------------------------------------------------------------------------
# helpers


def _read_file(path: Path, limit: int, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise FileError(f"{what} {path} is larger than the limit ({limit} bytes)")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise FileError(f"{what} {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise FileError(f"{what} {path} is a directory") from exc
    except OSError as exc:
        raise FileError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _signature_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_param(value: object) -> object:
    """A bound SQL parameter as it is recorded in the manifest (no floats)."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_json_param(v) for v in value]
    return str(value)


def _trust(env: Environment) -> TrustStore:
    return TrustStore(env.home)


def _approver_lookup(store: TrustStore) -> Callable[[Any], str | None]:
    def lookup(key: Any) -> str | None:
        found = store.approver_for(key)
        return found.name if found else None

    return lookup


def _keystore(env: Environment) -> KeyStore:
    """The key store; new key files always cost scrypt 2^18 (DESIGN.md §9, docs/formats.md)."""
    _refuse_kdf_setting(env)
    return KeyStore(env, scrypt_log_n=test_scrypt_log_n(DEFAULT_LIMITS.max_scrypt_log_n))


def _refuse_kdf_setting(env: Environment) -> None:
    """An old config.toml may still try to lower the key-file cost: say so, don't ignore it."""
    import tomllib

    try:
        data = tomllib.loads(env.home.config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read {env.home.config_path}: {exc}") from exc
    if "scrypt_log_n" in data.get("keys", {}):
        raise UsageError(
            f"{env.home.config_path}: [keys] scrypt_log_n is not a setting: key files always "
            "use scrypt with work factor 2^18",
            hint="remove the line",
        )


# ---------------------------------------------------------------------------------------------
# approvals


def init_approval() -> str:
    """A commented approval template to fill in."""
    return approval_template()


@dataclass(frozen=True)
class ApprovalCheck:
    approval: Approval
    signed: bool
    signer: str | None
    window: str  # "valid", "not yet valid", "expired"
    problems: tuple[str, ...]


def check_approval(path: Path, env: Environment, limits: Limits = DEFAULT_LIMITS) -> ApprovalCheck:
    """Parse strictly; report signature and validity without refusing on them."""
    raw = _read_file(path, limits.max_approval_bytes, "approval")
    approval = parse_approval(raw, limits=limits, filename=path.name)
    problems: list[str] = []
    signer: str | None = None
    sig_path = _signature_path(path)
    signed = sig_path.exists()
    if signed:
        try:
            sig = _read_file(sig_path, limits.max_signature_bytes, "signature")
            signer = policy.load_signed_approval(
                raw, sig, _approver_lookup(_trust(env)), limits
            ).signer_name
        except SecurexportError as exc:
            problems.append(exc.message)
    else:
        problems.append("not signed")
    now = env.now()
    window = "valid"
    if now < approval.not_before:
        window = "not yet valid"
    elif now > approval.expires:
        window = "expired"
    if window != "valid":
        problems.append(f"validity window: {window}")
    return ApprovalCheck(approval, signed, signer, window, tuple(problems))


def sign_approval(
    path: Path, as_name: str, env: Environment, limits: Limits = DEFAULT_LIMITS
) -> Path:
    """Parse strictly, warn if the window is over, write the detached SSHSIG to FILE.sig."""
    raw = _read_file(path, limits.max_approval_bytes, "approval")
    approval = parse_approval(raw, limits=limits, filename=path.name)
    key = _keystore(env).signing_key(as_name)  # a missing key is the one error, alone
    if env.now() > approval.expires:
        env.warn(f"approval {approval.id} has already expired; signing it anyway")
    signature = sshsig.sign(key, raw, sshsig.NAMESPACE_APPROVAL)
    sig_path = _signature_path(path)
    atomic_write(sig_path, signature, mode=0o644)
    return sig_path


def _load_for_run(
    approval_path: Path, env: Environment, limits: Limits
) -> tuple[policy.SignedApproval, bytes, bytes]:
    raw = _read_file(approval_path, limits.max_approval_bytes, "approval")
    sig_path = _signature_path(approval_path)
    sig = (
        _read_file(sig_path, limits.max_signature_bytes, "signature") if sig_path.exists() else None
    )
    signed = policy.load_signed_approval(
        raw, sig, _approver_lookup(_trust(env)), limits, filename=approval_path.name
    )
    assert sig is not None
    return signed, raw, sig


# ---------------------------------------------------------------------------------------------
# the data path shared by plan and export


def _plan_warnings(approval: Approval) -> list[str]:
    warnings: list[str] = []
    qis = set(approval.privacy.quasi_identifiers) if approval.privacy else set()
    for col in approval.columns:
        if (
            col.name not in qis
            and col.role != "sensitive"
            and col.transform not in ("null", "constant")
        ):
            warnings.append(
                f'column {col.name!r} is neither a quasi-identifier nor marked role = "sensitive"'
            )
    identifying = {approval.entity} | {
        c.source
        for c in approval.columns
        if c.role in ("identifier", "direct_identifier") or c.transform == "pseudonym"
    }
    for flt in approval.filters:
        if (
            flt.column in identifying
            and flt.value is not None
            and not isinstance(flt.value, RelativeDate)
        ):
            warnings.append(
                f"filter on identifying column {flt.column!r} compares it with a literal value, "
                "which sits in the clear approval"
            )
    kept_text = [c.name for c in approval.columns if c.transform in ("keep", "mask", "map")]
    if kept_text and approval.output_format == "csv":
        warnings.append(
            f"columns {', '.join(kept_text)} are written as they are: a cell starting with =, +, - "
            "or @ is a spreadsheet formula to Excel; recipients must import the CSV as text"
        )
    days = (approval.expires - approval.not_before).days
    if days > 92:
        warnings.append(f"the approval is valid for {days} days (more than 92)")
    return warnings


@dataclass(frozen=True)
class PlanReport:
    approval_id: str
    approval_sha256: str
    signer: str
    run_date: date
    sql: str
    matching_rows: int
    row_cap: int
    invalid_suppressed_rows: int
    suppressed_rows: int
    written_rows: int
    min_rows: int
    k: int | None
    k_achieved: int | None
    histogram: dict[int, int]
    suppressed_classes: int
    suppressed_fraction: str | None
    verdict: str  # "ok" or the refusal message
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "approval": {
                "id": self.approval_id,
                "sha256": self.approval_sha256,
                "signer": self.signer,
            },
            "run_date": self.run_date.isoformat(),
            "query": self.sql,
            "records": {
                "matching": self.matching_rows,
                "row_cap": self.row_cap,
                "invalid_suppressed": self.invalid_suppressed_rows,
                "suppressed": self.suppressed_rows,
                "written": self.written_rows,
                "min_rows": self.min_rows,
            },
            "k": self.k,
            "k_achieved": self.k_achieved,
            "class_sizes": {str(size): n for size, n in sorted(self.histogram.items())},
            "suppressed_classes": self.suppressed_classes,
            "suppressed_fraction": self.suppressed_fraction,
            "verdict": self.verdict,
            "warnings": self.warnings,
        }


def plan(
    approval_path: Path,
    source_url: str,
    env: Environment,
    limits: Limits = DEFAULT_LIMITS,
    *,
    parallel_min_rows: int | None = None,
) -> PlanReport:
    """Show the data owner what an export would do, writing no data.

    Large tables are counted by two processes, as :func:`export` reads them.

    Needs no pseudonym key: class sizes do not change under a keyed one-to-one mapping, so a
    throwaway key stands in.  A refusal (row cap, k, min rows) is reported, not raised.
    """
    signed, _raw, _sig = _load_for_run(approval_path, env, limits)
    approval = signed.approval
    now = env.now()
    run_date = now.astimezone(UTC).date()
    ctx = transforms.RunContext(
        run_date=run_date, pseudonym_key=os.urandom(32), pseudonym_domain=approval.domain
    )
    from securexport import parallel, pipeline
    from securexport.source import open_source

    with open_source(source_url) as source:
        live = source.table_columns(approval.dataset)
        compiled = pipeline.prepare(approval, live, run_date, ctx)
        query = compiled.query
        verdict = "ok"
        counts = pipeline.Counts(0, 0, None)
        with source.snapshot() as snapshot:
            try:
                counting = parallel.start(
                    source,
                    snapshot,
                    compiled,
                    live,
                    run_date,
                    Path(os.curdir),  # no spool: counting writes nothing
                    max_cell_chars=limits.max_cell_bytes,
                    min_rows=parallel.MIN_ROWS if parallel_min_rows is None else parallel_min_rows,
                    counting=True,
                )
                try:
                    counts = counting.finish_count()
                finally:
                    counting.abandon()
                pipeline.check_counts(approval, counts)
            except PolicyError as exc:
                verdict = exc.message
    outcome = counts.outcome
    warnings = _plan_warnings(approval)
    if now > approval.expires or now < approval.not_before:
        warnings.append("the approval is outside its validity window now")
    return PlanReport(
        approval_id=approval.id,
        approval_sha256=approval.sha256,
        signer=signed.signer_name,
        run_date=run_date,
        sql=query.sql,
        matching_rows=counts.matching,
        row_cap=approval.row_cap,
        invalid_suppressed_rows=counts.invalid_suppressed,
        suppressed_rows=outcome.suppressed_rows - outcome.invalid_rows if outcome else 0,
        written_rows=pipeline.written_rows(counts),
        min_rows=approval.min_rows,
        k=approval.privacy.k if approval.privacy else None,
        k_achieved=outcome.k_achieved if outcome else None,
        histogram=dict(outcome.histogram) if outcome else {},
        suppressed_classes=outcome.suppressed_classes if outcome else 0,
        suppressed_fraction=str(outcome.suppressed_fraction) if outcome else None,
        verdict=verdict,
        warnings=warnings,
    )


# ---------------------------------------------------------------------------------------------
# export


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


@contextlib.contextmanager
def _progress(env: Environment, total: int, desc: str) -> Iterator[Any]:
    if not env.stderr_isatty:
        yield None
        return
    from tqdm import tqdm

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
    )
    try:
        yield bar
    finally:
        bar.close()


def _database_role(url: str) -> str | None:
    """The database role the export ran as (recorded so least privilege can be audited)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).username
    except ArgumentError:
        return None


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def export(
    approval_path: Path,
    source_url: str,
    as_name: str,
    output: Path,
    env: Environment,
    limits: Limits = DEFAULT_LIMITS,
    *,
    parallel_min_rows: int | None = None,
) -> ExportResult:
    """Run an approved export into a bundle (DESIGN.md §8.3 order).

    ``parallel_min_rows``: tables with at least this many rows are read by two processes
    (securexport.parallel; default ``parallel.MIN_ROWS``).

    check approval → read in one snapshot → payload.zip → key file → manifest → sign → ledger
    append → receipt → rename.  Nothing that looks valid is left behind on failure.
    """
    from securexport import breach
    from securexport import ledger as ledger_mod
    from securexport.bundle import (
        APPROVAL,
        APPROVAL_SIG,
        KEY_FILE,
        MANIFEST,
        MANIFEST_SIG,
        PAYLOAD,
        README,
        RECEIPT,
        new_payload_password,
        readme_text,
        write_bundle,
    )
    from securexport.register import ledger_target

    signed, approval_raw, approval_sig = _load_for_run(approval_path, env, limits)
    approval = signed.approval
    now = env.now()
    policy.check_window(approval, now)
    store = _keystore(env)
    me = store.public_identity(as_name)
    policy.require_exporter(approval, me.signing_key, as_name)
    Revocations.of(env.home).check(
        approval,
        exporter=me.signing_key,
        recipients=[p.age for p in (*approval.recipients, *approval.auditors)],
        error=PolicyError,
    )
    if output.exists() or output.is_symlink():
        raise FileError(f"{output} exists already", hint="choose a new output name")

    # Breach response: who was exported, sealed to the data owner (securexport.breach).
    people = breach.EntityCollector() if approval.owner is not None else None
    with ledger_mod.open_ledger(env.home.ledger_path, ledger_target(env)) as ledger:
        run = policy.next_run(approval, ledger.runs_used(approval.sha256))
        _report_missing_bundles(ledger, approval, env)

        pseudonym_key: bytes | None = None
        if approval.pseudonym_key_id is not None:
            pseudonym_key = store.pseudonym_key(approval.pseudonym_key_id)
            if transforms.key_check(pseudonym_key) != approval.pseudonym_key_check:
                raise KeyUnavailableError(
                    f"pseudonym key {approval.pseudonym_key_id!r} does not match the approval's key_check",
                    hint="import the key the data owner sent for this approval",
                )
        # The first key unlocks before a row is read (a wrong passphrase fails early); the
        # others unlock on another thread while the rows are read (scrypt, ~0.8 s each for
        # key files, releases the GIL).  The store is not used again until they are done.
        # The thread starts only once the read's worker process is forked (securexport.parallel).
        if pseudonym_key is None:
            store.signing_key(as_name)
        signing_keys = store.unlock_in_background(
            lambda: (store.signing_key(as_name), store.ledger_signing_key()), start=False
        )

        run_date = now.astimezone(UTC).date()
        ctx = transforms.RunContext(
            run_date=run_date, pseudonym_key=pseudonym_key, pseudonym_domain=approval.domain
        )
        from securexport import parallel, pipeline
        from securexport.source import open_source
        from securexport.spool import scratch_directory

        with contextlib.ExitStack() as stack, signing_keys, open_source(source_url) as source:
            live = source.table_columns(approval.dataset)
            schema_fp = source.schema_fingerprint(approval.dataset)
            if approval.schema_sha256 and approval.schema_sha256 != schema_fp:
                raise PolicyError(
                    f"schema drift: the live schema of {approval.dataset!r} does not match the "
                    "approval's schema_sha256",
                )
            database_id = source.database_id()
            if approval.database_id is not None and approval.database_id != database_id:
                raise PolicyError(
                    "the source is not the database the approval names (database_id differs)"
                )
            compiled = pipeline.prepare(approval, live, run_date, ctx)
            query = compiled.query
            with source.snapshot() as snapshot:
                # One read of the source, in two processes when that pays: rows are
                # transformed, counted and sealed into encrypted spools; only then is it
                # known which classes are too small.
                reading = parallel.start(
                    source,
                    snapshot,
                    compiled,
                    live,
                    run_date,
                    scratch_directory(output),
                    collector=people,
                    max_cell_chars=limits.max_cell_bytes,
                    min_rows=parallel.MIN_ROWS if parallel_min_rows is None else parallel_min_rows,
                )
                try:
                    signing_keys.start()
                    with _progress(env, approval.row_cap, "reading") as bar:
                        read = reading.finish(bar)
                except BaseException:
                    reading.abandon()  # the worker must not outlive a failed export
                    raise
                stack.callback(read.close)
                counts = read.counts
                signing_key, ledger_key = signing_keys.result()
                pipeline.check_counts(approval, counts)
                expected_written = pipeline.written_rows(counts)
                crash_point("after-count")

                committed: int | None = None  # the ledger index, once committed
                try:
                    with partial_output(output, notice=env.notice) as bundle_partial:
                        # The bundle's partial is locked first, so a payload partial that is not
                        # locked is a killed run's leftover (clear_stale_partial).
                        payload_path = output.with_name(output.name + ".payload.partial")
                        with scratch_partial(payload_path, env.notice) as fd:
                            password = new_payload_password()
                            files, written = _write_payload(
                                fd, payload_path, password, approval, compiled, read, env, people
                            )
                            if written != expected_written:  # a defect, never a user error
                                raise SecurexportError(
                                    "internal error: the rows written differ from the rows counted; "
                                    "nothing was exported"
                                )
                            crash_point("after-payload")
                            payload_sha256, payload_bytes = _sha256_file(payload_path)
                            parties = list(approval.recipients) + list(approval.auditors)
                            key_file = agefile.encrypt(
                                password.encode("ascii"), [p.age for p in parties]
                            )
                            del password
                            manifest = _build_manifest(
                                approval=approval,
                                signed=signed,
                                me=me,
                                now=now,
                                run=run,
                                run_date=run_date,
                                source_driver=source.driver,
                                dsn_fingerprint=source.dsn_fingerprint,
                                source_role=_database_role(source_url),
                                schema_fp=schema_fp,
                                database_id=database_id,
                                live_columns=list(live),
                                query=query,
                                counts=counts,
                                written=written,
                                files=files,
                                payload_sha256=payload_sha256,
                                payload_bytes=payload_bytes,
                                key_file=key_file,
                            )
                            attachments = {APPROVAL: approval_raw, APPROVAL_SIG: approval_sig}
                            if people is not None and approval.owner is not None:
                                manifest["records"]["entities"] = len(people)
                                manifest["records"]["entity_set_sha256"] = people.digest()
                                attachments[breach.ENTITIES] = people.sealed(approval.owner.age)
                            attachments[ledger_mod.WRITER] = ledger_mod.writer_record()

                            manifest_bytes, manifest_sig = b"", b""

                            def sign_manifest(for_run: int) -> tuple[bytes, bytes]:
                                nonlocal manifest_bytes, manifest_sig, run
                                run = manifest["approval"]["run"] = for_run
                                manifest_bytes = canonical_bytes(manifest)
                                manifest_sig = sshsig.sign(
                                    signing_key, manifest_bytes, sshsig.NAMESPACE_MANIFEST
                                )
                                return manifest_bytes, manifest_sig

                            manifest_bytes, manifest_sig = sign_manifest(run)
                            crash_point("after-manifest-sign")
                            # A concurrent export of this approval may take our run number first:
                            # the manifest is then re-signed for the next free run, inside the
                            # ledger's transaction (max_runs still holds).
                            receipt = ledger.append_export(
                                manifest_bytes,
                                manifest_sig,
                                export_id=manifest["export_id"],
                                approval_id=approval.id,
                                approval_sha256=approval.sha256,
                                run=run,
                                max_runs=approval.max_runs,
                                signer=ledger_key,
                                now=now,
                                attachments=attachments,
                                renumber=sign_manifest,
                            )
                            committed = receipt.index
                            crash_point("after-ledger-commit")
                            readme = readme_text(
                                dataset=approval.dataset,
                                exporter=me.name,
                                recipients=[p.name for p in parties],
                            )
                            with open(bundle_partial, "r+b") as out_fh:
                                write_bundle(
                                    out_fh,
                                    [
                                        (PAYLOAD, payload_path),
                                        (KEY_FILE, key_file),
                                        (MANIFEST, manifest_bytes),
                                        (MANIFEST_SIG, manifest_sig),
                                        (APPROVAL, approval_raw),
                                        (APPROVAL_SIG, approval_sig),
                                        (RECEIPT, receipt.to_bytes()),
                                        (README, readme.encode("utf-8")),
                                    ],
                                )
                            crash_point("before-rename")
                except BaseException:
                    if committed is not None:
                        with contextlib.suppress(Exception):
                            ledger.record_bundle_outcome(manifest["export_id"], False, env.now())
                        env.warn(
                            f"ledger entry {committed} (run {run} of approval {approval.id}) was "
                            "committed, but its bundle was not written: `securexport ledger list` "
                            "shows it as missing, and the run stays used"
                        )
                    raise
                try:
                    ledger.record_bundle_outcome(manifest["export_id"], True, env.now())
                except FileError:
                    env.warn(
                        "the bundle was written, but the ledger could not record that: "
                        "`securexport ledger list` shows it as unconfirmed"
                    )
    outcome = counts.outcome
    return ExportResult(
        bundle=output,
        export_id=manifest["export_id"],
        run=run,
        rows_written=written,
        matching_rows=counts.matching,
        suppressed_rows=outcome.suppressed_rows if outcome else counts.invalid_suppressed,
        k_achieved=outcome.k_achieved if outcome else None,
        payload_sha256=payload_sha256,
        ledger_index=receipt.index,
        manifest=manifest,
    )


def _write_payload(
    fd: int,
    path: Path,
    password: str,
    approval: Approval,
    compiled: Any,
    read: Any,
    env: Environment,
    people: Any,
) -> tuple[list[Any], int]:
    """Replay the spooled rows into ``payload.zip`` (one AES-256 entry) on ``fd``, then fsync;
    return the file records and the number of rows written."""
    from securexport import pipeline
    from securexport.bundle import PayloadWriter

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
    return files, written


def _report_missing_bundles(ledger: Any, approval: Approval, env: Environment) -> None:
    """Say which earlier runs of this approval were logged but never got their bundle."""
    for item in ledger.bundle_states(approval.sha256):
        if item.state == "missing":
            env.warn(
                f"run {item.run} of approval {approval.id} (ledger entry {item.index}, export "
                f"{item.export_id}) has no bundle: that export was interrupted after its ledger "
                "entry was committed; the run stays used"
            )


def _build_manifest(
    *,
    approval: Approval,
    signed: policy.SignedApproval,
    me: Any,
    now: datetime,
    run: int,
    run_date: date,
    source_driver: str,
    dsn_fingerprint: str,
    source_role: str | None,
    schema_fp: str,
    database_id: str | None,
    live_columns: list[str],
    query: BuiltQuery,
    counts: pipeline.Counts,
    written: int,
    files: Sequence[Any],
    payload_sha256: str,
    payload_bytes: int,
    key_file: bytes,
) -> dict[str, Any]:
    outcome = counts.outcome
    used_sources = set(approval.source_columns)
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
    columns = []
    for col in approval.columns:
        item: dict[str, Any] = {
            "name": col.name,
            "source": col.source,
            "transform": transforms.transform_version(col),
            "on_invalid": col.on_invalid,
        }
        if col.role:
            item["role"] = col.role
        if col.justification:
            item["justification"] = col.justification
        columns.append(item)
    limits: dict[str, Any] = {"row_cap": approval.row_cap, "min_rows": approval.min_rows}
    if approval.max_runs is not None:
        limits["max_runs"] = approval.max_runs
    if approval.privacy is not None:
        limits["k"] = approval.privacy.k
        limits["on_violation"] = approval.privacy.on_violation
        limits["max_suppressed_fraction"] = str(approval.privacy.max_suppressed_fraction)
    return {
        "schema": MANIFEST_SCHEMA,
        "export_id": str(uuid.uuid4()),
        "created_at": _rfc3339(now),
        "run_date": run_date.isoformat(),
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
            "not_before": _rfc3339(approval.not_before),
            "expires": _rfc3339(approval.expires),
            "run": run,
            "limits": limits,
        },
        "source": {
            "driver": source_driver,
            "dsn_fingerprint": dsn_fingerprint,
            "role": source_role,
            "dataset": approval.dataset,
            "entity": approval.entity,
            "schema_sha256": schema_fp,
            "database_id": database_id,
        },
        "query": {"sql": query.sql, "params": {k: _json_param(v) for k, v in query.params.items()}},
        "columns": columns,
        "dropped_columns": [c for c in live_columns if c not in used_sources],
        "records": records,
        "format": approval.output_format,
        "files": [
            {"path": f.path, "bytes": f.bytes, "rows": f.rows, "hmac_sha256": f.hmac_sha256}
            for f in files
        ],
        "payload": {
            "sha256": payload_sha256,
            "bytes": payload_bytes,
            "encryption": "zip-winzip-aes256-ae2",
        },
        "key_file": {"sha256": hashlib.sha256(key_file).hexdigest(), "format": "age-v1-x25519"},
        "recipients": [{"name": p.name, "age": p.age} for p in approval.recipients],
        "auditors": [{"name": p.name, "age": p.age} for p in approval.auditors],
        "conditions": dict(approval.conditions),
    }


# ---------------------------------------------------------------------------------------------
# inspect / verify / decrypt


def inspect(bundle_path: Path, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The manifest, parsed, without keys and without any trust decision."""
    from securexport.bundle import MANIFEST, open_bundle

    with open_bundle(bundle_path, limits) as bundle:
        return dict(
            parse_manifest(bundle.member(MANIFEST), max_bytes=limits.max_manifest_bytes).document
        )


@dataclass(frozen=True)
class Verdict:
    """What ``verify`` established; every field was checked (a failure raises instead)."""

    export_id: str
    approval_id: str
    approval_sha256: str
    approver: str
    exporter: str
    exporter_fingerprint: str
    created_at: str
    rows: int
    recipients: tuple[str, ...]
    auditors: tuple[str, ...]
    ledger_origin: str
    ledger_index: int
    ledger_size: int
    checks: tuple[str, ...] = field(default_factory=tuple)
    manifest: Manifest | None = None
    approval: Approval | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "export_id": self.export_id,
            "approval": {
                "id": self.approval_id,
                "sha256": self.approval_sha256,
                "approver": self.approver,
            },
            "exporter": {"name": self.exporter, "fingerprint": self.exporter_fingerprint},
            "created_at": self.created_at,
            "rows": self.rows,
            "recipients": list(self.recipients),
            "auditors": list(self.auditors),
            "ledger": {
                "origin": self.ledger_origin,
                "index": self.ledger_index,
                "size": self.ledger_size,
            },
            "checks": list(self.checks),
        }


def _verify_open(bundle: OpenedBundle, env: Environment, limits: Limits) -> Verdict:
    from securexport import ledger as ledger_mod
    from securexport.bundle import (
        APPROVAL,
        APPROVAL_SIG,
        COSIGNATURE,
        KEY_FILE,
        MANIFEST,
        MANIFEST_SIG,
        RECEIPT,
        check_payload,
    )
    from securexport.witness import check_cosignature

    checks: list[str] = []
    manifest = parse_manifest(bundle.member(MANIFEST), max_bytes=limits.max_manifest_bytes)
    signer = sshsig.verify(
        bundle.member(MANIFEST_SIG),
        manifest.raw,
        sshsig.NAMESPACE_MANIFEST,
        max_bytes=limits.max_signature_bytes,
    )
    checks.append("manifest signature")
    trust = _trust(env)
    signed = policy.load_signed_approval(
        bundle.member(APPROVAL),
        bundle.member(APPROVAL_SIG),
        _approver_lookup(trust),
        limits,
        error=VerificationError,
    )
    approval = signed.approval
    checks.append(f"approval signed by trusted approver {signed.signer_name}")
    Revocations.of(env.home).check(
        approval,
        exporter=signer,
        recipients=[age for _, age in (*manifest.recipients, *manifest.auditors)],
        error=VerificationError,
    )
    exporter = policy.check_manifest(manifest, approval, signer)
    checks.append(f"exporter {exporter.name} is named in the approval")
    want_recipients = tuple((p.name, p.age) for p in approval.recipients)
    want_auditors = tuple((p.name, p.age) for p in approval.auditors)
    checks.append("manifest agrees with the approval")

    if bundle.payload_sha256() != manifest.payload_sha256:
        raise VerificationError("payload.zip does not match the manifest (sha256)")
    key_file = bundle.member(KEY_FILE)
    if hashlib.sha256(key_file).hexdigest() != manifest.key_file_sha256:
        raise VerificationError("payload.key.age does not match the manifest (sha256)")
    if agefile.x25519_stanza_count(key_file) != len(want_recipients) + len(want_auditors):
        raise VerificationError(
            "payload.key.age is wrapped for a different number of keys than the approval names"
        )
    checks.append("payload and key file hashes")
    check_payload(bundle, {f.path: f.bytes for f in manifest.files}, limits)
    checks.append("payload structure (AES-256 AE-2 entries, names, sizes)")

    verifier_keys = [t.key_text for t in trust.ledger_keys()]
    if exporter.ledger:
        verifier_keys.append(exporter.ledger)
    if not bundle.has(RECEIPT):
        raise VerificationError("the bundle has no ledger receipt: it was not logged")
    if not verifier_keys:
        raise VerificationError(
            "no trusted ledger key to check the receipt with",
            hint="name the exporter's ledger key in the approval, or: securexport trust add NAME KEY --role ledger",
        )
    checkpoint = ledger_mod.verify_receipt(bundle.member(RECEIPT), manifest.raw, verifier_keys)
    checks.append(f"ledger receipt (entry {checkpoint.index} in a tree of {checkpoint.size})")
    cosigned = check_cosignature(
        bundle.member(COSIGNATURE) if bundle.has(COSIGNATURE) else None,
        manifest.raw,
        verifier_keys,
        checkpoint.origin,
        approval.witness,
        limits,
    )
    if cosigned is not None:
        checks.append(cosigned)
    return Verdict(
        export_id=manifest.export_id,
        approval_id=approval.id,
        approval_sha256=approval.sha256,
        approver=signed.signer_name,
        exporter=exporter.name,
        exporter_fingerprint=signer.fingerprint(),
        created_at=manifest.created_at,
        rows=manifest.rows_written,
        recipients=tuple(n for n, _ in want_recipients),
        auditors=tuple(n for n, _ in want_auditors),
        ledger_origin=checkpoint.origin,
        ledger_index=checkpoint.index,
        ledger_size=checkpoint.size,
        checks=tuple(checks),
        manifest=manifest,
        approval=approval,
    )


def verify(bundle_path: Path, env: Environment, limits: Limits = DEFAULT_LIMITS) -> Verdict:
    """Check everything that can be checked without decrypting (exit 5 on any failure)."""
    from securexport.bundle import open_bundle

    with open_bundle(bundle_path, limits) as bundle:
        return _verify_open(bundle, env, limits)


@dataclass(frozen=True)
class DecryptResult:
    directory: Path
    files: tuple[Path, ...]
    rows: int
    verdict: Verdict


def decrypt(
    bundle_path: Path,
    as_name: str,
    out_dir: Path,
    env: Environment,
    limits: Limits = DEFAULT_LIMITS,
) -> DecryptResult:
    """Verify everything first, then unwrap, extract to DIR.partial, check, rename to DIR."""
    from securexport import content
    from securexport.bundle import KEY_FILE, extract_payload, open_bundle

    if out_dir.is_symlink() or (
        out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir()))
    ):
        raise FileError(f"{out_dir} exists and is not an empty directory")
    partial = out_dir.with_name(out_dir.name + ".partial")
    # The identity unlocks (scrypt, ~0.8 s for a key file; it releases the GIL) on another
    # thread while the bundle is verified; it is used only once everything has verified.
    store = _keystore(env)
    unlocking = store.unlock_in_background(lambda: store.age_identity(as_name))
    with unlocking, open_bundle(bundle_path, limits) as bundle:
        verdict = _verify_open(bundle, env, limits)
        assert verdict.manifest is not None and verdict.approval is not None
        manifest, approval = verdict.manifest, verdict.approval
        identity = unlocking.result()
        try:
            unwrapped = agefile.decrypt(bundle.member(KEY_FILE), [identity], max_bytes=256)
        except KeyUnavailableError as exc:
            names = ", ".join(n for n, _ in (*manifest.recipients, *manifest.auditors))
            raise KeyUnavailableError(
                f"identity {as_name!r} is not a recipient of this bundle",
                hint=f"it was encrypted for: {names}",
            ) from exc
        password = unwrapped.decode("ascii")
        if len(password) != 43:
            raise VerificationError("the payload password has the wrong form")
        try:
            partial.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileError(f"cannot create {partial.parent}: {os_error_message(exc)}") from exc
        lock_fd = claim_partial_dir(partial, env.notice)
        renamed = False
        try:
            extract_payload(
                bundle,
                password,
                {f.path: (f.bytes, f.hmac_sha256) for f in manifest.files},
                partial,
            )
            for f in manifest.files:
                content.check_plaintext(partial / f.path, approval, f.rows, limits)
            release_partial_dir(partial)
            if out_dir.exists():
                out_dir.rmdir()
            os.rename(partial, out_dir)
            renamed = True
            fsync_dir(out_dir.parent if str(out_dir.parent) else Path(os.curdir))
        except BaseException:
            # Plaintext whose rename could not be made durable is not left behind either.
            shutil.rmtree(out_dir if renamed else partial, ignore_errors=True)
            raise
        finally:
            os.close(lock_fd)
    return DecryptResult(
        directory=out_dir,
        files=tuple(out_dir / f.path for f in manifest.files),
        rows=manifest.rows_written,
        verdict=verdict,
    )


# ---------------------------------------------------------------------------------------------
# pseudonym keys


def export_pseudonym_key(
    key_id: str,
    recipient: str,
    approval_path: Path,
    env: Environment,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Encrypt a pseudonym key to an exporter named in a signed approval that uses the key."""
    signed, _raw, _sig = _load_for_run(approval_path, env, limits)
    approval = signed.approval
    if approval.pseudonym_key_id != key_id:
        raise PolicyError(f"approval {approval.id} does not use pseudonym key {key_id!r}")
    try:
        recipient = agefile.check_recipient(recipient)
    except InvalidKeyError as exc:
        raise UsageError(f"--to is not an age recipient: {exc}") from None
    if not any(e.age == recipient for e in approval.exporters):
        raise PolicyError(
            f"{recipient} is not the age key of an exporter named in approval {approval.id}",
            hint="pseudonym keys go only to the approval's exporters, never to recipients",
        )
    store = _keystore(env)
    # The same key id is not enough: the approval must name this very key (its key_check).
    if transforms.key_check(store.pseudonym_key(key_id)) != approval.pseudonym_key_check:
        raise PolicyError(
            f"approval {approval.id} names pseudonym key {key_id!r} with another key_check: "
            "it does not use the key held here",
        )
    return store.export_pseudonym_key(key_id, recipient)


# The ledger, witness, revocation and breach recipes live in their own modules; they are part of
# this API, imported on first use (PEP 562) so that commands which do not need them start fast.
_ELSEWHERE = {
    "breach_report": "securexport.breach",
    "ledger_checkpoint": "securexport.register",
    "ledger_entries": "securexport.register",
    "ledger_prove": "securexport.register",
    "ledger_show": "securexport.register",
    "ledger_verifier_key": "securexport.register",
    "ledger_verify": "securexport.register",
    "import_revocation": "securexport.revocation",
    "list_revocations": "securexport.revocation",
    "revoke": "securexport.revocation",
    "cosign_bundle": "securexport.witness",
    "witness": "securexport.witness",
    "witness_verifier_key": "securexport.witness",
    "write_sync": "securexport.witness",
}

if TYPE_CHECKING:
    from securexport.breach import breach_report
    from securexport.register import (
        ledger_checkpoint,
        ledger_entries,
        ledger_prove,
        ledger_show,
        ledger_verifier_key,
        ledger_verify,
    )
    from securexport.revocation import import_revocation, list_revocations, revoke
    from securexport.witness import cosign_bundle, witness, witness_verifier_key, write_sync
else:

    def __getattr__(name: str) -> object:
        module = _ELSEWHERE.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


__all__ = [
    "ApprovalCheck",
    "DecryptResult",
    "ExportResult",
    "PlanReport",
    "Verdict",
    "breach_report",
    "check_approval",
    "cosign_bundle",
    "decrypt",
    "export",
    "export_pseudonym_key",
    "import_revocation",
    "init_approval",
    "inspect",
    "ledger_checkpoint",
    "ledger_entries",
    "ledger_prove",
    "ledger_show",
    "ledger_verifier_key",
    "ledger_verify",
    "list_revocations",
    "plan",
    "revoke",
    "sign_approval",
    "verify",
    "witness",
    "witness_verifier_key",
    "write_sync",
]
