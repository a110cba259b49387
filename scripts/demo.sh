#!/usr/bin/env bash
# make demo: the whole job on the embedded SQLite default, one role at a time.
# Each role has its own home (as it would on its own machine); files travel between them.
set -euo pipefail
cd "$(dirname "$0")/.."
# DEMO_OUT / DEMO_PEOPLE let the test suite run this very script (tests/system/test_demo.py).
SX="$PWD/.venv/bin/securexport"
OUT="${DEMO_OUT:-demo-output}"
PEOPLE="${DEMO_PEOPLE:-30000}"
rm -rf "$OUT"
mkdir -p "$OUT/homes"
chmod 700 "$OUT"
OUT_ABS="$(cd "$OUT" && pwd)"

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run()  { printf '$ securexport %s\n' "$*" >&2; "$SX" "$@"; }

# Headless machines have no OS keyring: key files are passphrase-encrypted (age scrypt format).
printf 'demo passphrase - use a real one\n' > "$OUT/passphrase"
chmod 600 "$OUT/passphrase"
export SECUREXPORT_PASSPHRASE_FILE="$OUT_ABS/passphrase"
export SECUREXPORT_KEYSTORE=file
OWNER=(--home "$OUT/homes/owner")
EXPORTER=(--home "$OUT/homes/exporter")
FORCE=(--home "$OUT/homes/wmp-iom")
PROBATION=(--home "$OUT/homes/nps-wm")
AUDIT=(--home "$OUT/homes/wmp-audit")

say "1. A synthetic offender-tracking database (the source system)"
.venv/bin/python -m securexport.synthetic "$OUT/offenders.db" --people "$PEOPLE"
DB="sqlite:///$OUT_ABS/offenders.db"

say "2. Everyone creates an identity (age key to receive, Ed25519 key to sign)"
run "${OWNER[@]}" keys new home-office-iao
run "${EXPORTER[@]}" keys new pa-analyst
run "${FORCE[@]}" keys new wmp-iom
run "${PROBATION[@]}" keys new nps-wm
run "${AUDIT[@]}" keys new wmp-audit

say "3. The exporter's ledger key (its verifier key goes into the approval)"
run "${EXPORTER[@]}" ledger key > "$OUT/exporter-ledger.vkey"
cat "$OUT/exporter-ledger.vkey"

say "4. The data owner: a witness key, the pseudonym key, and trust in the approver and ledger keys"
run "${OWNER[@]}" ledger witness-key > "$OUT/owner-witness.vkey"
cat "$OUT/owner-witness.vkey"
run "${OWNER[@]}" trust add contractor-ledger "$OUT/exporter-ledger.vkey" --role ledger
printf '$ securexport pseudonym-key new wmp-iom-2026 --json\n'
"$SX" "${OWNER[@]}" --json pseudonym-key new wmp-iom-2026 | tee "$OUT/pseudonym-key.json"
KEY_CHECK=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_check"])' "$OUT/pseudonym-key.json")
"$SX" "${OWNER[@]}" keys export home-office-iao > "$OUT/owner.pub"
for home in owner exporter wmp-iom nps-wm wmp-audit; do
  "$SX" --home "$OUT/homes/$home" -q trust add home-office-iao "$OUT/owner.pub" --role approver
done
echo "every role now trusts home-office-iao as an approver"

say "5. The data owner writes the approval (minimised columns, k = 5, two recipients and an auditor)"
.venv/bin/python scripts/demo_approval.py "$OUT" "$KEY_CHECK" "$SX" > "$OUT/ppo-extract.toml"
sed -n '1,200p' "$OUT/ppo-extract.toml"
run "${OWNER[@]}" approval check "$OUT/ppo-extract.toml" || true
run "${OWNER[@]}" approval sign "$OUT/ppo-extract.toml" --as home-office-iao
run "${OWNER[@]}" approval check "$OUT/ppo-extract.toml"

say "6. The data owner plans it against the source: counts, k, suppression — no data written"
run "${OWNER[@]}" approval plan "$OUT/ppo-extract.toml" --source "$DB"

say "7. The pseudonym key travels to the exporter, encrypted to the exporter's age key"
ANALYST_AGE=$("$SX" "${EXPORTER[@]}" keys export pa-analyst --age)
run "${OWNER[@]}" pseudonym-key export wmp-iom-2026 --to "$ANALYST_AGE" --approval "$OUT/ppo-extract.toml" -o "$OUT/wmp-iom-2026.key.age"
run "${EXPORTER[@]}" pseudonym-key import "$OUT/wmp-iom-2026.key.age"

say "8. The exporter runs the approved export"
run "${EXPORTER[@]}" export "$OUT/ppo-extract.toml" --source "$DB" --as pa-analyst -o "$OUT/ppo-extract.sxb"
ls -l "$OUT/ppo-extract.sxb"

say "8b. The approval requires the data owner's witness: without a cosignature, recipients refuse"
"$SX" "${FORCE[@]}" verify "$OUT/ppo-extract.sxb" && exit 1 || echo "(refused with exit code $?: not yet witnessed)"

say "8c. The exporter's ledger travels to the owner, who checks it and cosigns"
run "${EXPORTER[@]}" ledger sync --since 0 -o "$OUT/ledger-sync.json"
run "${OWNER[@]}" ledger witness "$OUT/ledger-sync.json" --log contractor-ledger -o "$OUT/ledger.cosig"
run "${EXPORTER[@]}" ledger cosign "$OUT/ppo-extract.sxb" "$OUT/ledger.cosig"

say "9. Anyone can inspect the manifest (no record values in it)"
run "${OWNER[@]}" inspect "$OUT/ppo-extract.sxb"

say "10. The data owner verifies the bundle without decrypting it"
run "${OWNER[@]}" verify "$OUT/ppo-extract.sxb"

say "11. Each recipient verifies and decrypts with their own key"
run "${FORCE[@]}" decrypt "$OUT/ppo-extract.sxb" --as wmp-iom -o "$OUT/extract"
echo "first rows of $OUT/extract/data/offenders.csv:"
head -n 6 "$OUT/extract/data/offenders.csv"
run "${PROBATION[@]}" decrypt "$OUT/ppo-extract.sxb" --as nps-wm -o "$OUT/extract-nps"
cmp "$OUT/extract/data/offenders.csv" "$OUT/extract-nps/data/offenders.csv"
echo "the second recipient's copy is byte for byte the same"

say "12. Someone who is not a recipient cannot open it"
"$SX" --home "$OUT/homes/exporter" decrypt "$OUT/ppo-extract.sxb" --as pa-analyst -o "$OUT/not-for-me" && exit 1 || echo "(refused with exit code $?, as it should be)"

say "13. The exporter's ledger: every export logged, verifiable"
run "${EXPORTER[@]}" ledger list
run "${EXPORTER[@]}" ledger verify

say "14. Breach response: the bundle is lost. What left, to whom, and how many people?"
run "${OWNER[@]}" ledger breach --bundle "$OUT/ppo-extract.sxb" --log contractor-ledger --as home-office-iao

say "Done. Everything is in $OUT/."
