"""The station's main job (``simtool demo``, the README's first command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apdu.lab import Lab
from tests.support.cli import simtool

pytestmark = pytest.mark.lab


def test_demo_provisions_every_lab_card_and_refuses_the_planted_order(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite"
    env = {"SIMTOOL_KEY_FILE": str(tmp_path / "k.key")}
    result = simtool("demo", "--cards", "3", "--db", str(db), "--json", env=env, timeout=300)
    assert result.code == 0, result.stderr
    data = result.json
    assert data["ok"] is True
    assert data["provisioned"] == 3
    outcomes = [order["outcome"] for order in data["orders"]]
    assert outcomes.count("refused as expected") == 1
    assert data["orders"][0]["device_imei"]
    assert data["audit_ok"] is True
    # The pass's own lab is gone afterwards.
    assert Lab.find(data["lab_dir"]) is None
    # What it wrote is in the database for the other commands.
    card = simtool("show", "card", data["orders"][0]["iccid"], "--db", str(db), "--json", env=env)
    assert card.code == 0, card.stderr
    assert data["orders"][0]["service_code"] in card.stdout
    audit = simtool("audit", "verify", "--db", str(db), env=env)
    assert audit.code == 0, audit.stderr
