"""Trust: which approvers (allowed_signers) and ledgers (verifier keys) this installation trusts.

The store itself is securexport.home.truststore; these are the recipes ``trust`` calls.
"""

from __future__ import annotations

from pathlib import Path

from securexport.environment import Environment
from securexport.fsutil import read_limited
from securexport.home.truststore import TrustedKey, TrustStore
from securexport.limits import DEFAULT_LIMITS, Limits


def _store(env: Environment) -> TrustStore:
    return TrustStore(env.home.ensure())


def trust_add(
    env: Environment, name: str, key: str, role: str, limits: Limits = DEFAULT_LIMITS
) -> TrustedKey:
    """Trust ``key`` as ``name`` in ``role``: an ``ssh-ed25519 …`` line, a ledger verifier key,
    or the path of a file holding one."""
    path = Path(key)
    text = key
    if not key.startswith("ssh-") and path.is_file():
        text = read_limited(path, limits.max_key_file_bytes, "key file").decode(
            "utf-8", errors="replace"
        )
    return _store(env).add(name, text, role)


def trust_list(env: Environment) -> list[TrustedKey]:
    return _store(env).list()


def trust_remove(env: Environment, name: str) -> TrustedKey:
    """Stop trusting ``name``; returns what was removed."""
    return _store(env).remove(name)
