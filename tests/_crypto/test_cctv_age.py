"""The C2SP CCTV age test vectors, every one of them run through securexport's reading path.

The vectors come from the npm package ``cctv-age`` (pinned in scripts/fetch-vectors.sh;
``npm pack``, unpacked as ``$SECUREXPORT_VECTORS/cctv-age/``; no package code is run: the
vector files are embedded as base64 strings in ``index.js`` and are extracted here with a
regular expression).  Each vector is a textual header (``expect``, ``identity``/``passphrase``,
``payload`` sha256, ``file key``, ``compressed``, ``armored``) then an age file.

Our reading path: :func:`agefile.decrypt` (strict header parse, then pyrage) for identity
vectors; :func:`agefile.passphrase_decrypt` (our own scrypt reader) for passphrase vectors.
Nothing is left out: ASCII-armored files and post-quantum hybrid identities, which securexport
does not read, go through the same calls and must be refused cleanly.

Every vector whose outcome for us differs from its ``expect`` is listed by name, with our
outcome and the reason, in tests/vectors/cctv/deviations.toml (``[deviations]``); so is every
``payload failure`` vector for which age releases part of the plaintext and we release none
(``[partial_release]``).  The test fails unless the observed sets equal the listed ones
exactly: a new deviation, a listed one that starts to match, or a changed outcome.

Also checked for every vector: the file presented to an X25519 identity of ours that it was
not made for is refused cleanly; and for every binary vector that gets as far as the payload,
our own header-MAC and STREAM reader (the one that opens key files) agrees with ``expect``
given the vector's file key.

Missing vectors skip the test only when SECUREXPORT_VECTORS is unset; under ``make test``
(which sets it and runs scripts/fetch-vectors.sh first) they fail it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from securexport._crypto import agefile
from securexport._crypto.sshkey import InvalidKeyError
from securexport.errors import KeyUnavailableError

_VECTOR_RE = re.compile(r'// \.\./testdata/(\S+)\nvar \w+ = __toBinary\("([A-Za-z0-9+/=]*)"\);')
LISTED = Path(__file__).parents[1] / "vectors" / "cctv" / "deviations.toml"

# The refusals our reader can give, in the vocabulary of ``expect`` (it never decodes armor, so
# never says "armor failure").  Plus, for a deviation only, "identity refused": the vector's
# identity is not one securexport can hold (only X25519 ``AGE-SECRET-KEY-1…``), refused before
# the file is tried.
OUR_REFUSALS = frozenset({"header failure", "HMAC failure", "payload failure", "no match"})
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Vector:
    name: str
    meta: dict[str, list[str]]
    body: bytes

    @property
    def expect(self) -> str:
        return self.meta["expect"][0]

    @property
    def armored(self) -> bool:
        return self.meta.get("armored") == ["yes"]


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


def _classify(vector: Vector, read: Callable[[], bytes]) -> str:
    """What ``read()`` does, in the vocabulary of ``expect``; any other exception is a crash."""
    try:
        plain = read()
    except agefile.AgeHeaderError:
        return "header failure"
    except agefile.AgeMacError:
        return "HMAC failure"
    except agefile.AgePayloadError:
        return "payload failure"
    except KeyUnavailableError:
        return "no match"
    except InvalidKeyError:
        return "identity refused"
    except Exception as exc:  # reported as a crash: never expected
        return f"CRASH {type(exc).__name__}: {exc}"
    if hashlib.sha256(plain).hexdigest() != vector.meta["payload"][0]:
        return "success with a WRONG payload"
    return "success"


def _outcome(vector: Vector) -> str:
    """The vector through our reader with the identities or passphrases it gives."""
    if "passphrase" in vector.meta:
        outcome = "no match"
        for phrase in vector.meta["passphrase"]:
            outcome = _classify(
                vector,
                partial(agefile.passphrase_decrypt, vector.body, phrase.encode(), max_log_n=22),
            )
            if outcome != "no match":
                break
        return outcome
    identities = vector.meta.get("identity", [])
    return _classify(vector, lambda: agefile.decrypt(vector.body, identities, max_bytes=1 << 26))


def _own_stream_outcome(vector: Vector) -> str:
    """Our header-MAC and STREAM reader, given the file key the vector states."""
    file_key = bytes.fromhex(vector.meta["file key"][0])
    return _classify(
        vector,
        lambda: agefile.open_with_file_key(
            vector.body, agefile.parse_header(vector.body), file_key
        ),
    )


def _vectors_or_skip(vectors_dir: Path) -> list[Vector]:
    index_js = vectors_dir / "cctv-age" / "index.js"
    if not index_js.is_file():
        message = (
            f"CCTV age vectors not found at {index_js}: run scripts/fetch-vectors.sh "
            "(make vectors), which unpacks `npm pack cctv-age` as $SECUREXPORT_VECTORS/cctv-age"
        )
        if os.environ.get("SECUREXPORT_VECTORS"):  # make test: the vectors are required
            pytest.fail(f"SECUREXPORT_VECTORS is set but {message}")
        pytest.skip(message)
    vectors = _load(index_js)
    assert len(vectors) > 100, "the vector extraction regex no longer matches index.js"
    return vectors


def _listed() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    data = tomllib.loads(LISTED.read_text(encoding="utf-8"))
    assert set(data) == {"deviations", "partial_release"}, f"{LISTED}: unexpected tables"
    for name, entry in data["deviations"].items():
        assert set(entry) == {"expect", "ours", "reason"}, f"{LISTED}: {name}: keys"
        assert len(entry["reason"]) > 40, f"{LISTED}: {name}: no real reason given"
    for name, reason in data["partial_release"].items():
        assert len(reason) > 40, f"{LISTED}: {name}: no real reason given"
    return data["deviations"], data["partial_release"]


def _set_difference(kind: str, observed: dict[str, str], listed: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(observed.keys() - listed.keys()):
        lines.append(f"{name}: {kind} not listed in {LISTED.name} (ours: {observed[name]!r})")
    for name in sorted(listed.keys() - observed.keys()):
        lines.append(f"{name}: listed as a {kind} in {LISTED.name} but not observed any more")
    for name in sorted(observed.keys() & listed.keys()):
        if observed[name] != listed[name]:
            lines.append(f"{name}: {kind}: ours is {observed[name]!r}, listed {listed[name]!r}")
    return lines


def test_cctv_age_vectors(vectors_dir: Path, record_property: object) -> None:
    vectors = _vectors_or_skip(vectors_dir)
    deviations, partial_release = _listed()
    by_name = {v.name: v for v in vectors}
    assert len(by_name) == len(vectors), "two vectors share a name"
    foreign_identity, _ = agefile.generate_identity()

    problems: list[str] = []
    observed: dict[str, str] = {}  # name -> our outcome, where it is not the vector's expect
    observed_partial: dict[str, str] = {}
    tally = {"run": 0, "as expected": 0, "scrypt": 0, "armored": 0, "own stream": 0}
    for vector in vectors:
        tally["run"] += 1
        tally["scrypt"] += "passphrase" in vector.meta
        tally["armored"] += vector.armored
        ours = _outcome(vector)
        if ours == vector.expect:
            tally["as expected"] += 1
        else:
            observed[vector.name] = ours
            # A deviation may only ever be a refusal: never accept what age refuses.
            if ours not in OUR_REFUSALS | {"identity refused"}:
                problems.append(f"{vector.name}: expected {vector.expect!r}, got {ours!r}")
        if vector.expect == ours == "payload failure" and vector.meta["payload"][0] != EMPTY_SHA256:
            observed_partial[vector.name] = "released nothing"  # age releases a prefix
        # The same file arriving for a securexport identity it was not made for.
        foreign = _classify(
            vector, partial(agefile.decrypt, vector.body, [foreign_identity], max_bytes=1 << 26)
        )
        if foreign not in OUR_REFUSALS:
            problems.append(f"{vector.name} (to a foreign X25519 identity): got {foreign!r}")
        # X25519 files are unwrapped by pyrage; our own MAC and STREAM reader (the one that
        # opens key files) must agree, given the file key the vector states.
        if not vector.armored and vector.expect in ("success", "HMAC failure", "payload failure"):
            tally["own stream"] += 1
            got = _own_stream_outcome(vector)
            if got != vector.expect:
                problems.append(
                    f"{vector.name} (own reader): expected {vector.expect!r}, got {got!r}"
                )

    for name, entry in deviations.items():
        if name in by_name and entry["expect"] != by_name[name].expect:
            problems.append(f"{LISTED.name}: {name}: the vector expects {by_name[name].expect!r}")
    problems += _set_difference(
        "deviation", observed, {name: entry["ours"] for name, entry in deviations.items()}
    )
    problems += _set_difference(
        "partial release", observed_partial, dict.fromkeys(partial_release, "released nothing")
    )
    assert not problems, "\n".join(problems)

    record_property("external_vectors", tally["run"])  # type: ignore[operator]
    assert tally["run"] == len(vectors) >= 140
    assert tally["as expected"] >= 90
    assert tally["scrypt"] >= 20
    assert tally["armored"] >= 30
    assert tally["own stream"] >= 30
    assert len(observed) == len(deviations) >= 40
