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
# Workers: most of a test's time is spent waiting on pcscd, ptys, PostgreSQL and
# subprocesses, so three workers keep two cores busy. Each worker has its own
# lab, database and simulators (see CONTRIBUTING.md).
exec .venv/bin/python -m pytest -n "${SIMTOOL_TEST_WORKERS:-3}" "$@"
