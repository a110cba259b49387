"""B. Manifests and signatures: replaced, re-signed, edited, non-canonical, oversized."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from securexport._crypto import sshsig
from securexport.bundle import MANIFEST, MANIFEST_SIG
from securexport.manifest import canonical_bytes
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
    message="signature",
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
    message="signature",
)
def _namespace(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    key = ctx.keystore("exporter").signing_key("analyst")
    members[MANIFEST_SIG] = sshsig.sign(key, members[MANIFEST], sshsig.NAMESPACE_APPROVAL)
    return ctx.verify(ctx.write(members))


@case("B", "signature-truncated", 5, "manifest.json.sig cut in half", message="signature")
def _sig_cut(ctx: Ctx) -> int:
    members = ctx.members(ctx.bundle)
    members[MANIFEST_SIG] = members[MANIFEST_SIG][: len(members[MANIFEST_SIG]) // 2]
    return ctx.verify(ctx.write(members))


@case("B", "signature-empty", 5, "manifest.json.sig empty", message="signature")
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
        "row cap",
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
        "file list",
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
        "RFC 3339",
        _set("created_at", "yesterday"),
        "verify",
        False,
    ),
    (
        "run-beyond-max-runs",
        "run 13 of an approval with max_runs 12",
        "max_runs",
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
        "HMAC",
        _set("files.0.hmac_sha256", "cd" * 32),
        "decrypt",
        False,
    ),
    (
        "file-bytes-changed",
        "a file's byte count changed",
        "size differs",
        lambda d: d["files"][0].__setitem__("bytes", d["files"][0]["bytes"] + 1),
        "verify",
        False,
    ),
    (
        "schema-changed",
        "schema changed to securexport.manifest/2",
        "schema",
        _set("schema", "securexport.manifest/2"),
        "verify",
        False,
    ),
    (
        "payload-sha-malformed",
        "payload sha256 not hex",
        "sha256 hex",
        _set("payload.sha256", "Z" * 64),
        "verify",
        False,
    ),
    (
        "rows-not-integer",
        "records.written as a string",
        "must be an integer",
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
        "canonical",
        _dumps(indent=1, sort_keys=True),
        None,
    ),
    (
        "non-canonical-key-order",
        "keys not sorted",
        "canonical",
        _dumps(separators=(",", ":")),
        lambda d: d.update({"zz": 1, "aa": 1}),
    ),
    (
        "non-canonical-escape",
        "`/` written as `\\u002f`",
        "canonical",
        _canonical_then(lambda b: b.replace(b"data/", b"data\\u002f", 1)),
        None,
    ),
    (
        "duplicate-key",
        "a duplicate `schema` key",
        "duplicate key",
        _canonical_then(lambda b: b'{"schema":"x",' + b[1:]),
        None,
    ),
    (
        "float",
        "records.written as 295.0",
        "float",
        _dumps(separators=(",", ":"), sort_keys=True),
        lambda d: d["records"].update({"written": float(d["records"]["written"])}),
    ),
    (
        "exponent",
        "an integer written as 1e2",
        "float",
        _canonical_then(lambda b: b.replace(b'"rows":', b'"rows":1e2,"x":', 1)),
        None,
    ),
    ("nan", "a NaN constant", "non-finite", _canonical_then(lambda b: b'{"a":NaN,' + b[1:]), None),
    (
        "deep-nesting",
        "100 000 nested arrays",
        "not valid JSON",
        lambda d: b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        None,
    ),
    ("not-an-object", "a JSON array at the top", "not a JSON object", lambda d: b"[]", None),
    (
        "lone-surrogate",
        "a lone surrogate escape `\\ud800`",
        "canonical|malformed|JSON",
        _canonical_then(lambda b: b'{"a":"\\ud800",' + b[1:]),
        None,
    ),
    (
        "not-utf8",
        "Latin-1 bytes in a string",
        "not valid JSON",
        _canonical_then(lambda b: b'{"a":"\xe9",' + b[1:]),
        None,
    ),
    (
        "bom",
        "a UTF-8 byte order mark in front",
        "not valid JSON|canonical",
        _canonical_then(lambda b: b"\xef\xbb\xbf" + b),
        None,
    ),
    (
        "oversized",
        "a 5 MiB manifest (limit 4 MiB)",
        "larger than",
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


@pytest.mark.parametrize("case", params("B"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)
