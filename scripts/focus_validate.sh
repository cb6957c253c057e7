#!/usr/bin/env bash
# Generate a FOCUS 1.2 export from seeded test data and check it with the FinOps
# Foundation's focus-validator. The validator needs Python 3.12+, so it gets its own
# virtualenv under var/ (created when missing). It exits 0 even when rules fail, so
# scripts/focus_report_check.py reads its report ("Total | Pass | Fail" and each rule).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=var/focus-venv
WORK=var/focus-check
# A Python 3.12+ that really runs (a pyenv shim for an inactive version does not).
runs_312() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }
PY312=""
candidates=("${FOCUS_PYTHON:-}")
if command -v pyenv >/dev/null 2>&1; then
  candidates+=("$(pyenv root)"/versions/3.12*/bin/python3 "$(pyenv root)"/versions/3.13*/bin/python3)
fi
candidates+=("$(command -v python3.12 || true)" "$(command -v python3.13 || true)")
for candidate in "${candidates[@]}"; do
  if runs_312 "$candidate"; then PY312="$candidate"; break; fi
done
if [ ! -x "$VENV/bin/python" ]; then
  [ -n "$PY312" ] || { echo "focus-validator needs Python 3.12+ (set FOCUS_PYTHON)"; exit 2; }
  "$PY312" -m venv "$VENV"
  "$VENV/bin/pip" install -q focus-validator==2.2.1 pyarrow==20.0.0
fi

rm -rf "$WORK" && mkdir -p "$WORK"
DB="$PWD/$WORK/focus.sqlite3"
MONTH="$(date -u -d "10 days ago" +%Y-%m)"
export DATABASE_URL="sqlite:///$DB"
unset REDIS_URL
.venv/bin/python manage.py migrate -v0
.venv/bin/python manage.py seed_usage --org focus-check --records 3000 --days 20 --teams 3 --users 6 >/dev/null
.venv/bin/python manage.py export_focus --org focus-check --period "$MONTH" --out "$PWD/$WORK/focus.csv"

SITE="$("$VENV/bin/python" -c 'import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))')"
REPORT="$PWD/$WORK/report.txt"
# What the gateway supports, so the validator runs those rules too instead of skipping them.
CRITERIA="ACCOUNT_NAMING_SUPPORTED,SUB_ACCOUNT_SUPPORTED,USAGE_MEASUREMENT_SUPPORTED,UNIT_PRICING_SUPPORTED"
CRITERIA="$CRITERIA,PUBLIC_PRICE_LIST_SUPPORTED,RESOURCE_TYPE_ASSIGNMENT_SUPPORTED,TAGGING_SUPPORTED"
ROOT="$PWD"
(cd "$SITE" && "$ROOT/$VENV/bin/python" -m focus_validator.main --data-file "$ROOT/$WORK/focus.csv" \
   --validate-version 1.2 --block-download --applicability-criteria "$CRITERIA") >"$REPORT" 2>&1 || true
MODEL="$(ls "$SITE"/focus_validator/rules/model-1.2*.json | head -1)"
if "$VENV/bin/python" scripts/focus_report_check.py "$REPORT" "$MODEL"; then
  echo "FOCUS export validates"
else
  grep -E 'FAIL' "$REPORT" | head -40
  echo "FOCUS validation failed (report: $REPORT)"
  exit 1
fi
