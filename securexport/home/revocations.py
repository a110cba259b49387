"""The revocations imported into this home: ``$SECUREXPORT_HOME/revocations/<sha256>.json``
with ``<sha256>.json.sig`` beside it (the document format is securexport.policy.revocation)."""

from __future__ import annotations

import hashlib

from securexport.environment import Home
from securexport.errors import FileError, VerificationError
from securexport.fsutil import atomic_write, ensure_private_dir
from securexport.policy.revocation import Revocation, Revocations, verify_revocation


class RevocationStore:
    """The revocations imported into one home."""

    def __init__(self, home: Home) -> None:
        self._dir = home.revocations_dir

    def add(self, raw: bytes, signature: bytes) -> bool:
        """Store a verified revocation; False if it was there already."""
        digest = hashlib.sha256(raw).hexdigest()
        path = self._dir / f"{digest}.json"
        if path.exists():
            return False
        ensure_private_dir(self._dir)
        atomic_write(path.with_name(path.name + ".sig"), signature)
        atomic_write(path, raw)
        return True

    def load(self) -> list[Revocation]:
        """Every stored revocation, signatures re-checked (a damaged one is an error)."""
        if not self._dir.exists():
            return []
        found = []
        for path in sorted(self._dir.glob("*.json")):
            try:
                raw = path.read_bytes()
                signature = path.with_name(path.name + ".sig").read_bytes()
            except OSError as exc:
                raise FileError(f"cannot read the revocation {path}: {exc.strerror}") from exc
            try:
                revocation, _ = verify_revocation(raw, signature, None)
            except VerificationError as exc:
                raise FileError(
                    f"the stored revocation {path} is damaged ({exc.message})",
                    hint="import it again from the approver's file, or remove it knowingly",
                ) from exc
            if revocation.sha256 != path.stem:
                raise FileError(f"the stored revocation {path} is damaged (name)")
            found.append(revocation)
        return found


def load_revocations(home: Home) -> Revocations:
    """Every revocation imported into ``home``, ready to check against."""
    return Revocations(tuple(RevocationStore(home).load()))
