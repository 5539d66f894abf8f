"""Lab directory layout, reader configuration and naming (no pcscd needed)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from apdu.lab import LabError
from apdu.lab.layout import (
    BASE_PORT,
    LABDIR_ENV,
    LabLayout,
    default_labdir,
    expected_reader_name,
    reader_conf_text,
    slot_port,
    unit_count,
)
from apdu.lab.state import LabState, SlotInfo, read_state, write_json_atomically


def _entries(text: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        fields = dict(re.findall(r"^(FRIENDLYNAME|DEVICENAME|LIBPATH)\s+(.+)$", block, re.M))
        if fields:
            entries.append(fields)
    return entries


def test_one_entry_per_two_slots_each_with_its_own_driver_copy(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path)
    entries = _entries(reader_conf_text(layout, 16))
    assert len(entries) == 8
    assert len({e["LIBPATH"] for e in entries}) == 8
    assert all(e["LIBPATH"].startswith(str(tmp_path / "drivers")) for e in entries)
    # vpcd serves ports P and P+1 for an entry whose DEVICENAME ends in :P.
    ports = [int(e["DEVICENAME"].rsplit(":", 1)[1]) for e in entries]
    assert ports == [BASE_PORT + 2 * unit for unit in range(8)]
    assert [slot_port(s) for s in range(16)] == list(range(BASE_PORT, BASE_PORT + 16))


def test_friendly_names_differ_per_unit() -> None:
    # pcscd numbers readers per name: equal names would give equal reader names.
    text = reader_conf_text(LabLayout(Path("/x")), 6)
    names = [e["FRIENDLYNAME"] for e in _entries(text)]
    assert len(set(names)) == len(names) == 3


def test_odd_slot_counts_round_up_to_whole_units() -> None:
    assert unit_count(1) == 1
    assert unit_count(3) == 2
    assert len(_entries(reader_conf_text(LabLayout(Path("/x")), 3))) == 2


@pytest.mark.parametrize("slots", [0, 17, -1])
def test_impossible_slot_counts_are_refused(slots: int) -> None:
    with pytest.raises(LabError):
        reader_conf_text(LabLayout(Path("/x")), slots)


def test_reader_names_are_unit_then_slot() -> None:
    assert expected_reader_name(0) == "Simtool Lab 0 00 00"
    assert expected_reader_name(1) == "Simtool Lab 0 00 01"
    assert expected_reader_name(15) == "Simtool Lab 7 00 01"


def test_socket_path_too_long_is_refused_with_the_reason(tmp_path: Path) -> None:
    long_dir = tmp_path / ("d" * 100)
    with pytest.raises(LabError) as info:
        LabLayout(long_dir).check_socket_paths()
    assert "107" in str(info.value)
    LabLayout(Path("/tmp/short")).check_socket_paths()


def test_labdir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(LABDIR_ENV, str(tmp_path / "lab"))
    assert default_labdir() == tmp_path / "lab"
    monkeypatch.delenv(LABDIR_ENV)
    if os.geteuid() == 0:
        assert default_labdir() == Path("/run/simtool/lab")


def test_state_round_trip(tmp_path: Path) -> None:
    state = LabState(
        labdir=str(tmp_path),
        phase="ready",
        supervisor_pid=12,
        pcscd_pid=13,
        pcsc_socket="/a/pcscd.comm",
        control_socket="/a/control.sock",
        base_port=BASE_PORT,
        slots=(
            SlotInfo(
                0,
                "Simtool Lab 0 00 00",
                BASE_PORT,
                "present",
                "lab-0",
                "8981090000000000004",
                "440103000000001",
                "standard",
            ),
            SlotInfo(1, "Simtool Lab 0 00 01", BASE_PORT + 1, "empty"),
        ),
        notes=("a note",),
    )
    path = tmp_path / "lab.json"
    write_json_atomically(path, state.to_json_dict())
    assert read_state(path) == state
    assert read_state(tmp_path / "missing.json") is None
