#!/usr/bin/env bash
# The project's test command (README.md): builds the solution and runs every test project,
# then prints the totals as one line: "N passed, N failed[, N skipped]".
set -uo pipefail

# Started in the background by a non-interactive shell (`... &`, nohup), this script would ignore SIGINT and
# so would every process the tests start (POSIX), and the tests that press Ctrl-C would wait in vain: run
# again with its default action restored.
if [ -z "${MOE_TEST_SIGNALS:-}" ]; then
  exec env --default-signal=INT,QUIT MOE_TEST_SIGNALS=default bash "$0" "$@"
fi

cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The runtime's tests run a real PostgreSQL server (started privately by the tests themselves).
scripts/postgres.sh || { echo "PostgreSQL could not be installed"; echo "0 passed, 1 failed"; exit 1; }
# The front end's tests use real clients: the openai npm package, and Chromium driven by playwright-core.
scripts/browser-and-node.sh || { echo "Node.js packages or Chromium could not be installed"; echo "0 passed, 1 failed"; exit 1; }

dotnet build Orleans.MoE.sln -c Release -nologo -v quiet 2>&1 | tail -n 30
build=${PIPESTATUS[0]}
if [ "$build" -ne 0 ]; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# One test assembly at a time: the runtime tests measure failure detection and must not share the
# two cores with the numeric tests.
dotnet test Orleans.MoE.sln -c Release --no-build -nologo -m:1 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# dotnet test prints one summary line per test assembly:
#   Passed!  - Failed:     0, Passed:    42, Skipped:     1, Total:    43, Duration: 3 s - X.dll (net10.0)
read -r passed failed skipped < <(grep -E '(Passed|Failed)! +- Failed:' "$log" | awk -F'[:,]' '
  { f += $2; p += $4; s += $6 } END { print p+0, f+0, s+0 }')
assemblies=$(grep -cE '(Passed|Failed)! +- Failed:' "$log")
expected=$(ls -d tests/*.Tests | wc -l)
if [ "$assemblies" -ne "$expected" ]; then
  echo "expected results from $expected test assemblies, saw $assemblies"
  status=1; failed=$((failed + expected - assemblies))
fi

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
exit "$status"
