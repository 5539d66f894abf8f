#!/usr/bin/env bash
# The station's main job on its embedded defaults, on a fresh Debian machine (as
# root): installs what it needs, brings up the virtual card lab, and runs a
# provisioning pass (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh runtime
exec .venv/bin/simtool demo "$@"
