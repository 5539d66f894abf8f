"""``modem configure --service-code``: the device is registered with its line (issue 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.cli import simtool


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "SIMTOOL_DB": str(tmp_path / "lines.sqlite"),
        "SIMTOOL_KEY_FILE": str(tmp_path / "secrets.key"),
        "SIMTOOL_OPERATOR": "packer1",
        "SIMTOOL_STATION": "bench-7",
    }


def test_configure_registers_the_device_and_the_export_lists_it(
    sim_pty: Any, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    assert simtool("db", "init", env=env).code == 0
    added = simtool(
        "line",
        "add",
        "--service-code",
        "hdd5500001",
        "--customer",
        "MA55",
        "--type",
        "D",
        "--function",
        "data",
        env=env,
    )
    assert added.code == 0, added.stderr
    sim = sim_pty("quectel")
    first = simtool(
        "modem",
        "configure",
        "--port",
        sim.path,
        "--profile",
        "ijmio",
        "--service-code",
        "hdd5500001",
        "--json",
        env=env,
    )
    assert first.code == 0, first.stderr
    registration = first.json["registration"]
    assert registration["created"] is True and registration["verified"] is True
    imei = first.json["imei"]
    again = simtool(
        "modem",
        "configure",
        "--port",
        sim.path,
        "--profile",
        "ijmio",
        "--service-code",
        "hdd5500001",
        "--json",
        env=env,
    )
    assert again.code == 0, again.stderr
    assert again.json["registration"]["created"] is False
    exported = simtool("export", "imei-list", "--customer", "MA55", "--json", env=env)
    assert exported.code == 0, exported.stderr
    assert imei in exported.stdout and "hdd5500001" in exported.stdout
    assert simtool("audit", "verify", env=env).code == 0


def test_unknown_line_is_refused_after_configuring(sim_pty: Any, tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert simtool("db", "init", env=env).code == 0
    sim = sim_pty("generic")
    result = simtool(
        "modem",
        "configure",
        "--port",
        sim.path,
        "--profile",
        "ijmio",
        "--service-code",
        "hdd5599999",
        env=env,
    )
    assert result.code == 11
    assert "no line hdd5599999" in result.stderr


def test_without_service_code_no_database_is_created(sim_pty: Any, tmp_path: Path) -> None:
    env = _env(tmp_path)
    sim = sim_pty("generic")
    result = simtool("modem", "configure", "--port", sim.path, "--profile", "ijmio", env=env)
    assert result.code == 0, result.stderr
    assert not (tmp_path / "lines.sqlite").exists()
