"""A small, complete securexport world for integration tests.

Roles each get their own home (as on separate machines): the data owner (approver), the
exporter, two recipients (a recipient and an auditor) and an outsider.  Key files use a low
scrypt cost (each Environment is built with ``scrypt_log_n=TEST_LOG_N``), so tests stay fast;
production key files always use log_n = 18.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from securexport import api
from securexport.environment import Environment, Home
from securexport.home.keystore import KeyStore, PublicIdentity
from securexport.home.truststore import TrustStore

FIXED_NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
TEST_LOG_N = 10


def make_env(
    root: Path, role: str, passphrase_file: Path, now: datetime = FIXED_NOW
) -> Environment:
    home = Home(root / "homes" / role).ensure()
    return Environment(
        home=home,
        now=lambda: now,
        stdin_isatty=False,
        stderr=io.StringIO(),
        interactive=False,
        passphrase_file=str(passphrase_file),
        keystore="file",
        scrypt_log_n=TEST_LOG_N,
    )


DEFAULT_COLUMNS = """
[[column]]
name      = "offender"
source    = "offender_id"
transform = "pseudonym"
role      = "identifier"

[[column]]
name        = "birth_year"
source      = "date_of_birth"
transform   = "date_trunc"
granularity = "year"

[[column]]
name      = "district"
source    = "postcode"
transform = "postcode_trunc"
level     = "area"
on_invalid = "null"

[[column]]
name      = "convictions"
source    = "conviction_count"
transform = "top_code"
max       = 30
role      = "sensitive"

[[column]]
name        = "release_quarter"
source      = "release_date"
transform   = "date_trunc"
granularity = "year"
"""

DEFAULT_PRIVACY = """
[privacy]
quasi_identifiers = ["birth_year", "district", "release_quarter"]
k = 3
on_violation = "suppress"
max_suppressed_fraction = 0.9
"""


@dataclass
class World:
    root: Path
    db_path: Path
    owner: Environment
    exporter: Environment
    recipient: Environment
    auditor: Environment
    outsider: Environment
    ids: dict[str, PublicIdentity] = field(default_factory=dict)
    key_check: str = ""
    ledger_vkey: str = ""
    counter: int = 0

    @property
    def source_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def approval_text(
        self,
        *,
        approval_id: str = "APR-2026-0042",
        not_before: str = "2026-01-01T00:00:00Z",
        expires: str = "2027-01-31T23:59:59Z",
        max_runs: int | None = 12,
        filters: str = '[[source.filter]]\ncolumn = "force_code"\nop = "eq"\nvalue = "WMP"\n',
        row_cap: int = 100000,
        min_rows: int = 1,
        columns: str = DEFAULT_COLUMNS,
        privacy: str = DEFAULT_PRIVACY,
        output_format: str = "csv",
        exporter_key: str | None = None,
        extra: str = "",
        pseudonym: bool = True,
    ) -> str:
        exporter = self.ids["exporter"]
        runs = f"max_runs    = {max_runs}\n" if max_runs is not None else ""
        pseudo = (
            f'[pseudonymisation]\nkey_id = "test-key"\nkey_check = "{self.key_check}"\n'
            if pseudonym
            else ""
        )
        return f'''schema = "securexport.approval/1"

[approval]
id          = "{approval_id}"
title       = "Test extract"
purpose     = "Integration test."
legal_basis = "DPA 2018 Part 3 s.35"
not_before  = {not_before}
expires     = {expires}
{runs}
[source]
dataset = "offenders"
entity  = "offender_id"

{filters}
[limits]
row_cap  = {row_cap}
min_rows = {min_rows}

{pseudo}
{columns}
{privacy}
[output]
format = "{output_format}"

[[recipients]]
name = "force"
age  = "{self.ids["recipient"].age_recipient}"

[[auditors]]
name = "audit"
age  = "{self.ids["auditor"].age_recipient}"

[[exporters]]
name   = "analyst"
ssh    = "{exporter_key or exporter.signing_key.to_line()}"
age    = "{exporter.age_recipient}"
ledger = "{self.ledger_vkey}"
{extra}
'''

    def write_approval(
        self, text: str | None = None, *, sign: bool = True, name: str | None = None, **kwargs: Any
    ) -> Path:
        self.counter += 1
        path = self.root / (name or f"approval-{self.counter}.toml")
        path.write_text(text if text is not None else self.approval_text(**kwargs))
        if sign:
            api.sign_approval(self.owner, path, "owner")
        return path

    def plant_canary(self) -> tuple[bytes, Path]:
        """A unique value in the names and notes of every WMP row, and a signed approval that
        exports both as they are: (the canary's bytes, the approval)."""
        canary = "CANARY-" + hashlib.sha256(os.urandom(16)).hexdigest()[:24]
        with sqlite3.connect(self.db_path) as conn:
            conn.execute(
                "UPDATE offenders SET notes = ?, full_name = ? WHERE force_code = 'WMP'",
                (canary, canary),
            )
            planted = conn.execute("SELECT count(*) FROM offenders WHERE notes = ?", (canary,))
            assert planted.fetchone()[0] > 100
        conn.close()
        columns = (
            '[[column]]\nname = "notes"\nsource = "notes"\ntransform = "keep"\n'
            'role = "sensitive"\n'
            '[[column]]\nname = "name"\nsource = "full_name"\ntransform = "keep"\n'
            'role = "sensitive"\n'
        )
        approval = self.write_approval(columns=columns, privacy="", pseudonym=False)
        return canary.encode(), approval

    def export(self, approval: Path | None = None, *, out: Path | None = None) -> api.ExportResult:
        self.counter += 1
        approval = approval or self.write_approval()
        out = out or self.root / f"bundle-{self.counter}.sxb"
        return api.export(self.exporter, approval, self.source_url, "analyst", out)


def build_world(root: Path, db_template: Path, passphrase_file: Path) -> World:
    db_path = root / "offenders.db"
    shutil.copyfile(db_template, db_path)
    envs = {
        role: make_env(root, role, passphrase_file)
        for role in ("owner", "exporter", "recipient", "auditor", "outsider")
    }
    world = World(root=root, db_path=db_path, **envs)
    names = {
        "owner": "owner",
        "exporter": "analyst",
        "recipient": "force",
        "auditor": "audit",
        "outsider": "stranger",
    }
    for role, name in names.items():
        world.ids[role] = KeyStore(envs[role], scrypt_log_n=TEST_LOG_N).create_identity(name)
    owner_key = world.ids["owner"].signing_key.to_line("owner")
    for role in names:
        TrustStore(envs[role].home).add("owner", owner_key, "approver")
    world.key_check = KeyStore(world.owner, scrypt_log_n=TEST_LOG_N).create_pseudonym_key(
        "test-key"
    )
    world.ledger_vkey = api.ledger_verifier_key(world.exporter)
    approval = world.write_approval(name="pk-approval.toml")
    blob = api.export_pseudonym_key(
        world.owner, "test-key", world.ids["exporter"].age_recipient, approval
    )
    KeyStore(world.exporter, scrypt_log_n=TEST_LOG_N).import_pseudonym_key(blob)
    return world


WorldFactory = Callable[[], World]
