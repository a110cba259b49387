"""The ledger and the witness mirrors this installation opens.

The ledger is ``$SECUREXPORT_HOME/ledger.db``, or the team's PostgreSQL ledger named by
``--ledger URL`` or ``[ledger] url`` in config.toml (securexport.home.config).  A data owner's
witness keeps one mirror per log it witnesses, ``witness/<origin>.db``.
"""

from __future__ import annotations

from securexport.environment import Environment
from securexport.errors import UsageError
from securexport.home.config import ledger_url
from securexport.home.truststore import TrustStore
from securexport.ledger.log import Ledger
from securexport.ledger.log import open_ledger as open_ledger_at
from securexport.ledger.mirror import Mirror


def open_ledger(env: Environment) -> Ledger:
    """This installation's export register (the home is created if it is new)."""
    env.home.ensure()
    return open_ledger_at(env.home.ledger_path, ledger_url(env))


def open_mirror(env: Environment, log: str) -> Mirror:
    """The witness mirror of the trusted ledger named ``log``, which must exist already."""
    _, origin = TrustStore(env.home).ledger_origin(log)
    path = env.home.mirror_path(origin)
    if not path.exists():
        raise UsageError(f"this witness has no mirror of {log}", hint="securexport ledger witness")
    return Mirror(path)
