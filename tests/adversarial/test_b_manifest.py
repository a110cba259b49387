"""B. Manifests and signatures: replaced, re-signed, edited, non-canonical, oversized, and
signed by an exporter (or under an approval) that the approver has since revoked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from securexport import api
from securexport._crypto import sshsig
from securexport.bundle.container import MANIFEST, MANIFEST_SIG
from securexport.policy.manifest import canonical_bytes
from tests.adversarial.harness import Ctx, run_case
from tests.adversarial.registry import Case, RecordProperty, case, params

Doc = dict[str, Any]


def _forged(ctx: Ctx, edit: Callable[[Doc], None] | None = None, **kw: Any) -> Any:
    return ctx.write(ctx.resign(ctx.members(ctx.bundle), edit, **kw))


# --- replaced ---------------------------------------------------------------------------


@case(
    "B",
    "from-other-export",
    5,
    "manifest.json and its signature taken from another export",
    message=r"payload\.zip does not match",
)
def _other(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    other = ctx.members(ctx.second_bundle)
    members[MANIFEST], members[MANIFEST_SIG] = other[MANIFEST], other[MANIFEST_SIG]
    return ctx.decrypt(ctx.write(members))


@case(
    "B",
    "replaced-without-signature",
    5,
    "manifest.json replaced, old signature kept",
    message="signature is invalid or malformed",
)
def _replaced(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[MANIFEST] = ctx.members(ctx.second_bundle)[MANIFEST]
    return ctx.decrypt(ctx.write(members))


@case(
    "B",
    "resigned-by-untrusted-key",
    5,
    "manifest re-signed by an outsider's key",
    via="cli",
    message="not an exporter of the approval",
)
def _outsider(ctx: Ctx) -> int:
    bundle = _forged(ctx, signer="outsider")
    return ctx.cli(["verify", str(bundle)])


@case(
    "B",
    "resigned-by-approver",
    5,
    "manifest re-signed by the approver (not an exporter)",
    message="not an exporter of the approval",
)
def _approver(ctx: Ctx) -> int:
    return ctx.verify(_forged(ctx, signer="owner"))


@case(
    "B",
    "signed-in-approval-namespace",
    5,
    "manifest signed by the exporter under the approval namespace",
    message="signature is invalid or malformed",
)
def _namespace(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    key = ctx.keystore("exporter").signing_key("analyst")
    members[MANIFEST_SIG] = sshsig.sign(key, members[MANIFEST], sshsig.NAMESPACE_APPROVAL)
    return ctx.verify(ctx.write(members))


@case(
    "B",
    "signature-truncated",
    5,
    "manifest.json.sig cut in half",
    message="signature is invalid or malformed",
)
def _sig_cut(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[MANIFEST_SIG] = members[MANIFEST_SIG][: len(members[MANIFEST_SIG]) // 2]
    return ctx.verify(ctx.write(members))


@case(
    "B",
    "signature-empty",
    5,
    "manifest.json.sig empty",
    message="signature is invalid or malformed",
)
def _sig_empty(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[MANIFEST_SIG] = b""
    return ctx.verify(ctx.write(members))


# --- fields edited and re-signed (and logged) by the exporter -------------------------------


def _rows(delta: int) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        doc["records"]["written"] += delta
        doc["files"][0]["rows"] += delta

    return edit


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        node: Any = doc
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return edit


_EDITS: list[tuple[str, str, str, Callable[[Doc], None], str, bool]] = [
    # slug, title, message, edit, verify-or-decrypt, via cli
    (
        "rows-raised",
        "rows count raised by one (files and records agree)",
        r"holds \d+ rows but the manifest states",
        _rows(1),
        "decrypt",
        False,
    ),
    (
        "rows-lowered",
        "rows count lowered by one",
        "more rows than the manifest",
        _rows(-1),
        "decrypt",
        False,
    ),
    (
        "rows-above-row-cap",
        "rows count above the approval's row cap",
        "the manifest states more rows than the approval's row cap",
        _rows(100_000),
        "verify",
        False,
    ),
    (
        "file-rows-disagree",
        "file rows no longer add up to records.written",
        "do not add up",
        _set("files.0.rows", 1),
        "verify",
        False,
    ),
    (
        "extra-column",
        "an extra column listed",
        "columns differ",
        lambda d: d["columns"].append(
            {
                "name": "full_name",
                "source": "full_name",
                "transform": "keep@1",
                "on_invalid": "error",
            }
        ),
        "verify",
        True,
    ),
    (
        "column-transform-changed",
        "pseudonym column relabelled as keep",
        "columns differ",
        _set("columns.0.transform", "keep@1"),
        "verify",
        False,
    ),
    (
        "file-path-changed",
        "the payload file renamed",
        "the manifest's file list is not what the approval produces",
        _set("files.0.path", "data/all.csv"),
        "verify",
        False,
    ),
    (
        "format-changed",
        "format changed to jsonl",
        "format differs",
        _set("format", "jsonl"),
        "verify",
        False,
    ),
    (
        "created-outside-window",
        "created_at after the approval expired",
        "outside the approval's validity window",
        _set("created_at", "2031-01-01T00:00:00Z"),
        "verify",
        False,
    ),
    (
        "created-at-malformed",
        "created_at not RFC 3339",
        "manifest created_at is not RFC 3339 UTC",
        _set("created_at", "yesterday"),
        "verify",
        False,
    ),
    (
        "run-beyond-max-runs",
        "run 13 of an approval with max_runs 12",
        "run number is beyond the approval's max_runs",
        _set("approval.run", 13),
        "verify",
        False,
    ),
    (
        "approval-sha-changed",
        "approval sha256 pointing at another approval",
        "different approval",
        _set("approval.sha256", "ab" * 32),
        "verify",
        False,
    ),
    (
        "operator-key-swapped",
        "operator.ssh names the outsider while the exporter signs",
        "operator key",
        lambda d: None,
        "verify",
        False,
    ),
    (
        "hmac-wrong",
        "a file HMAC replaced",
        "a payload file does not match the manifest's HMAC",
        _set("files.0.hmac_sha256", "cd" * 32),
        "decrypt",
        False,
    ),
    (
        "file-bytes-changed",
        "a file's byte count changed",
        "a payload entry's size differs from the manifest's",
        lambda d: d["files"][0].__setitem__("bytes", d["files"][0]["bytes"] + 1),
        "verify",
        False,
    ),
    (
        "schema-changed",
        "schema changed to securexport.manifest/2",
        r"manifest schema is not securexport\.manifest/1",
        _set("schema", "securexport.manifest/2"),
        "verify",
        False,
    ),
    (
        "payload-sha-malformed",
        "payload sha256 not hex",
        r"manifest is malformed: payload\.sha256 is not a sha256 hex digest",
        _set("payload.sha256", "Z" * 64),
        "verify",
        False,
    ),
    (
        "rows-not-integer",
        "records.written as a string",
        r"manifest is malformed: records\.written must be an integer",
        _set("records.written", "295"),
        "verify",
        False,
    ),
]


def _register_edit(
    slug: str, title: str, message: str, edit: Callable[[Doc], None], action: str, cli: bool
) -> None:
    @case(
        "B",
        slug,
        5,
        f"re-signed and logged by the exporter: {title}",
        via="cli" if cli else "api",
        message=message,
    )
    def run(ctx: Ctx) -> int:
        chosen = edit
        if slug == "operator-key-swapped":

            def chosen(doc: Doc) -> None:
                doc["operator"]["ssh"] = ctx.world.ids["outsider"].signing_key.to_line()

        bundle = _forged(ctx, chosen)
        if cli:
            return ctx.cli(
                [action, str(bundle)]
                + (["--as", "force", "-o", str(ctx.out)] if action == "decrypt" else [])
            )
        return ctx.decrypt(bundle) if action == "decrypt" else ctx.verify(bundle)


for _args in _EDITS:
    _register_edit(*_args)


@case(
    "B",
    "recipients-changed",
    5,
    "outsider added to the manifest's recipients (key file too), re-signed",
    message="recipients differ",
)
def _recipients(ctx: Ctx) -> int:
    def edit(doc: Doc) -> None:
        doc["recipients"].append(
            {"name": "stranger", "age": ctx.world.ids["outsider"].age_recipient}
        )

    return ctx.verify(_forged(ctx, edit))


@case(
    "B",
    "auditors-removed",
    5,
    "the auditor removed from the manifest, re-signed",
    message="recipients differ",
)
def _auditors(ctx: Ctx) -> int:
    return ctx.verify(_forged(ctx, _set("auditors", [])))


# --- encodings ----------------------------------------------------------------------------


def _dumps(**kw: Any) -> Callable[[Doc], bytes]:
    return lambda doc: json.dumps(doc, **kw).encode()


def _canonical_then(fn: Callable[[bytes], bytes]) -> Callable[[Doc], bytes]:
    return lambda doc: fn(canonical_bytes(doc))


_ENCODINGS: list[tuple[str, str, str, Callable[[Doc], bytes], Callable[[Doc], None] | None]] = [
    (
        "non-canonical-whitespace",
        "pretty-printed JSON",
        r"manifest is not in canonical \(RFC 8785\) form",
        _dumps(indent=1, sort_keys=True),
        None,
    ),
    (
        "non-canonical-key-order",
        "keys not sorted",
        r"manifest is not in canonical \(RFC 8785\) form",
        _dumps(separators=(",", ":")),
        lambda d: d.update({"zz": 1, "aa": 1}),
    ),
    (
        "non-canonical-escape",
        "`/` written as `\\u002f`",
        r"manifest is not in canonical \(RFC 8785\) form",
        _canonical_then(lambda b: b.replace(b"data/", b"data\\u002f", 1)),
        None,
    ),
    (
        "duplicate-key",
        "a duplicate `schema` key",
        "manifest is malformed: duplicate key",
        _canonical_then(lambda b: b'{"schema":"x",' + b[1:]),
        None,
    ),
    (
        "float",
        "records.written as 295.0",
        "manifest is malformed: it contains a float",
        _dumps(separators=(",", ":"), sort_keys=True),
        lambda d: d["records"].update({"written": float(d["records"]["written"])}),
    ),
    (
        "exponent",
        "an integer written as 1e2",
        "manifest is malformed: it contains a float",
        _canonical_then(lambda b: b.replace(b'"rows":', b'"rows":1e2,"x":', 1)),
        None,
    ),
    (
        "nan",
        "a NaN constant",
        "manifest is malformed: it contains a non-finite number",
        _canonical_then(lambda b: b'{"a":NaN,' + b[1:]),
        None,
    ),
    (
        "deep-nesting",
        "100 000 nested arrays",
        "manifest is not valid JSON",
        lambda d: b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        None,
    ),
    (
        "not-an-object",
        "a JSON array at the top",
        "manifest is malformed: not a JSON object",
        lambda d: b"[]",
        None,
    ),
    (
        "lone-surrogate",
        "a lone surrogate escape `\\ud800`",
        "manifest is malformed: cannot be canonicalised",
        _canonical_then(lambda b: b'{"a":"\\ud800",' + b[1:]),
        None,
    ),
    (
        "not-utf8",
        "Latin-1 bytes in a string",
        "manifest is not valid JSON",
        _canonical_then(lambda b: b'{"a":"\xe9",' + b[1:]),
        None,
    ),
    (
        "bom",
        "a UTF-8 byte order mark in front",
        "manifest is not valid JSON",
        _canonical_then(lambda b: b"\xef\xbb\xbf" + b),
        None,
    ),
    (
        "oversized",
        "a 5 MiB manifest (limit 4 MiB)",
        r"bundle member manifest\.json is larger than allowed",
        _canonical_then(lambda b: b'{"a":"' + b"x" * (5 << 20) + b'",' + b[1:]),
        None,
    ),
]


def _register_encoding(
    slug: str,
    title: str,
    message: str,
    encode: Callable[[Doc], bytes],
    edit: Callable[[Doc], None] | None,
) -> None:
    @case("B", slug, 5, f"re-signed by the exporter: {title}", message=message)
    def run(ctx: Ctx) -> int:
        return ctx.verify(_forged(ctx, edit, encode=encode, relog=False))


for _args2 in _ENCODINGS:
    _register_encoding(*_args2)


# --- revoked signer: the approver revokes, the recipient imports, the old bundle is refused ---


def _revoke(ctx: Ctx, kind: str, target: str, *, signer: str = "owner") -> Path:
    """A revocation of ``target`` signed by ``signer`` (the approver unless stated)."""
    path = ctx.root / f"revocation-{kind}-{signer}.json"
    name = {"owner": "owner", "outsider": "stranger"}[signer]
    api.revoke(ctx.env(signer), kind, target, name, path, reason="adversarial suite")
    return path


def _revoked(ctx: Ctx, kind: str, target: str) -> Path:
    """The base bundle, made *before* the approver revoked ``target`` (imported by the
    recipient)."""
    bundle = ctx.bundle
    assert ctx.verify(bundle) == 0, ctx.messages  # valid until the revocation arrives
    api.import_revocation(ctx.world.recipient, _revoke(ctx, kind, target))
    return bundle


def _exporter_key(ctx: Ctx) -> str:
    return str(ctx.world.ids["exporter"].signing_key.to_line())


@case(
    "B",
    "revoked-exporter-key-decrypt",
    5,
    "the exporter's signing key revoked by the approver after the export: decrypt refuses",
    message=r"exporter key SHA256:\S+ was revoked at 2026-06-01T12:00:00Z",
)
def _revoked_exporter_decrypt(ctx: Ctx) -> int:
    return ctx.decrypt(_revoked(ctx, "exporter", _exporter_key(ctx)))


@case(
    "B",
    "revoked-exporter-key-verify",
    5,
    "the exporter's signing key revoked by the approver (imported with `revoke import`): "
    "`securexport verify` refuses",
    via="cli",
    message=r"error: exporter key SHA256:\S+ was revoked at 2026-06-01T12:00:00Z",
)
def _revoked_exporter_verify(ctx: Ctx) -> int:
    bundle = ctx.bundle
    assert ctx.cli(["revoke", "import", str(_revoke(ctx, "exporter", _exporter_key(ctx)))]) == 0
    return ctx.cli(["verify", str(bundle)])


@case(
    "B",
    "revoked-approval-id-decrypt",
    5,
    "the approval (every version of its id) revoked after the export: decrypt refuses",
    message="approval APR-2026-0042 was revoked at 2026-06-01T12:00:00Z",
)
def _revoked_approval_decrypt(ctx: Ctx) -> int:
    return ctx.decrypt(_revoked(ctx, "approval", "APR-2026-0042"))


@case(
    "B",
    "revoked-approval-sha256-verify",
    5,
    "this version of the approval (by its SHA-256) revoked after the export: verify refuses",
    message=r"approval sha256 [0-9a-f]{64} was revoked at 2026-06-01T12:00:00Z",
)
def _revoked_approval_verify(ctx: Ctx) -> int:
    return ctx.verify(
        _revoked(ctx, "approval", hashlib.sha256(ctx.approval.read_bytes()).hexdigest())
    )


@case(
    "B",
    "revocation-forged-by-outsider",
    5,
    "a revocation of the exporter signed by an outsider: import refused, nothing stored",
    message="the revocation is signed by a key that is not a trusted approver",
)
def _forged_revocation(ctx: Ctx) -> int:
    path = _revoke(ctx, "exporter", _exporter_key(ctx), signer="outsider")
    code = ctx.api(api.import_revocation, ctx.world.recipient, path)
    assert api.list_revocations(ctx.world.recipient) == []
    return code


@pytest.mark.parametrize("case", params("B"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)
