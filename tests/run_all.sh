#!/usr/bin/env bash
# The README's test command. TensorFlow and torch cannot share one process here (loading
# torch's triton after TensorFlow segfaults), so the TensorFlow export tests run in a
# pytest process of their own; the totals of both runs are printed as one closing line.
set -uo pipefail
cd "$(dirname "$0")/.."

TENSORFLOW_TESTS="tests/test_export_wcbnet.py"
reports=$(mktemp -d)
overall=0

run_group() {  # name, then pytest arguments
  local name=$1; shift
  echo "== pytest: $name"
  python -m pytest -q -p no:cacheprovider --junitxml="$reports/$name.xml" "$@"
  local status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then overall=1; fi  # 5: nothing collected
}

run_group tensorflow $TENSORFLOW_TESTS
run_group main tests $(for t in $TENSORFLOW_TESTS; do printf -- "--ignore=%s " "$t"; done)

python - "$reports" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for report in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(report).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"{passed} passed, {failed} failed, {totals['skipped']} skipped")
PY
rm -rf "$reports"
exit "$overall"
