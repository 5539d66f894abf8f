#!/usr/bin/env bash
# The quality gates CI runs before the tests: lint, formatting, types.
# Tool versions are pinned in constraints.txt so the gates do not drift.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
