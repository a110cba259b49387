"""The export manifest: a canonical (RFC 8785) JSON document with no record values.

Pure: build a dict, turn it into the exact bytes that are signed, and parse those bytes back
strictly (no duplicate keys, no floats, must already be canonical).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from securexport.errors import VerificationError

SCHEMA = "securexport.manifest/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON.  Floats are refused: the manifest holds ints and strings only."""
    _reject_floats(document)
    return bytes(rfc8785.dumps(document))


def _reject_floats(value: object) -> None:
    if isinstance(value, float):
        raise TypeError("the manifest holds no floats; write fractions as decimal strings")
    if isinstance(value, Mapping):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_floats(item)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise VerificationError("manifest is malformed: duplicate key")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise VerificationError("manifest is malformed: it contains a float")


def _no_constant(text: str) -> Any:
    raise VerificationError("manifest is malformed: it contains a non-finite number")


@dataclass(frozen=True)
class FileEntry:
    path: str
    bytes: int
    rows: int
    hmac_sha256: str


@dataclass(frozen=True)
class Manifest:
    """The parsed, validated manifest.  ``document`` holds every field; the typed attributes are
    the ones verification relies on."""

    raw: bytes
    document: Mapping[str, Any]
    export_id: str
    created_at: str
    operator_name: str
    operator_ssh: str
    approval_id: str
    approval_sha256: str
    run: int
    files: tuple[FileEntry, ...]
    payload_sha256: str
    payload_bytes: int
    key_file_sha256: str
    recipients: tuple[tuple[str, str], ...]
    auditors: tuple[tuple[str, str], ...]
    rows_written: int
    output_format: str


def _get(doc: Mapping[str, Any], path: str, kind: type) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise VerificationError(f"manifest is malformed: missing {path}")
        node = node[part]
    if kind is int and (isinstance(node, bool) or not isinstance(node, int)):
        raise VerificationError(f"manifest is malformed: {path} must be an integer")
    if not isinstance(node, kind):
        raise VerificationError(f"manifest is malformed: {path} has the wrong type")
    return node


def _hex64(doc: Mapping[str, Any], path: str) -> str:
    value: str = _get(doc, path, str)
    if not _HEX64.fullmatch(value):
        raise VerificationError(f"manifest is malformed: {path} is not a sha256 hex digest")
    return value


def _parties(doc: Mapping[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    items = doc.get(key, [])
    if not isinstance(items, list):
        raise VerificationError(f"manifest is malformed: {key} must be a list")
    parties = []
    for item in items:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("age"), str)
        ):
            raise VerificationError(f"manifest is malformed: bad entry in {key}")
        parties.append((item["name"], item["age"]))
    return tuple(parties)


def parse_manifest(raw: bytes, *, max_bytes: int) -> Manifest:
    """Parse manifest bytes strictly.  Any deviation is a VerificationError (exit 5)."""
    if len(raw) > max_bytes:
        raise VerificationError("manifest is larger than the limit")
    try:
        text = raw.decode("utf-8")
        doc = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise VerificationError("manifest is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise VerificationError("manifest is malformed: not a JSON object")
    try:
        canonical = canonical_bytes(doc)
    except (TypeError, ValueError, rfc8785.CanonicalizationError) as exc:
        raise VerificationError("manifest is malformed: cannot be canonicalised") from exc
    if canonical != raw:
        raise VerificationError("manifest is not in canonical (RFC 8785) form")
    if doc.get("schema") != SCHEMA:
        raise VerificationError(f"manifest schema is not {SCHEMA}")

    files = []
    raw_files = _get(doc, "files", list)
    for item in raw_files:
        if not isinstance(item, dict):
            raise VerificationError("manifest is malformed: bad entry in files")
        files.append(
            FileEntry(
                path=_get(item, "path", str),
                bytes=_get(item, "bytes", int),
                rows=_get(item, "rows", int),
                hmac_sha256=_hex64(item, "hmac_sha256"),
            )
        )
    return Manifest(
        raw=raw,
        document=doc,
        export_id=_get(doc, "export_id", str),
        created_at=_get(doc, "created_at", str),
        operator_name=_get(doc, "operator.name", str),
        operator_ssh=_get(doc, "operator.ssh", str),
        approval_id=_get(doc, "approval.id", str),
        approval_sha256=_hex64(doc, "approval.sha256"),
        run=_get(doc, "approval.run", int),
        files=tuple(files),
        payload_sha256=_hex64(doc, "payload.sha256"),
        payload_bytes=_get(doc, "payload.bytes", int),
        key_file_sha256=_hex64(doc, "key_file.sha256"),
        recipients=_parties(doc, "recipients"),
        auditors=_parties(doc, "auditors"),
        rows_written=_get(doc, "records.written", int),
        output_format=_get(doc, "format", str),
    )
