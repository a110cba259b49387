"""``$SECUREXPORT_HOME/config.toml``: the installation's settings, read in one place.

Known settings: ``[ledger] url`` (a shared PostgreSQL ledger).  ``[keys] scrypt_log_n`` was a
setting once; it is refused now, never ignored (key files always cost scrypt 2^18).
"""

from __future__ import annotations

import tomllib
from typing import Any

from securexport.environment import Environment, Home
from securexport.errors import FileError, UsageError


def read_config(home: Home) -> dict[str, Any]:
    """The parsed config.toml ({} when there is none); a damaged file is a FileError."""
    path = home.config_path
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read {path}: {exc}") from exc


def ledger_url(env: Environment) -> str | None:
    """The team ledger's URL, if this installation uses one instead of ``ledger.db``.

    ``--ledger URL`` wins; else ``[ledger] url = "postgresql+psycopg://USER@HOST/DB"`` in
    ``$SECUREXPORT_HOME/config.toml``; else None (the home's SQLite ledger).
    """
    if env.ledger_url:
        return env.ledger_url
    section = read_config(env.home).get("ledger", {})
    url = section.get("url") if isinstance(section, dict) else None
    if url is not None and (not isinstance(url, str) or not url):
        raise UsageError(f"{env.home.config_path}: ledger.url must be a non-empty string")
    return url


def refuse_kdf_setting(home: Home) -> None:
    """An old config.toml may still try to lower the key-file cost: say so, don't ignore it."""
    if "scrypt_log_n" in read_config(home).get("keys", {}):
        raise UsageError(
            f"{home.config_path}: [keys] scrypt_log_n is not a setting: key files always "
            "use scrypt with work factor 2^18",
            hint="remove the line",
        )
