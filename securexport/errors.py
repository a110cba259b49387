"""One exception root, one exit code per fault domain (DESIGN.md §7).

Every error securexport raises on purpose is a :class:`SecurexportError`.  It carries a one-line
``message`` (never a record value), an optional ``hint`` telling the user what to do next, and an
``exit_code``.  The CLI prints ``securexport: error: …`` / ``securexport: hint: …`` and exits
with the code; anything else is a bug and exits 1.
"""

from __future__ import annotations


class SecurexportError(Exception):
    """Root of every deliberate securexport failure."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(SecurexportError):
    """The command line or an argument is wrong."""

    exit_code = 2


class PolicyError(SecurexportError):
    """An approval does not authorise this run (signature, trust, validity, limits, k, schema)."""

    exit_code = 3


class ApprovalError(PolicyError):
    """An approval file is malformed or breaks the schema (reported with key path and line)."""


class KeyUnavailableError(SecurexportError):
    """A key is missing or unusable: none of ours is a recipient, wrong passphrase, no store."""

    exit_code = 4


class VerificationError(SecurexportError):
    """A bundle, receipt, signature or ledger failed verification (tampered, untrusted, unlogged)."""

    exit_code = 5


class SourceError(SecurexportError):
    """The source database refused, failed, or does not have what the approval names."""

    exit_code = 6


class FileError(SecurexportError):
    """A file could not be read or written (permissions, disk full, exists already)."""

    exit_code = 7


class Interrupted(SecurexportError):
    """The run was interrupted (SIGINT/SIGTERM); partial output has been removed."""

    exit_code = 130
