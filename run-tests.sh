#!/usr/bin/env bash
# Installs everything the test suite needs (into .venv) and runs the whole suite.
# Usage: ./run-tests.sh [extra pytest args]      e.g. ./run-tests.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
# The independent OPC UA peer (node-opcua) for the interoperability tests, when Node.js is here.
if [ -f tests/interop/node/package-lock.json ] && command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/interop/node --no-audit --no-fund --loglevel=error
fi
# taplo (the TOML engine of VS Code's Even Better TOML) checks configs against `rtompc config schema`.
if [ -f tests/tools/taplo/package-lock.json ] && command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/tools/taplo --no-audit --no-fund --loglevel=error
fi
exec .venv/bin/python -m pytest "$@"
