"""``simtool read --json`` starts light: what its process must not import, and the lab lookup.

Start-up is most of a card command's CPU time (docs/benchmarks.md); these
tests keep the modules a read does without from creeping back in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apdu.lab import Lab, launcher, layout, state
from simtool.readers import labstate

# Never needed to read a card and print JSON.
NOT_IMPORTED = (
    "rich",
    "sqlalchemy",
    "cryptography",
    "provisioning",
    "apdu.lab",
    "apdu.lab.launcher",
    "apdu.fcp",
    "apdu.transport.trace",
    "subprocess",
)


def test_read_json_imports_none_of_the_heavy_modules(lab: Lab) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "simtool",
            "read",
            "--reader",
            "lab:0",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SIMTOOL_LAB_DIR": str(lab.labdir)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["iccid"]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert imported, proc.stderr
    unwanted = sorted(
        name
        for name in imported
        if any(name == bad or name.startswith(bad + ".") for bad in NOT_IMPORTED)
    )
    assert unwanted == []


def test_the_light_lab_lookup_agrees_with_the_lab(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(labstate.LABDIR_ENV, str(lab.labdir))
    for info in lab.slots[:2]:
        assert labstate.lab_reader(info.slot) == (lab.reader_name(info.slot), str(lab.pcsc_socket))
    assert labstate.lab_reader(len(lab.slots)) is None


def test_the_light_lab_lookup_uses_the_lab_package_constants() -> None:
    assert labstate.LABDIR_ENV == layout.LABDIR_ENV
    assert labstate.SERVER_MODULE == launcher.SERVER_MODULE
    assert labstate.STATE_FORMAT == state.STATE_FORMAT
    assert layout.LabLayout(layout.default_labdir()).state_file.name == labstate.STATE_FILE


def test_the_light_lab_lookup_says_none_without_a_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(labstate.LABDIR_ENV, str(tmp_path))
    assert labstate.lab_reader(0) is None
