#!/usr/bin/env bash
# Run the test suite with the given Python. pytest's exit code 5 (no tests
# collected) is turned into a failure, because a run that tests nothing must
# not pass.
set -u
py=$1
shift
"$py" -m pytest -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-pytest: pytest collected no tests; failing the run" >&2
  exit 1
fi
exit "$rc"
