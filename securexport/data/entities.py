"""Breach response: if bundles leak, who was in them?  The entity list of an export.

For an approval with an ``[owner]`` table, ``export`` collects the entity ids of the rows it
writes (the rows left after suppression), keys each with HMAC-SHA-256 under a random per-export
salt, and stores the sorted list, sealed with age to the owner's key, beside the ledger entry
(attachment ``entities.age``; it travels to the owner in ``ledger sync``).  The signed manifest
records the number of people (``records.entities``) and ``records.entity_set_sha256`` = SHA-256
of the concatenated sorted keyed hashes, so the sealed list cannot be swapped later; without the
salt (inside the sealed list) the digest confirms no guess.

Sealed list (before age)::

    b"securexport.entity-set/1\\n" || salt (32 bytes) || n sorted 32-byte HMAC-SHA-256 values

The recipe that answers a breach from these lists is securexport.api.owner.breach_report.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass

from securexport._crypto import agefile
from securexport.errors import VerificationError

ENTITIES = "entities.age"
MAGIC = b"securexport.entity-set/1\n"
SALT_BYTES = 32
DIGEST_BYTES = 32  # HMAC-SHA256 of one entity id
HASH_BYTES = 32


def entity_text(value: object) -> str:
    """The entity id as text: the same rule for exported values and the owner's candidates."""
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


class EntityCollector:
    """Keyed hashes of the entity ids of the rows written (one per distinct entity)."""

    def __init__(self, salt: bytes | None = None) -> None:
        self.salt = os.urandom(SALT_BYTES) if salt is None else salt
        if len(self.salt) != SALT_BYTES:
            raise ValueError("the salt is 32 bytes")
        self._hashes: set[bytes] = set()
        self._key = hmac.HMAC(self.salt, digestmod=hashlib.sha256)

    def digest_of(self, value: object) -> bytes:
        """The keyed hash of one entity id (DIGEST_BYTES long)."""
        mac = self._key.copy()
        mac.update(entity_text(value).encode("utf-8"))
        return mac.digest()

    def add(self, value: object) -> None:
        self._hashes.add(self.digest_of(value))

    def add_digests(self, digests: bytes) -> None:
        """Add hashes from :meth:`digest_of`, concatenated."""
        if len(digests) % DIGEST_BYTES:
            raise ValueError("digests come in DIGEST_BYTES")
        self._hashes.update(
            digests[i : i + DIGEST_BYTES] for i in range(0, len(digests), DIGEST_BYTES)
        )

    def __len__(self) -> int:
        return len(self._hashes)

    def sorted_hashes(self) -> list[bytes]:
        return sorted(self._hashes)

    def digest(self) -> str:
        return set_digest(self.sorted_hashes())

    def sealed(self, owner_age: str) -> bytes:
        """The list, age-encrypted to the data owner."""
        return agefile.encrypt(MAGIC + self.salt + b"".join(self.sorted_hashes()), [owner_age])


def set_digest(sorted_hashes: Sequence[bytes]) -> str:
    return hashlib.sha256(b"".join(sorted_hashes)).hexdigest()


@dataclass(frozen=True)
class EntityList:
    salt: bytes
    hashes: frozenset[bytes]
    digest: str

    def keyed(self, candidate: str) -> bytes:
        return hmac.new(self.salt, candidate.encode("utf-8"), hashlib.sha256).digest()


def parse_entity_list(plain: bytes) -> EntityList:
    body = plain[len(MAGIC) :]
    if not plain.startswith(MAGIC) or len(body) < SALT_BYTES or len(body) % HASH_BYTES:
        raise VerificationError("the sealed entity list is malformed")
    salt, rest = body[:SALT_BYTES], body[SALT_BYTES:]
    hashes = [rest[i : i + HASH_BYTES] for i in range(0, len(rest), HASH_BYTES)]
    if hashes != sorted(set(hashes)):
        raise VerificationError("the sealed entity list is not sorted and distinct")
    return EntityList(salt, frozenset(hashes), set_digest(hashes))
