#!/usr/bin/env bash
# Publishes the gateway as one archive for Linux servers: self-contained (no .NET on the server), linux-x64,
# ReadyToRun (compiled ahead, for a quick start). Usage: deploy/publish.sh [output-directory]   (docs/deploy.md)
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-artifacts}")"
version="$(git describe --tags --always 2>/dev/null || echo dev)"
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT

dotnet publish src/ModelRoute.Server/ModelRoute.Server.csproj -c Release -r linux-x64 --self-contained true \
  -p:PublishReadyToRun=true -p:DebugType=none -o "$staging/modelroute" -v q >&2
# The unit and the example settings travel with the binaries, so the archive is all a server needs.
cp deploy/modelroute.service deploy/modelroute.env.example "$staging/modelroute/"

mkdir -p "$out"
archive="$out/modelroute-$version-linux-x64.tar.gz"
tar -C "$staging" -czf "$archive" modelroute
echo "$archive"
