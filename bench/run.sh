#!/usr/bin/env bash
# Benchmarks: runs the Release gateway on SQLite and PostgreSQL and measures it from a separate process.
# Usage: ./bench/run.sh [--quick] [--otlp] [--store sqlite|postgres] [--only submit,get,e2e,webhooks,memory,baseline] [--output DIR] [--awaiting N] [--window SECONDS]  (--help: this; an unknown option stops it)
#        [--rates R1,R2,… [--seconds S]]   (profiling: submit only at these rates, no rate search)
#        [--repeat N] [--max-load L] [--load-wait SECONDS]   (N interleaved runs per store, medians; each run waits for load < L)
# Writes docs/benchmarks.md (between its bench:begin/bench:end markers), docs/benchmarks.json and docs/benchmarks.svg
# (or DIR/…). Full run: at most about 10 minutes per store run on 2 cores;
# --quick: about a minute. Every phase is capped in time, so a slow gateway gives worse figures, not a longer run.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_STARTED_AT_MS=$(($(date +%s%N) / 1000000))
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# The gateway is published the way a deployment would be: Release, ReadyToRun (precompiled, so that the first
# seconds under load are not spent in the JIT), framework-dependent, for this machine's runtime identifier.
case "$(uname -m)" in aarch64|arm64) rid=linux-arm64 ;; *) rid=linux-x64 ;; esac
published=src/ModelRoute.Server/bin/Release/net10.0/$rid/publish
server=$published/ModelRoute.Server.dll
export BENCH_SERVER_DLL=$PWD/$server
bench_published=bench/ModelRoute.Bench/bin/Release/net10.0/$rid/publish
bench=$bench_published/ModelRoute.Bench.dll

# Builds only when a source is newer than the build: even a no-op `dotnet build` costs many seconds on a busy 2-core machine.
stale() { # output, source folders…
  local output=$1
  shift
  [ ! -e "$output" ] && return 0
  [ -n "$(find "$@" Directory.Build.props Directory.Packages.props global.json \( -path '*/bin' -o -path '*/obj' \) -prune -o -type f -newer "$output" -print -quit 2>/dev/null)" ]
}
if stale "$server" src/ModelRoute.Server; then
  dotnet publish src/ModelRoute.Server/ModelRoute.Server.csproj -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true -o "$published" -nologo -v quiet
  touch "$server" # an unchanged build leaves the old file, and the check would build again next time
fi
# The load generator too: its JIT would otherwise share the cores with the gateway during the first phases.
if stale "$bench" bench/ModelRoute.Bench; then
  dotnet publish bench/ModelRoute.Bench/ModelRoute.Bench.csproj -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true -o "$bench_published" -nologo -v quiet
  touch "$bench"
fi

dotnet "$bench" "$@"
