"""Writes the demo approval, filling in the keys the demo just created."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

out = Path(sys.argv[1])
key_check = sys.argv[2]
sx = sys.argv[3] if len(sys.argv) > 3 else ".venv/bin/securexport"


def show(home: str, name: str) -> dict[str, str]:
    result = subprocess.run(
        [sx, "--home", str(out / "homes" / home), "--json", "keys", "show", name],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout)


analyst = show("exporter", "pa-analyst")
force = show("wmp-iom", "wmp-iom")
probation = show("nps-wm", "nps-wm")
audit = show("wmp-audit", "wmp-audit")
ledger_key = (out / "exporter-ledger.vkey").read_text().strip()
witness_key = (out / "owner-witness.vkey").read_text().strip()
owner = show("owner", "home-office-iao")

print(f'''schema = "securexport.approval/1"

[approval]
id          = "APR-2026-0042"
title       = "PPO extract for a force's offender-management unit"
purpose     = "Monthly list of prolific offenders released in the force area, for caseload tasking."
legal_basis = "DPA 2018 Part 3 s.35"
not_before  = 2026-01-01T00:00:00Z
expires     = 2027-01-31T23:59:59Z
max_runs    = 12

[source]
dataset  = "offenders"
entity   = "offender_id"
database_id = "offender-tracking-demo"

[[source.filter]]
column = "force_code"
op     = "eq"
value  = "WMP"

[[source.filter]]
column = "release_date"
op     = "not_null"

[limits]
row_cap  = 20000
min_rows = 10

[pseudonymisation]
key_id    = "wmp-iom-2026"
key_check = "{key_check}"

[[column]]
name      = "offender"
source    = "offender_id"
transform = "pseudonym"
role      = "identifier"
justification = "links monthly extracts for the same person without revealing the PNC id"

[[column]]
name      = "age_band"
source    = "date_of_birth"
transform = "age_band"
width     = 10
top_code  = 70

[[column]]
name      = "area"
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
name        = "release_year"
source      = "release_date"
transform   = "date_trunc"
granularity = "year"

[privacy]
quasi_identifiers = ["age_band", "area", "release_year"]
k = 5
on_violation = "suppress"
max_suppressed_fraction = 0.05

[output]
format = "csv"

[[recipients]]
name = "wmp-iom"
age  = "{force["age_recipient"]}"

[[recipients]]
name = "nps-wm"
age  = "{probation["age_recipient"]}"

[[auditors]]
name = "wmp-audit"
age  = "{audit["age_recipient"]}"

[[exporters]]
name   = "pa-analyst"
ssh    = "{analyst["signing_key"]}"
age    = "{analyst["age_recipient"]}"
ledger = "{ledger_key}"

[witness]
key      = "{witness_key}"
required = true

[owner]
name = "home-office-iao"
age  = "{owner["age_recipient"]}"

[conditions]
retention      = "Delete 90 days after receipt."
onward_sharing = "None without the data owner's written agreement."
''')
