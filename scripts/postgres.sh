#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries are installed (Debian's postgresql package); the tests start
# their own private server from them. Installs with apt-get when they are missing.
set -euo pipefail
if ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
echo "installing PostgreSQL (Debian package postgresql) for the tests"
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq postgresql >/dev/null
ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null
