"""The library users call: one module per command group; the CLI is one client of it.

Every recipe takes an :class:`~securexport.environment.Environment` first (clock, streams,
home, passphrase source, key cost) and returns a typed result (``to_json`` where the CLI prints
one) or raises a :class:`~securexport.errors.SecurexportError`.

    from securexport import api
    from securexport.environment import Environment

    env = Environment.from_os()
    result = api.export(env, Path("a.toml"), "sqlite:///offenders.db", "analyst", Path("x.sxb"))

The names below are this package's public surface, each defined in the module named beside it
and imported on first use (PEP 562), so that ``securexport --version`` and commands that need
little start fast.  Patch a name where it is defined, never here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {
    # approvals
    "ApprovalCheck": "approvals",
    "check_approval": "approvals",
    "init_approval": "approvals",
    "sign_approval": "approvals",
    "write_approval_template": "approvals",
    # plan
    "PlanReport": "planning",
    "plan": "planning",
    # export
    "ExportResult": "exporting",
    "export": "exporting",
    # a bundle's life
    "DecryptResult": "bundles",
    "InspectedColumn": "bundles",
    "Inspection": "bundles",
    "Verdict": "bundles",
    "decrypt": "bundles",
    "inspect": "bundles",
    "verify": "bundles",
    # keys
    "create_identity": "keys",
    "create_pseudonym_key": "keys",
    "delete_identity": "keys",
    "export_pseudonym_key": "keys",
    "import_pseudonym_key": "keys",
    "list_identities": "keys",
    "public_identity": "keys",
    "write_pseudonym_key": "keys",
    # trust
    "trust_add": "trust",
    "trust_list": "trust",
    "trust_remove": "trust",
    # the ledger
    "EntryDetail": "ledger",
    "EntrySummary": "ledger",
    "LedgerAudit": "ledger",
    "ledger_checkpoint": "ledger",
    "ledger_entries": "ledger",
    "ledger_prove": "ledger",
    "ledger_show": "ledger",
    "ledger_verifier_key": "ledger",
    "ledger_verify": "ledger",
    # the witness
    "CosignResult": "witnessing",
    "SyncWritten": "witnessing",
    "WitnessReport": "witnessing",
    "cosign_bundle": "witnessing",
    "witness": "witnessing",
    "witness_verifier_key": "witnessing",
    "write_sync": "witnessing",
    # the data owner
    "BreachReport": "owner",
    "breach_report": "owner",
    "import_revocation": "owner",
    "list_revocations": "owner",
    "revoke": "owner",
    # the demo database (synthetic data for the README's tour)
    "DemoDatabase": "demo",
    "make_demo_db": "demo",
}

if TYPE_CHECKING:
    from securexport.api.approvals import (
        ApprovalCheck,
        check_approval,
        init_approval,
        sign_approval,
        write_approval_template,
    )
    from securexport.api.bundles import (
        DecryptResult,
        InspectedColumn,
        Inspection,
        Verdict,
        decrypt,
        inspect,
        verify,
    )
    from securexport.api.demo import DemoDatabase, make_demo_db
    from securexport.api.exporting import ExportResult, export
    from securexport.api.keys import (
        create_identity,
        create_pseudonym_key,
        delete_identity,
        export_pseudonym_key,
        import_pseudonym_key,
        list_identities,
        public_identity,
        write_pseudonym_key,
    )
    from securexport.api.ledger import (
        EntryDetail,
        EntrySummary,
        LedgerAudit,
        ledger_checkpoint,
        ledger_entries,
        ledger_prove,
        ledger_show,
        ledger_verifier_key,
        ledger_verify,
    )
    from securexport.api.owner import (
        BreachReport,
        breach_report,
        import_revocation,
        list_revocations,
        revoke,
    )
    from securexport.api.planning import PlanReport, plan
    from securexport.api.trust import trust_add, trust_list, trust_remove
    from securexport.api.witnessing import (
        CosignResult,
        SyncWritten,
        WitnessReport,
        cosign_bundle,
        witness,
        witness_verifier_key,
        write_sync,
    )
else:

    def __getattr__(name: str) -> object:
        module = _WHERE.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value


__all__ = [
    "ApprovalCheck",
    "BreachReport",
    "CosignResult",
    "DecryptResult",
    "DemoDatabase",
    "EntryDetail",
    "EntrySummary",
    "ExportResult",
    "InspectedColumn",
    "Inspection",
    "LedgerAudit",
    "PlanReport",
    "SyncWritten",
    "Verdict",
    "WitnessReport",
    "breach_report",
    "check_approval",
    "cosign_bundle",
    "create_identity",
    "create_pseudonym_key",
    "decrypt",
    "delete_identity",
    "export",
    "export_pseudonym_key",
    "import_pseudonym_key",
    "import_revocation",
    "init_approval",
    "inspect",
    "ledger_checkpoint",
    "ledger_entries",
    "ledger_prove",
    "ledger_show",
    "ledger_verifier_key",
    "ledger_verify",
    "list_identities",
    "list_revocations",
    "make_demo_db",
    "plan",
    "public_identity",
    "revoke",
    "sign_approval",
    "trust_add",
    "trust_list",
    "trust_remove",
    "verify",
    "witness",
    "witness_verifier_key",
    "write_approval_template",
    "write_pseudonym_key",
    "write_sync",
]
