#!/usr/bin/env bash
# The main job on bundled data, embedded defaults only (local files, a SQLite ledger): what `make demo` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=demo-out
mkdir -p "$OUT/keys"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Policy verdicts (exit 1: findings or denials) are the point of the demo; only usage/fatal errors (2+) stop it.
allow_policy_exit() { "$@" || { rc=$?; [ "$rc" -le 1 ] || [ "$rc" -eq 3 ] || exit "$rc"; }; }

step "1. Discover: personal information in the example files (masked)"
allow_policy_exit "$BIN/piguard" scan examples/data --format table
allow_policy_exit "$BIN/piguard" scan examples/data --format html -o "$OUT/scan-report.html"
echo "HTML report: $OUT/scan-report.html"

step "2. Decide: an online-lending app's declared flows, unlawful and lawful versions"
allow_policy_exit "$BIN/piguard" check examples/flows/lending_app_unlawful.yaml --format table
allow_policy_exit "$BIN/piguard" check examples/flows/lending_app_lawful.yaml --format table

step "3. De-identify the loan applicants before delivery (k=10, 2-diversity on 是否逾期, keyed pseudonyms)"
cp examples/deid/loan_applicants.yaml "$OUT/deid.yaml"
"$BIN/piguard" deid examples/data/loan_applicants.csv --config "$OUT/deid.yaml" \
  --out "$OUT/loan_applicants.deid.csv" --report "$OUT/deid-report.json" --html "$OUT/deid-report.html"

step "4. Prove nothing raw is left: scan the delivered file"
allow_policy_exit "$BIN/piguard" scan "$OUT/loan_applicants.deid.csv" --format table

step "5. Prove where the data came from: the buyer's story with a signed dataset passport"
BIN=$BIN bash examples/passport/story.sh "$OUT/passport"
echo
echo "Outputs are in $OUT/"
