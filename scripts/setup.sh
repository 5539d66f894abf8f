#!/usr/bin/env bash
# Idempotent setup for a Debian machine (run as root, or with sudo available):
# the Debian packages simtool needs (PC/SC stack, the vpcd virtual reader driver,
# build headers for pyscard, PostgreSQL for the many-stations tests) and a
# virtualenv in .venv with simtool installed in editable mode.
#
# Usage: scripts/setup.sh [runtime|test]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-test}"

runtime_pkgs=(pcscd vsmartcard-vpcd libpcsclite-dev pcsc-tools swig gcc python3-dev python3-venv iproute2 util-linux)
test_pkgs=(postgresql chromium fonts-noto-cjk)  # chromium + CJK font: the diagnosis report rendered in tests
pkgs=("${runtime_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    # policy-rc.d keeps package scripts from starting a system pcscd that would
    # serve the vpcd virtual reader on all interfaces.
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.simtool-installed-$mode
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    # The runtime needs the test extra too: `simtool demo` and the pytest plugin
    # serve virtual cards to other projects' test suites.
    extras="test"; [ "$mode" = test ] && extras="test,dev"
    # constraints.txt pins every version (gates included) so that a fresh clone
    # installs what CI ran with.
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[${extras}]"
    touch "$stamp"
fi
