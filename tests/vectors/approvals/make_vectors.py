"""Generator for tests/vectors/approvals: python tests/vectors/approvals/make_vectors.py

Each case = base.toml (or minimal.toml) + exact, once-only text edits.  The expected line is
found by searching the *generated* text for a marker, never by running the parser.
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
BASE = (HERE / "ok_full.toml").read_text()  # hand-written; written back unchanged below
ZERO_SSH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
SSH1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFI96zQ6hQPFAtTYG9Ptq0fa5pm04tdOnr51XD55ypJn analyst@laptop"
AGE_A = "age12mr0xr8zyx0qmkwnaglmzmpchdzft8dsncad3khv4nv4pqztvqgqy55ec9"
AGE_B = "age1yf4cm26r4pcjspns8glyu4ylnlavr63dr50hxk3tazycszugrgcs6g474q"
AGE_ZERO = (
    "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z"  # Bech32 of 32 zero bytes
)

MINIMAL = f'''# The smallest valid approval: only required keys.
schema = "securexport.approval/1"

[approval]
id = "A1"
title = "t"
purpose = "p"
legal_basis = "b"
not_before = 2026-01-01T00:00:00Z
expires = 2026-01-01T00:00:00Z

[source]
dataset = "people"
entity = "person_id"

[limits]
row_cap = 1

[[column]]
name = "year"
source = "dob"
transform = "date_trunc"
granularity = "year"

[[recipients]]
name = "r"
age = "{AGE_A}"

[[exporters]]
name = "e"
ssh = "{SSH1}"
'''

cases = []


def case(
    name,
    edits=(),
    *,
    outcome="error",
    message=None,
    line=None,
    base=BASE,
    note="",
    max_bytes=None,
    raw=None,
):
    text = base
    for old, new in edits:
        assert text.count(old) == 1, (name, old, text.count(old))
        text = text.replace(old, new)
    data = raw if raw is not None else text.encode()
    expected_line = None
    if line is not None:
        marker, delta = (line, 0) if isinstance(line, str) else line
        pos = data.find(marker.encode() if isinstance(marker, str) else marker)
        assert pos >= 0, (name, marker)
        expected_line = data.count(b"\n", 0, pos) + 1 + delta
    cases.append((name, data, outcome, message, expected_line, note, max_bytes))


# ---- valid ---------------------------------------------------------------------------------
case("ok_full", outcome="ok", note="every section, every transform, every filter form")
case("ok_minimal", base=MINIMAL, outcome="ok", note="required keys only")
case("ok_crlf", outcome="ok", raw=BASE.replace("\n", "\r\n").encode(), note="CRLF line endings")
case(
    "ok_inline_array_of_tables",
    base=MINIMAL,
    outcome="ok",
    edits=[
        ('[[recipients]]\nname = "r"\nage = "' + AGE_A + '"\n', ""),
        (
            'schema = "securexport.approval/1"\n',
            'schema = "securexport.approval/1"\nrecipients = [\n  { name = "r", age = "'
            + AGE_A
            + '" },\n]\n',
        ),
    ],
    note="recipients written as an inline array of inline tables",
)
case(
    "ok_offsets_and_fraction_int",
    outcome="ok",
    edits=[
        ("not_before  = 2026-01-01T00:00:00Z", "not_before  = 2025-12-31T19:00:00-05:00"),
        ("max_suppressed_fraction = 0.050", "max_suppressed_fraction = 1"),
    ],
    note="negative offset; an int fraction",
)

# ---- encoding, size, syntax -----------------------------------------------------------------
case(
    "err_not_utf8",
    raw=BASE.replace('title       = "PPO', 'title       = "P\udcffO').encode(
        "utf-8", "surrogateescape"
    ),
    message="not valid UTF-8",
    line="title       =",
    note="a 0xff byte inside the title",
)
case(
    "err_bom",
    raw=b"\xef\xbb\xbf" + BASE.encode(),
    message="byte-order mark",
    line="# A complete",
    note="UTF-8 BOM before the first line",
)
case(
    "err_oversize",
    max_bytes=1024,
    message="more than the limit of 1024",
    note="the base file with max_bytes = 1024",
)
case(
    "err_toml_syntax",
    edits=[("[limits]", "[limits")],
    message="invalid TOML",
    line="[limits",
    note="unclosed table header",
)
case(
    "err_toml_duplicate_key",
    edits=[("row_cap  = 5000", "row_cap  = 5000\nrow_cap = 6000")],
    message="invalid TOML: Cannot overwrite a value",
    line="row_cap = 6000",
)
case(
    "err_float_out_of_range",
    edits=[("value  = 0.75", "value  = 1e1000000000000000000")],
    message="out of range",
    line="1e1000000000000000000",
)

# ---- schema -------------------------------------------------------------------------------------
case(
    "err_schema_missing",
    edits=[('schema = "securexport.approval/1"\n', "")],
    message='missing required key "schema"',
    note="no line: the key is absent",
)
case(
    "err_schema_version",
    edits=[('schema = "securexport.approval/1"', 'schema = "securexport.approval/2"')],
    message='"schema": must be "securexport.approval/1"',
    line="schema =",
)

# ---- unknown keys, every location ------------------------------------------------------------
case(
    "err_unknown_top_level_key",
    edits=[('schema = "securexport.approval/1"', 'schema = "securexport.approval/1"\nversion = 2')],
    message='unknown key "version" at the top level',
    line="version = 2",
)
case(
    "err_unknown_top_level_table",
    edits=[("[output]", "[outputs]")],
    message='unknown key "outputs" at the top level',
    line="[outputs]",
)
case(
    "err_unknown_approval_key",
    edits=[("max_runs    = 12", 'max_runs    = 12\nowner = "me"')],
    message='[approval]: unknown key "owner"',
    line="owner =",
)
case(
    "err_unknown_source_key",
    edits=[('entity        = "offender_id"', 'entity        = "offender_id"\nwhere = "1=1"')],
    message='[source]: unknown key "where"',
    line="where =",
)
case(
    "err_unknown_filter_key",
    edits=[('op     = "is_null"', 'op     = "is_null"\nnegate = true')],
    message='[[source.filter]] #5: unknown key "negate"',
    line="negate =",
)
case(
    "err_unknown_relative_date_key",
    edits=[("days = -365 }", "days = -365, hours = 2 }")],
    message='unknown key "hours"',
    line="hours = 2",
)
case(
    "err_unknown_limits_key",
    edits=[("min_rows = 10", "min_rows = 10\nmax_rows = 9")],
    message='[limits]: unknown key "max_rows"',
    line="max_rows =",
)
case(
    "err_unknown_pseudonymisation_key",
    edits=[('domain    = "wmp-iom"', 'domain    = "wmp-iom"\nsalt = "x"')],
    message='[pseudonymisation]: unknown key "salt"',
    line="salt =",
)
case(
    "err_unknown_column_key",
    edits=[('granularity = "year"', 'granularty = "year"')],
    message='[[column]] #2 "birth_year": unknown key "granularty"',
    line="granularty",
    note="the example from the brief; the hint suggests granularity",
)
case(
    "err_unknown_privacy_key",
    edits=[("k                       = 5", "k                       = 5\nl = 2")],
    message='[privacy]: unknown key "l"',
    line="l = 2",
)
case(
    "err_unknown_output_key",
    edits=[('format = "jsonl"', 'format = "jsonl"\ndelimiter = ";"')],
    message='[output]: unknown key "delimiter"',
    line="delimiter",
)
case(
    "err_unknown_recipient_key",
    edits=[('name = "wmp-iom"', 'name = "wmp-iom"\nemail = "x@example.org"')],
    message='[[recipients]] #1: unknown key "email"',
    line="email =",
)
case(
    "err_unknown_auditor_key",
    edits=[('name = "dpo.office@example.gov.uk"', 'name = "dpo.office@example.gov.uk"\nssh = "x"')],
    message='[[auditors]] #1: unknown key "ssh"',
    line=('ssh = "x"', 0),
)
case(
    "err_unknown_exporter_key",
    edits=[('name = "pa-analyst-2"', 'name = "pa-analyst-2"\nrole = "admin"')],
    message='[[exporters]] #2: unknown key "role"',
    line='role = "admin"',
)
case(
    "err_unknown_witness_key",
    edits=[("required = true", 'required = true\nurl = "https://w.example"')],
    message='[witness]: unknown key "url"',
    line="url =",
)
case(
    "err_unknown_conditions_key",
    edits=[('onward_sharing = "None."', 'onward_sharing = "None."\nnotes = "x"')],
    message='[conditions]: unknown key "notes"',
    line="notes =",
)
case(
    "err_param_of_other_transform",
    edits=[("max       = 30", "max       = 30\nwidth     = 5")],
    message='key "width" is not a parameter of transform "top_code"',
    line="width     = 5",
)
case(
    "err_mapping_subtable_value",
    edits=[
        ('mapping   = { "M" = "male", "F" = "female" }\n', ""),
        ('default   = "other"\n', 'default   = "other"\n\n[column.mapping]\nM = "male"\nF = 2\n'),
    ],
    message='"mapping.F": expected a string, got an integer',
    line="F = 2",
    note="mapping given as a [column.mapping] sub-table of the 7th column",
)

# ---- missing keys ---------------------------------------------------------------------------
case(
    "err_missing_expires",
    edits=[("expires     = 2027-01-31T23:59:59+01:00\n", "")],
    message='[approval]: missing required key "expires"',
    line="[approval]",
)
case(
    "err_missing_limits_table",
    edits=[("[limits]\nrow_cap  = 5000\nmin_rows = 10\n", "")],
    message="missing required table [limits]",
    note="no line: the table is absent",
)
case(
    "err_missing_column_source",
    edits=[('source    = "postcode"\n', "")],
    message='[[column]] #3 "district": missing required key "source"',
    line=('name      = "district"', -1),
)
case(
    "err_missing_transform_param",
    edits=[('level     = "district"\n', "")],
    message='missing required key "level" for transform "postcode_trunc"',
    line=('name      = "district"', -1),
)
case(
    "err_no_exporters",
    base=MINIMAL,
    edits=[('[[exporters]]\nname = "e"\nssh = "' + SSH1 + '"\n', "")],
    message="missing required array of tables [[exporters]]",
)
case(
    "err_column_not_array",
    base=MINIMAL,
    edits=[("[[column]]", "[column]")],
    message='"column": expected an array of tables [[column]], got a table',
    line="[column]",
)

# ---- types and ranges -----------------------------------------------------------------------
case(
    "err_row_cap_string",
    edits=[("row_cap  = 5000", 'row_cap  = "5000"')],
    message='[limits]: "row_cap": expected an integer, got a string',
    line="row_cap",
)
case(
    "err_row_cap_zero",
    edits=[("row_cap  = 5000", "row_cap  = 0")],
    message="must be at least 1",
    line="row_cap",
)
case(
    "err_row_cap_bool",
    edits=[("row_cap  = 5000", "row_cap  = true")],
    message="expected an integer, got a boolean",
    line="row_cap",
)
case(
    "err_row_cap_float",
    edits=[("row_cap  = 5000", "row_cap  = 5000.0")],
    message="expected an integer, got a float",
    line="row_cap",
)
case(
    "err_min_rows_above_cap",
    edits=[("min_rows = 10", "min_rows = 5001")],
    message="more than row_cap (5000)",
    line="min_rows",
)
case(
    "err_max_runs_zero",
    edits=[("max_runs    = 12", "max_runs    = 0")],
    message='"max_runs": must be at least 1',
    line="max_runs",
)
case(
    "err_approval_id_lowercase",
    edits=[('id          = "APR-2026-0042"', 'id          = "apr-2026-0042"')],
    message="is not an approval id",
    line="id          =",
)
case(
    "err_title_blank",
    edits=[
        (
            'title       = "PPO extract for a force\'s offender-management unit"',
            'title       = "   "',
        )
    ],
    message='"title": must not be empty',
    line="title",
)
case(
    "err_title_nul",
    edits=[('offender-management unit"', 'offender-management unit\\u0000"')],
    message="control or bidi character U+0000",
    line="title",
)
case(
    "err_title_bidi_override",
    edits=[('offender-management unit"', 'offender-management \\u202eunit"')],
    message="U+202E",
    line="title",
)
case(
    "err_title_escape_sequence",
    edits=[('offender-management unit"', '\\u001b[2Joffender-management unit"')],
    message="U+001B",
    line="title",
    note="an ANSI escape that would clear the approver's terminal",
)
case(
    "err_output_format",
    edits=[('format = "jsonl"', 'format = "xml"')],
    message='"xml" is not one of "csv", "jsonl"',
    line='format = "xml"',
)
case(
    "err_approval_not_table",
    base=MINIMAL,
    edits=[("[approval]\n", "approval = 1\n[x]\n")],
    message='unknown key "x"',
    line="[x]",
    note="unknown keys are reported before types",
)

# ---- dates ----------------------------------------------------------------------------------
case(
    "err_not_before_local_datetime",
    edits=[("not_before  = 2026-01-01T00:00:00Z", "not_before  = 2026-01-01T00:00:00")],
    message='"not_before": is a local date-time without an offset',
    line="not_before",
)
case(
    "err_expires_date_only",
    edits=[("expires     = 2027-01-31T23:59:59+01:00", "expires     = 2027-01-31")],
    message='"expires": is a date without a time and an offset',
    line="expires",
)
case(
    "err_expires_string",
    edits=[("expires     = 2027-01-31T23:59:59+01:00", 'expires     = "2027-01-31T23:59:59Z"')],
    message="expected an offset date-time, got a string",
    line="expires",
)
case(
    "err_expires_before_not_before",
    edits=[("expires     = 2027-01-31T23:59:59+01:00", "expires     = 2025-12-31T23:59:59Z")],
    message="is before not_before",
    line="expires",
)
case(
    "err_window_inverted_by_offset",
    edits=[("expires     = 2027-01-31T23:59:59+01:00", "expires     = 2026-01-01T00:30:00+01:00")],
    message="is before not_before",
    line="expires",
    note="00:30+01:00 is 23:30Z the day before",
)

# ---- identifiers (SQL injection and lookalikes) ----------------------------------------------
case(
    "err_dataset_injection",
    edits=[('dataset       = "offenders"', 'dataset       = "offenders; DROP TABLE x"')],
    message='"dataset": "offenders; DROP TABLE x" is not a plain SQL identifier',
    line="dataset",
)
case(
    "err_dataset_dotted",
    edits=[('dataset       = "offenders"', 'dataset       = "public.offenders"')],
    message="is not a plain SQL identifier",
    line="dataset",
)
case(
    "err_entity_quoted",
    edits=[('entity        = "offender_id"', 'entity        = "\\"offender_id\\""')],
    message='"entity": "\\"offender_id\\"" is not a plain SQL identifier',
    line="entity",
)
case(
    "err_entity_comment",
    edits=[('entity        = "offender_id"', 'entity        = "offender_id--"')],
    message="is not a plain SQL identifier",
    line="entity",
)
case(
    "err_column_source_cyrillic",
    edits=[('source    = "postcode"', 'source    = "p\u043estcode"')],
    message='"source": "p\u043estcode" is not a plain SQL identifier',
    line="p\u043estcode",
    note="U+043E CYRILLIC SMALL LETTER O in place of o",
)
case(
    "err_column_source_fullwidth",
    edits=[('source    = "sex_code"', 'source    = "sex\uff3fcode"')],
    message="is not a plain SQL identifier",
    line="sex\uff3fcode",
    note="U+FF3F FULLWIDTH LOW LINE",
)
case(
    "err_column_source_trailing_newline",
    edits=[('source    = "sex_code"', 'source    = "sex_code\\n"')],
    message="is not a plain SQL identifier",
    line='source    = "sex_code',
    note="regex $ would accept this; fullmatch must not",
)
case(
    "err_filter_column_injection",
    edits=[('column = "force_code"', 'column = "force_code OR 1=1"')],
    message='[[source.filter]] #1: "column": "force_code OR 1=1" is not a plain SQL identifier',
    line="force_code OR",
)
case(
    "err_identifier_starts_digit",
    edits=[('dataset       = "offenders"', 'dataset       = "1offenders"')],
    message="is not a plain SQL identifier",
    line="dataset",
)
case(
    "err_identifier_too_long",
    edits=[('dataset       = "offenders"', 'dataset       = "' + "a" * 64 + '"')],
    message="is not a plain SQL identifier",
    line="dataset",
    note="64 characters; PostgreSQL keeps 63",
)
case(
    "err_column_name_uppercase",
    edits=[('name      = "district"', 'name      = "District"')],
    message='[[column]] #3: "name": "District" is not an output name',
    line='"District"',
)
case(
    "err_column_name_space",
    edits=[('name      = "district"', 'name      = "home district"')],
    message="is not an output name",
    line='"home district"',
)
case(
    "err_recipient_name_space",
    edits=[('name = "wmp-iom"', 'name = "wmp iom"')],
    message='[[recipients]] #1: "name": "wmp iom" is not a name',
    line='"wmp iom"',
)
case(
    "err_key_id_bad",
    edits=[('key_id    = "wmp-iom-2026"', 'key_id    = "../wmp"')],
    message='"key_id": "../wmp" is not a key id',
    line="key_id",
)

# ---- filters --------------------------------------------------------------------------------
case(
    "err_filter_bad_op",
    edits=[('op     = "eq"', 'op     = "like"')],
    message='"op": "like" is not one of "eq"',
    line='op     = "like"',
)
case(
    "err_filter_in_empty",
    edits=[('value  = [\n  "high",\n  "very_high",\n]', "value  = []")],
    message='op = "in" needs 1 to 1000 values, got 0',
    line="value  = []",
)
case(
    "err_filter_in_too_many",
    edits=[
        (
            'value  = [\n  "high",\n  "very_high",\n]',
            "value  = [" + ", ".join(str(i) for i in range(1001)) + "]",
        )
    ],
    message='op = "in" needs 1 to 1000 values, got 1001',
    line="value  = [0, 1",
)
case(
    "err_filter_in_mixed_types",
    edits=[('  "very_high",\n', "  3,\n")],
    message="mixes value types (number, string)",
    line=('"high",', -1),
)
case(
    "err_filter_in_element_bad",
    edits=[('  "very_high",\n', "  [1],\n")],
    message='"value[1]": expected a string, number',
    line="[1],",
    note="the line of the element in a multi-line array",
)
case(
    "err_filter_between_three",
    edits=[("value  = [18, 80]", "value  = [18, 50, 80]")],
    message='op = "between" needs 2 values [low, high], got 3',
    line="value  = [18, 50, 80]",
)
case(
    "err_filter_between_reversed",
    edits=[("value  = [18, 80]", "value  = [80, 18]")],
    message="low is greater than high",
    line="value  = [80, 18]",
)
case(
    "err_filter_is_null_with_value",
    edits=[('op     = "is_null"', 'op     = "is_null"\nvalue  = ""')],
    message='"value": must be absent for op = "is_null"',
    line='value  = ""',
)
case(
    "err_filter_eq_missing_value",
    edits=[('value  = "WMP"\n', "")],
    message='[[source.filter]] #1: missing required key "value"',
    line=('column = "force_code"', -1),
)
case(
    "err_filter_eq_array",
    edits=[('value  = "WMP"', 'value  = ["WMP", "WMC"]')],
    message='op = "eq" takes one value (use op = "in" for a list)',
    line='value  = ["WMP"',
)
case(
    "err_filter_local_datetime",
    edits=[("value  = 0.75", "value  = 2026-01-01T00:00:00")],
    message="is a local date-time without an offset",
    line="value  = 2026-01-01T00:00:00",
)
case(
    "err_filter_local_time",
    edits=[("value  = 0.75", "value  = 07:30:00")],
    message="got a local time",
    line="value  = 07:30:00",
)
case(
    "err_filter_nan",
    edits=[("value  = 0.75", "value  = nan")],
    message="must be a finite number",
    line="value  = nan",
)
case(
    "err_filter_relative_anchor",
    edits=[('relative_to = "run_date"', 'relative_to = "now"')],
    message='"relative_to": "now" is not one of "run_date"',
    line='"now"',
)
case(
    "err_filter_relative_days_float",
    edits=[("days = -365 }", "days = -365.5 }")],
    message='"days": expected an integer, got a float',
    line="-365.5",
)
case(
    "err_filter_relative_days_huge",
    edits=[("days = -365 }", "days = -100000 }")],
    message='"days": must be at least -73050',
    line="-100000",
)
case(
    "err_filter_not_array_of_tables",
    base=MINIMAL,
    edits=[("[limits]", '[source.filter]\ncolumn = "x"\nop = "is_null"\n\n[limits]')],
    message='"filter": expected an array of tables [[source.filter]], got a table',
    line="[source.filter]",
)

# ---- transforms -----------------------------------------------------------------------------
case(
    "err_transform_unknown",
    edits=[('transform = "keep"', 'transform = "sha256"')],
    message='"transform": "sha256" is not one of "keep"',
    line='"sha256"',
)
case(
    "err_keep_with_param",
    edits=[('transform = "keep"', 'transform = "keep"\nvalue = "x"')],
    message='key "value" is not a parameter of transform "keep" (it takes: no parameters)',
    line='value = "x"',
)
case(
    "err_null_with_param",
    edits=[('transform = "null"', 'transform = "null"\nmax = 1')],
    message='key "max" is not a parameter of transform "null"',
    line="max = 1",
)
case(
    "err_pseudonym_with_salt",
    edits=[('transform     = "pseudonym"', 'transform     = "pseudonym"\nsalt          = "x"')],
    message='[[column]] #1 "offender": unknown key "salt"',
    line="salt          =",
)
case(
    "err_constant_missing_value",
    edits=[('value     = "OTS"\n', "")],
    message='missing required key "value" for transform "constant"',
    line=('name      = "source_system"', -1),
)
case(
    "err_constant_int",
    edits=[('value     = "OTS"', "value     = 7")],
    message='"value": expected a string, got an integer',
    line="value     = 7",
)
case(
    "err_date_trunc_day",
    edits=[('granularity = "year"', 'granularity = "day"')],
    message='"granularity": "day" is not one of "year", "quarter", "month"',
    line='granularity = "day"',
)
case(
    "err_age_band_width_zero",
    edits=[("width     = 10", "width     = 0")],
    message='"width": must be at least 1',
    line="width     = 0",
)
case(
    "err_age_band_width_big",
    edits=[("width     = 10", "width     = 121")],
    message='"width": must be at most 120',
    line="width     = 121",
)
case(
    "err_age_band_top_code_below_width",
    edits=[("top_code  = 80", "top_code  = 5")],
    message='"top_code": must be at least 10',
    line="top_code  = 5",
)
case(
    "err_postcode_level",
    edits=[('level     = "district"', 'level     = "unit"')],
    message='"level": "unit" is not one of "area", "district", "sector"',
    line='"unit"',
)
case(
    "err_bucket_edges_empty",
    edits=[
        ("edges     = [0, 0.25, 0.5]", "edges     = []"),
        ('labels    = ["low", "medium", "high"]\n', ""),
    ],
    message='"edges": needs 1 to 1000 edges, got 0',
    line="edges     = []",
)
case(
    "err_bucket_edges_not_increasing",
    edits=[("edges     = [0, 0.25, 0.5]", "edges     = [0, 0.5, 0.5]")],
    message='"edges[2]": edges must be strictly increasing',
    line="edges     =",
)
case(
    "err_bucket_edges_string",
    edits=[("edges     = [0, 0.25, 0.5]", 'edges     = [0, "0.25", 0.5]')],
    message='"edges[1]": expected a number, got a string',
    line="edges     =",
)
case(
    "err_bucket_labels_length",
    edits=[('labels    = ["low", "medium", "high"]', 'labels    = ["low", "high"]')],
    message='"labels": needs one label per edge (3), got 2',
    line="labels",
)
case(
    "err_bucket_labels_duplicate",
    edits=[('labels    = ["low", "medium", "high"]', 'labels    = ["low", "low", "high"]')],
    message='"labels": labels must be unique',
    line="labels",
)
case(
    "err_top_code_float",
    edits=[("max       = 30", "max       = 30.5")],
    message='"max": expected an integer, got a float',
    line="max       = 30.5",
)
case(
    "err_top_code_negative_max",
    edits=[("max       = 30\nmin       = 0", "max       = -1")],
    message='"max": must be at least 0 when no min is given, got -1',
    line="max       = -1",
)
case(
    "err_top_code_min_not_below_max",
    edits=[("min       = 0", "min       = 30")],
    message='"min": must be at most 29',
    line="min       = 30",
)
case(
    "err_map_empty",
    edits=[('mapping   = { "M" = "male", "F" = "female" }', "mapping   = {}")],
    message='"mapping": needs 1 to 10000 entries, got 0',
    line="mapping   = {}",
)
case(
    "err_map_value_int",
    edits=[('"F" = "female"', '"F" = 2')],
    message='"mapping.F": expected a string, got an integer',
    line="mapping   =",
)
case(
    "err_map_default_int",
    edits=[('default   = "other"', "default   = 0")],
    message='"default": expected a string, got an integer',
    line="default   = 0",
)
case(
    "err_mask_char_two",
    edits=[("keep_last  = 4", 'keep_last  = 4\nchar = "**"')],
    message='"char": must be exactly one visible character',
    line='char = "**"',
)
case(
    "err_mask_keep_first_negative",
    edits=[("keep_last  = 4", "keep_last  = 4\nkeep_first = -1")],
    message='"keep_first": must be at least 0',
    line="keep_first = -1",
)
case(
    "err_mask_unknown_param",
    edits=[("keep_last  = 4", "keep_last  = 4\nkeep_middle = 1")],
    message='unknown key "keep_middle"',
    line="keep_middle",
)
case(
    "err_on_invalid_bad",
    edits=[('on_invalid = "null"', 'on_invalid = "skip"')],
    message='"on_invalid": "skip" is not one of "error", "null", "suppress_row"',
    line='"skip"',
)
case(
    "err_role_bad",
    edits=[('role      = "sensitive"', 'role      = "secret"')],
    message='"role": "secret" is not one of',
    line='"secret"',
)

# ---- duplicates and cross-references ----------------------------------------------------------
case(
    "err_duplicate_column_name",
    edits=[('name      = "force"', 'name      = "district"')],
    message='[[column]] #10 "district": "name": duplicate column name (also [[column]] #3 "district")',
    line=('transform = "keep"', -2),
)
case(
    "err_duplicate_party_name",
    edits=[('name = "dpo.office@example.gov.uk"', 'name = "wmp-iom"')],
    message='[[auditors]] #1: "name": duplicate name "wmp-iom" (also [[recipients]] #1)',
    line=("[[auditors]]", 1),
)
case(
    "err_duplicate_age_recipient",
    edits=[(f'age  = "{AGE_B}"', f'age  = "{AGE_A}"')],
    message="the same age recipient is listed twice",
    line=("[[auditors]]", 2),
)
case(
    "err_duplicate_exporter_name",
    edits=[('name = "pa-analyst-2"', 'name = "pa-analyst"')],
    message='duplicate exporter name "pa-analyst"',
    line='name = "pa-analyst"\nssh  =',
)
case(
    "err_duplicate_exporter_key",
    edits=[
        (
            'ssh  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBB/TfGQZgtU4elHxtFtmE4TS1hmViYAUNMvjOQFb3P5"',
            'ssh  = "' + SSH1.replace("analyst@laptop", "other-comment") + '"',
        )
    ],
    message="the same key is listed twice",
    line="other-comment",
    note="keys compare by key bytes, not comment",
)
case(
    "err_qi_not_a_column",
    edits=[('["birth_year", "district"]', '["birth_year", "postcode"]')],
    message='"quasi_identifiers": "postcode" is not the name of a [[column]]',
    line="quasi_identifiers",
)
case(
    "err_qi_empty",
    edits=[('["birth_year", "district"]', "[]")],
    message="must name at least one output column",
    line="quasi_identifiers",
)
case(
    "err_qi_duplicate",
    edits=[('["birth_year", "district"]', '["birth_year", "birth_year", "district"]')],
    message='"birth_year" is listed twice',
    line="quasi_identifiers",
)
case(
    "err_k_one",
    edits=[("k                       = 5", "k                       = 1")],
    message='"k": must be at least 2',
    line="k                       = 1",
)
case(
    "err_fraction_above_one",
    edits=[("max_suppressed_fraction = 0.050", "max_suppressed_fraction = 1.5")],
    message="must be between 0 and 1, got 1.5",
    line="max_suppressed_fraction",
)
case(
    "err_fraction_negative",
    edits=[("max_suppressed_fraction = 0.050", "max_suppressed_fraction = -0.0001")],
    message="must be between 0 and 1",
    line="max_suppressed_fraction",
)
case(
    "err_fraction_string",
    edits=[("max_suppressed_fraction = 0.050", 'max_suppressed_fraction = "5%"')],
    message="expected a number, got a string",
    line="max_suppressed_fraction",
)
case(
    "err_on_violation_bad",
    edits=[('on_violation            = "suppress"', 'on_violation            = "warn"')],
    message='"on_violation": "warn" is not one of "suppress", "abort"',
    line="on_violation",
)
case(
    "err_role_qi_not_listed",
    edits=[('["birth_year", "district"]', '["birth_year"]')],
    message='[[column]] #3 "district": "role": is "quasi_identifier" but [privacy] quasi_identifiers does not list this column',
    line=('on_invalid = "null"', 1),
)
case(
    "err_pseudonym_without_table",
    edits=[
        (
            '[pseudonymisation]\nkey_id    = "wmp-iom-2026"\nkey_check = "0123456789abcdef"\ndomain    = "wmp-iom"\n',
            "",
        )
    ],
    message='transform "pseudonym" needs a [pseudonymisation] table',
    line='transform     = "pseudonym"',
)
case(
    "err_pseudonymisation_unused",
    edits=[('transform     = "pseudonym"', 'transform     = "keep"')],
    message='[pseudonymisation]: no column uses transform = "pseudonym"',
    line="[pseudonymisation]",
)
case(
    "err_key_check_uppercase",
    edits=[('key_check = "0123456789abcdef"', 'key_check = "0123456789ABCDEF"')],
    message='"key_check": "0123456789ABCDEF" is not 16 lower-case hex digits',
    line="key_check",
)
case(
    "err_key_check_short",
    edits=[('key_check = "0123456789abcdef"', 'key_check = "0123456789abcde"')],
    message="is not 16 lower-case hex digits",
    line="key_check",
)
case(
    "err_schema_sha256_bad",
    edits=[('schema_sha256 = "9f86', 'schema_sha256 = "9F86')],
    message="is not 64 lower-case hex digits",
    line="schema_sha256",
)

# ---- keys -----------------------------------------------------------------------------------
case(
    "err_ssh_small_order",
    edits=[
        (
            'ssh  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBB/TfGQZgtU4elHxtFtmE4TS1hmViYAUNMvjOQFb3P5"',
            f'ssh  = "{ZERO_SSH}"',
        )
    ],
    message='[[exporters]] #2: "ssh": not a usable ssh-ed25519 public key: small-order',
    line="AAAAAAAAAAAAAAAAAAAA",
    note="the all-zero Ed25519 key, which verifies forged signatures",
)
case(
    "err_ssh_rsa",
    edits=[
        (
            'ssh  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBB/TfGQZgtU4elHxtFtmE4TS1hmViYAUNMvjOQFb3P5"',
            'ssh  = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"',
        )
    ],
    message="only ssh-ed25519 keys are accepted",
    line="ssh-rsa",
)
case(
    "err_ssh_bad_base64",
    edits=[
        (
            "AAAAIBB/TfGQZgtU4elHxtFtmE4TS1hmViYAUNMvjOQFb3P5",
            "AAAAIBB/TfGQZgtU4elHxtFtmE4TS1hmViYAUNMvjOQFb3P!",
        )
    ],
    message="not valid base64",
    line="b3P!",
)
case(
    "err_ssh_two_lines",
    edits=[
        (
            'ssh  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBB/TfGQZgtU4elHxtFtmE4TS1hmViYAUNMvjOQFb3P5"',
            'ssh  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBB/TfGQZgtU4elHxtFtmE4TS1hmViYAUNMvjOQFb3P5\\nssh-ed25519 AAAA"',
        )
    ],
    message="U+000A",
    line="b3P5\\n",
)
case(
    "err_age_bad_checksum",
    edits=[(AGE_A, AGE_A[:-1] + "8")],
    message="Bech32 checksum is wrong",
    line=AGE_A[:-1] + "8",
)
case(
    "err_age_uppercase",
    edits=[(AGE_A, AGE_A.upper())],
    message="not an age X25519 recipient",
    line=AGE_A.upper(),
    note="Bech32 allows upper case; we accept only age's canonical lower case",
)
case(
    "err_age_ssh_key_given",
    edits=[
        (
            f'age  = "{AGE_B}"',
            'age  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBB/TfGQZgtU4elHxtFtmE4TS1hmViYAUNMvjOQFb3P5"',
        )
    ],
    message='[[auditors]] #1: "age": not an age X25519 recipient',
    line=("[[auditors]]", 2),
)
case(
    "err_age_small_order",
    edits=[(AGE_A, AGE_ZERO)],
    message="low-order X25519 point",
    line=AGE_ZERO,
    note="Bech32 of 32 zero bytes; rage panics encrypting to it",
)
case(
    "err_age_non_canonical",
    edits=[(AGE_A, "age12mr0xr8zyx0qmkwnaglmzmpchdzft8dsncad3khv4nv4pqztvzgqqsx7ru")],
    message="not a canonical X25519 key",
    line="age12mr0xr8zyx0qmkwnaglmzmpchdzft8dsncad3khv4nv4pqztvzgqqsx7ru",
    note="AGE_A with the top bit of its u-coordinate set: X25519 reads the same key, so two "
    "strings would name one recipient (Bech32 made with the bech32 reference package)",
)
case(
    "err_ledger_bad_shape",
    edits=[("example.org/ledger-replace-me+9bd0e4d0+", "example.org/ledger-replace-me+9bd0e4d+")],
    message='"ledger": is not a signed-note verifier key',
    line="ledger =",
)
case(
    "err_ledger_hash_mismatch",
    edits=[("example.org/ledger-replace-me+9bd0e4d0+", "example.org/ledger-replace-me+9bd0e4d1+")],
    message="key id does not match",
    line="ledger =",
)
case(
    "err_witness_small_order",
    edits=[
        (
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "zero+fca26672+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
    ],
    message="small-order",
    line="zero+",
    note="hash computed for the all-zero key so only the point check fails",
)
case(
    "err_witness_required_string",
    edits=[("required = true", 'required = "yes"')],
    message='"required": expected a boolean (true or false), got a string',
    line='required = "yes"',
)
case(
    "err_witness_missing_key",
    edits=[
        ('key      = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"\n', "")
    ],
    message='[witness]: missing required key "key"',
    line="[witness]",
)

# ---- the locator is not fooled by strings ----------------------------------------------------
case(
    "err_line_after_decoy_strings",
    edits=[
        ('purpose     = """\n', 'purpose     = """\n[[column]]\nname = "decoy"\ngranularty = 1\n'),
        ('legal_basis = "DPA 2018 Part 3 s.35"', "legal_basis = 'a [[column]] # not a comment'"),
        ('granularity = "year"', 'granularty = "year"'),
    ],
    message='[[column]] #2 "birth_year": unknown key "granularty"',
    line='granularty = "year"',
    note="a multi-line purpose holding a fake [[column]] with the same typo",
)

for name, data, *_ in cases:
    (OUT / f"{name}.toml").write_bytes(data)


def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


lines = [
    "# Expected outcome of each vector; see README.md.  line: where the error must be reported",
    "# (absent: the message must carry no line number).",
    "",
]
for name, _data, outcome, message, expected_line, note, max_bytes in cases:
    lines.append(f'[cases."{name}.toml"]')
    lines.append(f"outcome = {q(outcome)}")
    if message is not None:
        lines.append(f"message = {q(message)}")
    if expected_line is not None:
        lines.append(f"line = {expected_line}")
    if max_bytes is not None:
        lines.append(f"max_bytes = {max_bytes}")
    if note:
        lines.append(f"note = {q(note)}")
    lines.append("")
(OUT / "cases.toml").write_text("\n".join(lines))
print(len(cases), "cases")
