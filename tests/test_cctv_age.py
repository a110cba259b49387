"""The C2SP CCTV age test vectors, run through securexport's reading path.

The vectors come from the npm package ``cctv-age`` (``npm pack cctv-age``, unpacked as
``$SECUREXPORT_VECTORS/cctv-age/``; no package code is run: the vector files are embedded as
base64 strings in ``index.js`` and are extracted here with a regular expression).  Each vector
is a textual header (``expect``, ``identity``/``passphrase``, ``payload`` sha256, ``compressed``,
``armored``) then an age file.

Our reading path: :func:`agefile.decrypt` (strict header parse, then pyrage) for identity
vectors; :func:`agefile.passphrase_decrypt` (our own scrypt reader) for passphrase vectors.

Where our outcome differs from the vector's ``expect``, the difference is listed in
:data:`DEVIATIONS` with the reason, and pinned (the test fails if the behaviour changes).
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from securexport._crypto import agefile
from securexport.errors import KeyUnavailableError

_VECTOR_RE = re.compile(r'// \.\./testdata/(\S+)\nvar \w+ = __toBinary\("([A-Za-z0-9+/=]*)"\);')

# Vectors outside what securexport reads, by design (not failures of ours).
NOT_APPLICABLE = {
    "armored": "ASCII armor is not one of securexport's formats: only binary age is read "
    "(armored input must still be refused, which is checked)",
    "pq": "post-quantum hybrid (mlkem768x25519) identities are not used by securexport v1",
}

# name -> (our outcome, reason).  Empty today: every applicable vector gives the expected result.
DEVIATIONS: dict[str, tuple[str, str]] = {}

# The payload-failure vectors: age releases the plaintext before the failing chunk; we release
# nothing at all (decrypt is all-or-nothing), which is stricter, so the partial hash is not
# compared.


@dataclass(frozen=True)
class Vector:
    name: str
    meta: dict[str, list[str]]
    body: bytes

    @property
    def expect(self) -> str:
        return self.meta["expect"][0]


def _vectors_file(vectors_dir: Path) -> Path:
    return vectors_dir / "cctv-age" / "index.js"


def _load(index_js: Path) -> list[Vector]:
    vectors = []
    for name, encoded in _VECTOR_RE.findall(index_js.read_text()):
        raw = base64.b64decode(encoded)
        head, _, body = raw.partition(b"\n\n")
        meta: dict[str, list[str]] = {}
        for line in head.decode().split("\n"):
            key, _, value = line.partition(": ")
            meta.setdefault(key, []).append(value)
        if meta.get("compressed") == ["zlib"]:
            body = zlib.decompress(body)
        vectors.append(Vector(name, meta, body))
    return vectors


def _outcome(vector: Vector) -> str:
    try:
        if "passphrase" in vector.meta:
            results = set()
            for phrase in vector.meta["passphrase"]:
                try:
                    plain = agefile.passphrase_decrypt(vector.body, phrase.encode(), max_log_n=22)
                except KeyUnavailableError:
                    results.add("no match")
                    continue
                return _check_payload(vector, plain)
            return results.pop()
        plain = agefile.decrypt(vector.body, vector.meta.get("identity", []), max_bytes=1 << 26)
        return _check_payload(vector, plain)
    except agefile.AgeHeaderError:
        return "header failure"
    except agefile.AgeMacError:
        return "HMAC failure"
    except agefile.AgePayloadError:
        return "payload failure"
    except KeyUnavailableError:
        return "no match"


def _own_stream_outcome(vector: Vector) -> str:
    file_key = bytes.fromhex(vector.meta["file key"][0])
    try:
        header = agefile.parse_header(vector.body)
        return _check_payload(vector, agefile.open_with_file_key(vector.body, header, file_key))
    except agefile.AgeHeaderError:
        return "header failure"
    except agefile.AgeMacError:
        return "HMAC failure"
    except agefile.AgePayloadError:
        return "payload failure"


def _check_payload(vector: Vector, plain: bytes) -> str:
    if hashlib.sha256(plain).hexdigest() != vector.meta["payload"][0]:
        return "success with a WRONG payload"
    return "success"


def test_cctv_age_vectors(vectors_dir: Path, record_property: object) -> None:
    index_js = _vectors_file(vectors_dir)
    if not index_js.is_file():
        pytest.skip(
            f"CCTV age vectors not found at {index_js}: run `npm pack cctv-age` and unpack it "
            "as $SECUREXPORT_VECTORS/cctv-age (make vectors)"
        )
    vectors = _load(index_js)
    assert len(vectors) > 100, "the vector extraction regex no longer matches index.js"
    mismatches = []
    checked = {"scrypt": 0, "x25519": 0, "armored": 0, "own stream": 0}
    for vector in vectors:
        if vector.meta.get("armored") == ["yes"]:
            # Not applicable (see NOT_APPLICABLE), but armored input must never be accepted.
            with pytest.raises(agefile.AgeHeaderError):
                agefile.parse_header(vector.body)
            checked["armored"] += 1
            continue
        if any(not i.startswith("AGE-SECRET-KEY-1") for i in vector.meta.get("identity", [])):
            continue  # NOT_APPLICABLE["pq"]
        checked["scrypt" if "passphrase" in vector.meta else "x25519"] += 1
        got = _outcome(vector)
        expected = DEVIATIONS[vector.name][0] if vector.name in DEVIATIONS else vector.expect
        if got != expected:
            mismatches.append(f"{vector.name}: expected {expected!r}, got {got!r}")
        # X25519 files are unwrapped by pyrage; run our own MAC and STREAM reader (the one
        # that opens key files) over every vector too, with the file key the vector gives.
        if vector.expect in ("success", "HMAC failure", "payload failure"):
            checked["own stream"] += 1
            got = _own_stream_outcome(vector)
            if got != vector.expect:
                mismatches.append(
                    f"{vector.name} (own reader): expected {vector.expect!r}, got {got!r}"
                )
    assert not mismatches, "\n".join(mismatches)
    record_property("external_vectors", checked["scrypt"] + checked["x25519"] + checked["armored"])  # type: ignore[operator]
    assert checked["scrypt"] >= 20
    assert checked["x25519"] >= 50
    assert checked["own stream"] >= 30
