# shellcheck shell=bash
# The counts of a shell test script (tests/helm/run.sh, tests/image/run.sh), sourced: one line per
# check, and a closing "NAME: N passed, M failed" line that tools/dev adds to its totals.
PASSED=0
FAILED=0
FAILURES=()
pass() {
    PASSED=$((PASSED + 1))
    echo "ok   $1"
}
fail() {
    FAILED=$((FAILED + 1))
    FAILURES+=("$1")
    echo "FAIL $1"
}
# report NAME: the failures again, then the count line; true when nothing failed.
report() {
    local f
    for f in "${FAILURES[@]}"; do
        echo "  failed: $f"
    done
    echo "$1: $PASSED passed, $FAILED failed"
    ((FAILED == 0))
}
