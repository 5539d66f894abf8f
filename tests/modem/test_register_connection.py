"""``modem configure --connect-test --service-code``: the registration records the proof.

The device row says whether a data connection with its settings got an
address (``connection_proven``), through the real CLI, a simulator on a pty
and the SQLite line database.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.support.cli import simtool

PROFILES = Path(__file__).resolve().parents[2] / "apdu" / "virtual" / "profiles"


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "SIMTOOL_DB": str(tmp_path / "lines.sqlite"),
        "SIMTOOL_KEY_FILE": str(tmp_path / "secrets.key"),
        "SIMTOOL_OPERATOR": "packer1",
        "SIMTOOL_STATION": "bench-7",
    }


def _proven(tmp_path: Path) -> list[tuple[str, int | None]]:
    with sqlite3.connect(tmp_path / "lines.sqlite") as db:
        return list(db.execute("SELECT imei, connection_proven FROM devices"))


def test_registration_records_whether_the_connection_was_proven(
    sim_pty: Any, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    card = json.loads((PROFILES / "default.json").read_text())
    card["pin1_enabled"] = False
    card_path = tmp_path / "pin-off.json"
    card_path.write_text(json.dumps(card))
    assert simtool("db", "init", env=env).code == 0
    added = simtool(
        "line", "add", "--service-code", "hdd5500002", "--customer", "MA55",
        "--type", "D", "--function", "data", env=env,
    )  # fmt: skip
    assert added.code == 0, added.stderr
    sim = sim_pty("simcom", profile=str(card_path))
    base = ["modem", "configure", "--port", sim.path, "--profile", "ijmio", "--connect-test"]
    first = simtool(*base, "--service-code", "hdd5500002", "--json", env=env)
    assert first.code == 0, first.output
    assert first.json["connection_proven"] is True
    assert first.json["connection"]["ipv4"] == "10.45.1.7"
    assert _proven(tmp_path) == [(first.json["imei"], 1)]

    refused = simtool(
        *base, "--password", "wrong-pw", "--force-write", "--service-code", "hdd5500002", env=env
    )
    assert refused.code == 9, refused.output
    assert "authentication" in refused.output and "wrong-pw" not in refused.output
    assert _proven(tmp_path) == [(first.json["imei"], 0)]
    assert simtool("audit", "verify", env=env).code == 0
