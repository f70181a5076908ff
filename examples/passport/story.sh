#!/usr/bin/env bash
# The buyer's story end to end: a supplier records provenance and consent, de-identifies and issues a
# dataset passport; a bank verifies it, checks its own flows against it, and rejects a tampered copy, a copy
# with one raw ID number slipped back in, and a passport signed by an untrusted key. `make demo` runs it.
#   bash examples/passport/story.sh [OUT]       (default demo-out/passport)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
OUT=${1:-demo-out/passport}
BANK=某商业银行股份有限公司
rm -rf "$OUT" && mkdir -p "$OUT/keys/trusted" "$OUT/deid-keys"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# A verdict of reject (exit 1) is the point of some steps; anything else (2+) stops the story.
expect_reject() { if "$@"; then echo "expected a rejection" >&2; exit 1; else rc=$?; [ "$rc" -eq 1 ] || exit "$rc"; fi; }

step "Supplier: keys (the bank trusts the supplier's public key; an impostor has a key of its own)"
"$BIN/piguard" passport keygen --out "$OUT/keys/trusted/supplier" --owner 某数据科技有限公司
"$BIN/piguard" passport keygen --out "$OUT/keys/impostor" --owner 冒名数据公司

step "Supplier: provenance and consents in the ledger"
LEDGER="$OUT/ledger.db"
"$BIN/piguard" ledger init --ledger "$LEDGER"
"$BIN/piguard" ledger provenance applicants-2026q3 --ledger "$LEDGER" --dataset loan_applicants.csv \
  --method collected_from_subject --legal-basis consent --source "our lending app (consent screen v3)" \
  --data PERSON --data PHONE_NUMBER --data CN_RESIDENT_ID --data INCOME --data CREDIT_RECORD
"$BIN/python" examples/passport/record_consents.py "$LEDGER" examples/data/loan_applicants.csv "$BANK"

step "Supplier: de-identify (k=10, distinct 2-diversity on 是否逾期, keyed pseudonyms)"
for col in 手机号 身份证号; do  # keys readable by the owner only (deid warns about any other mode)
  (umask 077 && "$BIN/python" -c "import secrets; print(secrets.token_hex(32))" > "$OUT/deid-keys/$col.key")
done
sed 's#keys/#deid-keys/#' examples/deid/loan_applicants.yaml > "$OUT/deid.yaml"
mkdir -p "$OUT/delivery"
"$BIN/piguard" deid examples/data/loan_applicants.csv --config "$OUT/deid.yaml" \
  --out "$OUT/delivery/loan_applicants.csv" --report "$OUT/deid-report.json"

step "Supplier: issue the passport (scans every record; refuses claims the bytes contradict)"
"$BIN/piguard" passport issue "$OUT/delivery" --key "$OUT/keys/trusted/supplier.key" --out "$OUT/passport.json" \
  --state pseudonymized --deid-report "$OUT/deid-report.json" --deid-config "$OUT/deid.yaml" \
  --ledger "$LEDGER" --provenance applicants-2026q3 \
  --subjects examples/data/loan_applicants.csv --subject-column 身份证号 \
  --purpose credit_assessment --purpose risk_control --recipient "$BANK" --expires +180d

step "Bank: verify the delivery against the passport"
"$BIN/piguard" passport verify "$OUT/delivery" --passport "$OUT/passport.json" --trust "$OUT/keys/trusted" \
  --purpose credit_assessment --recipient "$BANK"

step "Bank: check its own flows against the passport (marketing and passing the data on are denied)"
cp examples/passport/bank_flows.yaml "$OUT/"
"$BIN/piguard" check "$OUT/bank_flows.yaml" --trust "$OUT/keys/trusted" || [ $? -eq 1 ]

step "Bank: a tampered copy (one amount changed in record 100) is rejected"
mkdir -p "$OUT/tampered"
"$BIN/python" - "$OUT/delivery/loan_applicants.csv" "$OUT/tampered/loan_applicants.csv" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
cells = lines[100].split(",")
cells[-2] = str(int(cells[-2]) + 10000)  # the loan amount
lines[100] = ",".join(cells)
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines))
PY
expect_reject "$BIN/piguard" passport verify "$OUT/tampered" --passport "$OUT/passport.json" --trust "$OUT/keys/trusted"

step "Bank: a copy with one raw ID number slipped back in is rejected"
mkdir -p "$OUT/slipped"
"$BIN/python" - "$OUT/delivery/loan_applicants.csv" "$OUT/slipped/loan_applicants.csv" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
cells = lines[17].split(",")
cells[1] = "110101199003071233"  # a valid resident ID number in place of its pseudonym
lines[17] = ",".join(cells)
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines))
PY
expect_reject "$BIN/piguard" passport verify "$OUT/slipped" --passport "$OUT/passport.json" --trust "$OUT/keys/trusted"

step "Bank: a passport signed by an untrusted key is rejected"
"$BIN/piguard" passport issue "$OUT/delivery" --key "$OUT/keys/impostor.key" --issuer 某数据科技有限公司 \
  --out "$OUT/impostor-passport.json" --state pseudonymized --deid-report "$OUT/deid-report.json" \
  --purpose credit_assessment --recipient '*'
expect_reject "$BIN/piguard" passport verify "$OUT/delivery" --passport "$OUT/impostor-passport.json" \
  --trust "$OUT/keys/trusted"

step "One record's inclusion, proven without the rest of the file"
"$BIN/piguard" passport prove-record "$OUT/delivery/loan_applicants.csv" --passport "$OUT/passport.json" \
  --row 42 -o "$OUT/record-42.proof.json"
"$BIN/piguard" passport verify-record "$OUT/record-42.proof.json" --passport "$OUT/passport.json" \
  --trust "$OUT/keys/trusted"

step "Supplier revokes the passport; the bank's next verification rejects it"
"$BIN/piguard" passport revoke "$OUT/passport.json" --key "$OUT/keys/trusted/supplier.key" \
  --list "$OUT/revoked.json" --reason "superseded by the 2026-10 delivery"
expect_reject "$BIN/piguard" passport verify "$OUT/delivery" --passport "$OUT/passport.json" \
  --trust "$OUT/keys/trusted" --revocations "$OUT/revoked.json"
echo
echo "The story's files are in $OUT/"
