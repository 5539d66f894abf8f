#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (as root): installs the Debian
# packages and the virtualenv, runs the quality gates (ruff, formatter, mypy),
# then runs pytest. The tests start what they need
# themselves (the virtual card lab with its private pcscd, PostgreSQL, the
# modem simulator on ptys).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/gates.sh
exec .venv/bin/python -m pytest "$@"
