"""``atr --atr-list`` and the per-user ATR list, which comes before the system's."""

from __future__ import annotations

from pathlib import Path

from apdu.virtual.profile import DEFAULT_ATR
from tests.support.cli import simtool

ATR_HEX = DEFAULT_ATR.hex().upper()
SPACED = " ".join(f"{b:02X}" for b in DEFAULT_ATR)


def _list(path: Path, name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# test list\n{SPACED}\n\t{name}\n\n", encoding="utf-8")
    return path


def test_explicit_list_names_the_card(tmp_path: Path) -> None:
    listing = _list(tmp_path / "list.txt", "Explicit test card")
    result = simtool("atr", ATR_HEX, "--atr-list", str(listing), "--json")
    assert result.code == 0, result.stderr
    assert result.json["card_names"] == ["Explicit test card"]


def test_user_list_comes_before_the_system_list(tmp_path: Path) -> None:
    config = tmp_path / "config"
    _list(config / "simtool" / "smartcard_list.txt", "User list card")
    env = {"XDG_CONFIG_HOME": str(config), "HOME": str(tmp_path / "home")}
    result = simtool("atr", ATR_HEX, "--json", env=env)
    assert result.code == 0, result.stderr
    assert result.json["card_names"] == ["User list card"]
    # pcsc-tools' download place, when simtool's own is absent.
    _list(tmp_path / "home" / ".cache" / "smartcard_list.txt", "Downloaded list card")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "empty")
    result = simtool("atr", ATR_HEX, "--json", env=env)
    assert result.json["card_names"] == ["Downloaded list card"]


def test_missing_explicit_list_is_a_usage_error(tmp_path: Path) -> None:
    result = simtool("atr", ATR_HEX, "--atr-list", str(tmp_path / "nope.txt"))
    assert result.code == 64
    assert "nope.txt" in result.stderr and "Traceback" not in result.stderr
