#!/usr/bin/env bash
# Benchmarks: builds Release, runs the gateway on SQLite and PostgreSQL and measures it from a separate process.
# Usage: ./bench/run.sh [--quick] [--store sqlite|postgres]
# Writes docs/benchmarks.md and docs/benchmarks.json. Full run: about 10 minutes on 2 cores; --quick: a short smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/ModelRoute.Server/ModelRoute.Server.csproj -c Release -nologo -v quiet
dotnet build bench/ModelRoute.Bench/ModelRoute.Bench.csproj -c Release -nologo -v quiet
dotnet bench/ModelRoute.Bench/bin/Release/net10.0/ModelRoute.Bench.dll "$@"
echo "Results: $(pwd)/docs/benchmarks.md and $(pwd)/docs/benchmarks.json"
