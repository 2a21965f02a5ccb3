#!/usr/bin/env bash
# What the tests with real clients and servers need: Node.js with the packages of tests/Orleans.MoE.Api.Tests/js
# (the official openai client, playwright-core) and tests/Orleans.MoE.Silo.Tests/js (azurite), and Debian's
# Chromium. Installs what is missing; idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  echo "installing ${missing[*]} (Debian packages)"
  "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The exact packages of each package-lock.json, unless installed since the lock file last changed:
# the front end's real clients, and Azurite (the Azure Storage emulator the silo tests start).
for js in tests/Orleans.MoE.Api.Tests/js tests/Orleans.MoE.Silo.Tests/js; do
  if [ ! -f "$js/node_modules/.package-lock.json" ] || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$js" --no-audit --no-fund --loglevel=error
  fi
done
