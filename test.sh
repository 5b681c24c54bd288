#!/usr/bin/env bash
# Runs every test and ends with one line: "N passed, N failed, N skipped".
# Extra arguments go to `dotnet test`, e.g. ./test.sh --filter "FullyQualifiedName~MoneyTests"
# (and then the PostgreSQL pass of the HTTP suites is left out).
# Exits non-zero if the build or any test failed, or if no test results were produced.
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# Everything this run writes to temporary files (results, test databases, the throwaway PostgreSQL
# clusters) goes below one folder of its own, removed at the end; the postgres user must reach into it.
run_tmp=$(mktemp -d)
chmod 755 "$run_tmp"
export TMPDIR=$run_tmp
results=$run_tmp/results

# Each test process stops its PostgreSQL cluster when it exits, but a test host that is ended instead
# of exiting leaves its server running: stop every cluster of this run before removing the folder.
cleanup() {
  local dir pg_ctl
  pg_ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -n 1)
  for dir in "$run_tmp"/modelroute-pg-*; do
    [ -f "$dir/data/postmaster.pid" ] && [ -n "$pg_ctl" ] || continue
    if [ "$(id -u)" -eq 0 ]; then
      su postgres -c "$pg_ctl -D $dir/data -m immediate -w stop" >/dev/null 2>&1
    else
      "$pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
    fi
  done
  rm -rf "$run_tmp"
}
trap cleanup EXIT

dotnet test ModelRoute.slnx --logger "trx;LogFilePrefix=sqlite" --results-directory "$results" "$@"
status=$?

# The HTTP suites again on PostgreSQL: one set of test code, both stores (docs/testing.md). The run starts its
# own throwaway cluster. Skipped when arguments narrow the run (e.g. a --filter while developing).
if [ "$#" -eq 0 ]; then
  MODELROUTE_TEST_STORE=postgres dotnet test tests/ModelRoute.Tests --no-build \
    --filter "FullyQualifiedName!~ChaosTests&FullyQualifiedName!~CrashRecoveryTests&FullyQualifiedName!~PriceHistoryTests&FullyQualifiedName!~StoreContract&FullyQualifiedName!~.Hosting.&FullyQualifiedName!~PostgresCluster&FullyQualifiedName!~MoneyTests&FullyQualifiedName!~PricingTests&FullyQualifiedName!~RetryBackoffTests&FullyQualifiedName!~RouteSelectorTests&FullyQualifiedName!~IdGeneratorTests&FullyQualifiedName!~WebhookSignerTests&FullyQualifiedName!~WebhookUrlPolicyTests&FullyQualifiedName!~EmbeddedIPv4" \
    --logger "trx;LogFilePrefix=postgres" --results-directory "$results"
  [ $? -eq 0 ] || status=1
fi

# The value of attribute $1 in the <Counters …> element of file $2 (0 when absent).
counter() {
  local value
  value=$(grep -o '<Counters [^>]*>' "$2" | head -n 1 | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p")
  echo "${value:-0}"
}

passed=0 failed=0 skipped=0 files=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  files=$((files + 1))
  passed=$((passed + $(counter passed "$trx")))
  failed=$((failed + $(counter failed "$trx")))
  skipped=$((skipped + $(counter total "$trx") - $(counter executed "$trx")))
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$files" -gt 0 ]
