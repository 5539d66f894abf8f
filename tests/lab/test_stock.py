"""The vendor stock file of the lab's cards (no pcscd needed)."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import pytest

from apdu.errors import UsageError
from apdu.lab import StockFileExistsError, lab_card_profiles
from apdu.virtual import lab_profile, load_profile
from provisioning.labstock import stock_csv, write_lab_stock_file
from provisioning.stockfile import STOCK_COLUMNS
from tests.support.cli import simtool


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_header_is_the_vendor_layout() -> None:
    assert stock_csv([]).splitlines() == [",".join(STOCK_COLUMNS)]
    assert STOCK_COLUMNS == (
        "ICCID",
        "IMSI",
        "PIN1",
        "PUK1",
        "PIN2",
        "PUK2",
        "KI",
        "OPC",
        "ADM1",
        "FORM_FACTOR",
    )


def test_rows_carry_each_profile_with_keys_in_upper_hex(tmp_path: Path) -> None:
    out = tmp_path / "stock.csv"
    assert write_lab_stock_file(out, cards=3, seed=7) == 3
    rows = _rows(out)
    for slot, row in enumerate(rows):
        p = lab_profile(slot, 7)
        assert row == {
            "ICCID": p.iccid,
            "IMSI": p.imsi,
            "PIN1": p.pin1,
            "PUK1": p.puk1,
            "PIN2": p.pin2,
            "PUK2": p.puk2,
            "KI": p.ki.hex().upper(),
            "OPC": p.opc.hex().upper(),
            "ADM1": p.adm1,
            "FORM_FACTOR": p.form_factor,
        }
        assert row["KI"] == row["KI"].upper() and len(row["KI"]) == 32


def test_file_is_private_and_never_overwritten_silently(tmp_path: Path) -> None:
    out = tmp_path / "stock.csv"
    write_lab_stock_file(out, cards=1)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with pytest.raises(UsageError):
        write_lab_stock_file(out, cards=2)
    assert len(_rows(out)) == 1
    out.chmod(0o644)
    write_lab_stock_file(out, cards=2, overwrite=True)
    assert len(_rows(out)) == 2
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_profiles_fill_the_first_slots_lab_stock_the_rest() -> None:
    cards = lab_card_profiles(4, ["classic-sim", "blocked-pin"], seed=3)
    assert [c.name for c in cards] == ["classic-sim", "blocked-pin", "lab-2", "lab-3"]
    assert cards[2] == lab_profile(2, 3)
    assert cards[0] == load_profile("classic-sim")
    assert len(lab_card_profiles(None, ["default"] * 3)) == 3
    assert len(lab_card_profiles()) == 2
    with pytest.raises(UsageError):
        lab_card_profiles(1, ["default", "default"])
    with pytest.raises(UsageError):
        lab_card_profiles(17)


def test_cli_writes_the_file_without_printing_a_secret(tmp_path: Path) -> None:
    out = tmp_path / "lab-stock.csv"
    result = simtool("lab", "stock-file", str(out), "--cards", "4", "--seed", "2")
    assert result.code == 0, result.stderr
    rows = _rows(out)
    assert [r["ICCID"] for r in rows] == [lab_profile(i, 2).iccid for i in range(4)]
    for row in rows:
        for column in ("PUK1", "PUK2", "PIN2", "ADM1", "KI", "OPC"):
            assert row[column] not in result.output
    again = simtool("lab", "stock-file", str(out), "--cards", "4")
    assert again.code == UsageError.exit_code
    assert f"{out} exists" in again.stderr
    assert "--force" in again.stderr
    forced = simtool("lab", "stock-file", str(out), "--cards", "2", "--force")
    assert forced.code == 0, forced.stderr
    assert len(_rows(out)) == 2


def test_existing_file_error_carries_the_path_and_names_the_option(tmp_path: Path) -> None:
    out = tmp_path / "stock.csv"
    out.write_text("keep me\n")
    with pytest.raises(StockFileExistsError) as info:
        write_lab_stock_file(out, cards=1)
    assert info.value.path == str(out)
    assert "--force" in str(info.value)
    assert isinstance(info.value, UsageError)
    assert out.read_text() == "keep me\n"
