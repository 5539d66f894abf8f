"""Starting and stopping labs of their own, next to the session lab.

These labs are probed from subprocesses: this process's libpcsclite is bound
to the session lab's socket.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apdu.lab import (
    Lab,
    LabConflictError,
    LabError,
    LabNotRunningError,
    explain_missing_service,
    find_system_pcscd,
)
from apdu.lab.layout import BASE_PORT, LabLayout, expected_reader_name
from apdu.lab.processes import command_line, mount_namespace
from apdu.lab.state import LabConfig, write_json_atomically
from apdu.virtual import VirtualUicc, lab_profile
from tests.lab.lab_probe import probe
from tests.support.cli import simtool

pytestmark = pytest.mark.lab

WRONG_PIN1 = (bytes.fromhex("0020000108") + b"9999" + b"\xff" * 4).hex()
PIN1_RETRIES = "00200001"


@pytest.fixture
def labdir() -> Iterator[Path]:
    """A short lab directory of its own; any lab left in it is stopped afterwards."""
    path = Path(tempfile.mkdtemp(prefix="simtool-lt-", dir="/tmp"))
    yield path
    leftover = Lab.find(path)
    if leftover is not None:
        leftover.down()
    shutil.rmtree(path, ignore_errors=True)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            args = command_line(int(entry.name))
            if args and any(text in arg for arg in args):
                found.append(int(entry.name))
    return found


def test_up_then_down_leaves_no_process_and_no_socket(labdir: Path) -> None:
    lab = Lab.up(cards=2, labdir=labdir)
    supervisor, pcscd = lab.supervisor_pid, lab.pcscd_pid
    assert pcscd is not None
    assert command_line(supervisor) is not None and command_line(pcscd) is not None
    assert lab.pcsc_socket.is_socket()
    # Should a client still fail to reach it, the lab is up: its pcscd is to blame.
    up_hint = explain_missing_service(str(lab.pcsc_socket))
    assert up_hint is not None
    assert up_hint.startswith(f"the lab in {labdir} is up but its pcscd does not answer")
    lab.down()
    assert explain_missing_service(str(lab.pcsc_socket)) == (
        f"the lab in {labdir} is not running (start it with 'simtool lab --labdir {labdir} "
        "up', or unset PCSCLITE_CSOCK_NAME)"
    )
    assert command_line(supervisor) is None
    assert command_line(pcscd) is None
    assert processes_mentioning(str(labdir)) == []
    assert not lab.pcsc_socket.exists()
    assert not lab.layout.control_socket.exists()
    assert Lab.find(labdir) is None


def test_up_is_idempotent_for_what_the_running_lab_has(labdir: Path) -> None:
    first = Lab.up(cards=4, profiles=["classic-sim"], seed=3, labdir=labdir)
    assert first.started
    for same in (
        Lab.up(cards=4, profiles=["classic-sim"], seed=3, labdir=labdir),
        Lab.up(labdir=labdir),  # asks for nothing in particular
        Lab.up(cards=2, profiles=["classic-sim"], seed=3, labdir=labdir),
        Lab.up(profiles=["classic-sim"], labdir=labdir),
        Lab.up(profiles=["classic-sim"], seed=3, slots=3, fresh=True, labdir=labdir),
    ):
        assert not same.started
        assert same.supervisor_pid == first.supervisor_pid
        assert len(same.slots) == 4
    first.down()


@pytest.mark.parametrize(
    ("request_", "asked"),
    [
        ({"cards": 8}, "asked for 8 cards: "),
        ({"slots": 6}, "asked for 6 slots (it has 4): "),
        (
            {"profiles": ["blocked-pin"]},
            "asked for blocked-pin in slot 0 (it holds lab-0, ICCID {iccid0}): ",
        ),
        (
            {"seed": 5},
            "asked for lab stock of seed 5 in slots 0, 1 (it holds the lab stock of seed 0): ",
        ),
        (
            {"cards": 4, "profiles": ["classic-sim", "blocked-pin"]},
            "asked for classic-sim in slot 0 (it holds lab-0, ICCID {iccid0}); "
            "blocked-pin in slot 1 (it holds lab-1, ICCID {iccid1}): ",
        ),
    ],
)
def test_up_refuses_a_request_the_running_lab_does_not_meet(
    labdir: Path, request_: dict[str, Any], asked: str
) -> None:
    first = Lab.up(cards=4, labdir=labdir)
    with pytest.raises(LabConflictError) as info:
        Lab.up(labdir=labdir, **request_)
    expected = asked.format(iccid0=lab_profile(0).iccid, iccid1=lab_profile(1).iccid)
    assert str(info.value) == (
        f"a lab with 4 cards is already up in {labdir}; {expected}run 'simtool lab down' first"
    )
    assert info.value.labdir == str(labdir)
    # The running lab is left exactly as it was.
    assert Lab.running(labdir).supervisor_pid == first.supervisor_pid
    assert [s.iccid for s in first.slots] == [lab_profile(i).iccid for i in range(4)]
    first.down()


def test_up_fresh_refuses_used_or_removed_cards(labdir: Path) -> None:
    lab = Lab.up(cards=2, fresh=True, labdir=labdir)
    assert not Lab.up(cards=2, fresh=True, labdir=labdir).started  # nothing used yet
    assert probe(lab.pcsc_environment(), "apdu", lab.reader_name(1), WRONG_PIN1) == ["63C2"]
    with pytest.raises(LabConflictError, match=r"asked for fresh cards \(slot 1: PIN counters"):
        Lab.up(cards=2, fresh=True, labdir=labdir)
    assert not Lab.up(cards=1, fresh=True, labdir=labdir).started  # slot 1 not asked for
    lab.remove(0)
    with pytest.raises(
        LabConflictError,
        match=r"asked for a card present in slot 0 .*'simtool "
        r"lab insert 0' puts it back",
    ):
        Lab.up(cards=1, labdir=labdir)
    lab.down()


def test_two_labs_at_once_do_not_interfere(lab: Lab, labdir: Path) -> None:
    other = Lab.up(cards=2, seed=5, labdir=labdir)
    try:
        readers = probe(other.pcsc_environment(), "readers")
        assert [r["reader"] for r in readers] == [expected_reader_name(0), expected_reader_name(1)]
        assert all(r["present"] for r in readers)
        # The same reader names and ports, different cards: separate namespaces.
        assert other.slot(0).iccid == lab_profile(0, 5).iccid != lab.slot(0).iccid
        other.remove(0)
        assert lab.slot(0).present
        session = probe(lab.pcsc_environment(), "readers")
        assert len(session) == 16 and session[0]["present"]
        assert not probe(other.pcsc_environment(), "readers")[0]["present"]
    finally:
        other.down()
    assert Lab.find(lab.labdir) is not None
    assert probe(lab.pcsc_environment(), "readers")[0]["present"]


def test_down_stops_only_what_the_lab_started(lab: Lab, labdir: Path, tmp_path: Path) -> None:
    # A process that looks like a system pcscd, in this namespace.
    decoy_binary = tmp_path / "pcscd"
    shutil.copy("/bin/sleep", decoy_binary)
    decoy = subprocess.Popen([str(decoy_binary), "60"])
    try:
        # Until the child has exec'd, its name is still python's.
        deadline = time.monotonic() + 5
        while (
            Path(f"/proc/{decoy.pid}/comm").read_text().strip() != "pcscd"
            and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        system = find_system_pcscd()
        assert system is not None and decoy.pid in system.pids
        other = Lab.up(cards=1, labdir=labdir)
        assert any("system pcscd" in note for note in other.notes)
        other.down()
        assert decoy.poll() is None
        assert Lab.find(lab.labdir) is not None
        assert command_line(lab.supervisor_pid) is not None
    finally:
        decoy.kill()
        decoy.wait()


def test_killed_supervisor_takes_its_pcscd_along_and_up_recovers(labdir: Path) -> None:
    lab = Lab.up(cards=1, labdir=labdir)
    pcscd = lab.pcscd_pid
    assert pcscd is not None
    os.kill(lab.supervisor_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while command_line(pcscd) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert command_line(pcscd) is None
    assert Lab.find(labdir) is None
    again = Lab.up(cards=1, labdir=labdir)
    assert again.started
    assert probe(again.pcsc_environment(), "readers")[0]["present"]
    again.down()


def test_pcscd_restart_cards_reconnect(labdir: Path) -> None:
    lab = Lab.up(cards=2, labdir=labdir)
    before = lab.pcscd_pid
    lab.restart_pcscd()
    assert lab.pcscd_pid not in (None, before)
    readers = probe(lab.pcsc_environment(), "readers")
    assert [r["present"] for r in readers] == [True, True]
    responses = probe(lab.pcsc_environment(), "apdu", lab.reader_name(1), "00A4000C023F00")
    assert responses == ["9000"]
    lab.down()


def test_card_state_kept_across_lab_restart_unless_fresh(labdir: Path) -> None:
    lab = Lab.up(cards=1, labdir=labdir)
    reader = lab.reader_name(0)
    answers = probe(lab.pcsc_environment(), "apdu", reader, WRONG_PIN1, PIN1_RETRIES)
    assert answers == ["63C2", "63C2"]
    lab.down()
    lab = Lab.up(cards=1, labdir=labdir)
    assert probe(lab.pcsc_environment(), "apdu", reader, PIN1_RETRIES) == ["63C2"]
    lab.down()
    lab = Lab.up(cards=1, labdir=labdir, fresh=True)
    assert probe(lab.pcsc_environment(), "apdu", reader, PIN1_RETRIES) == ["63C3"]
    lab.down()
    # Another card in the slot (another seed) starts fresh as well.
    state = VirtualUicc(lab_profile(0), state_path=lab.layout.card_state(0))
    state.power_on()
    state.process(bytes.fromhex(WRONG_PIN1))
    lab = Lab.up(cards=1, seed=9, labdir=labdir)
    assert probe(lab.pcsc_environment(), "apdu", reader, PIN1_RETRIES) == ["63C3"]
    lab.down()


def test_too_long_labdir_is_refused_before_anything_starts(tmp_path: Path) -> None:
    long_dir = tmp_path / ("x" * 90)
    with pytest.raises(LabError) as info:
        Lab.up(cards=1, labdir=long_dir)
    assert "too long" in str(info.value)
    assert not long_dir.exists()


def test_cli_up_status_remove_insert_down(labdir: Path) -> None:
    up = simtool("lab", "--labdir", str(labdir), "up", "--cards", "2", "--profile", "classic-sim")
    assert up.code == 0, up.stderr
    assert f"export PCSCLITE_CSOCK_NAME={labdir}/pcscd/pcscd.comm" in up.stdout
    status = simtool("lab", "--labdir", str(labdir), "status", "--json")
    assert status.code == 0, status.stderr
    slots = status.json["slots"]
    assert [s["profile"] for s in slots] == ["classic-sim", "lab-1"]
    removed = simtool("lab", "--labdir", str(labdir), "remove", "1", "--json")
    assert removed.code == 0 and removed.json["state"] == "removed"
    inserted = simtool(
        "lab", "--labdir", str(labdir), "insert", "1", "--profile", "blocked-pin", "--json"
    )
    assert inserted.code == 0, inserted.stderr
    assert inserted.json["profile"] == "blocked-pin" and inserted.json["present"]
    again = simtool("lab", "--labdir", str(labdir), "up")
    assert again.code == 0 and "already up" in again.stdout
    again_json = simtool("lab", "--labdir", str(labdir), "up", "--profile", "classic-sim", "--json")
    assert again_json.code == 0, again_json.stderr
    assert again_json.json["started"] is False
    assert "started" not in status.json
    more = simtool("lab", "--labdir", str(labdir), "up", "--cards", "8", "--json")
    assert more.code == LabConflictError.exit_code
    assert f"a lab with 2 cards is already up in {labdir}; asked for 8 cards; " in more.stderr
    assert more.stderr.rstrip().endswith(": run 'simtool lab down' first")
    assert more.json["error"]["type"] == "LabConflictError"
    other = simtool("lab", "--labdir", str(labdir), "up", "--profile", "blocked-pin")
    assert other.code == LabConflictError.exit_code
    assert "asked for blocked-pin in slot 0 (it holds classic-sim" in other.stderr
    assert "already up" not in other.stdout
    down = simtool("lab", "--labdir", str(labdir), "down")
    assert down.code == 0, down.stderr
    assert explain_missing_service(f"{labdir}/pcscd/pcscd.comm") == (
        f"the lab in {labdir} is not running (start it with 'simtool lab --labdir {labdir} "
        "up', or unset PCSCLITE_CSOCK_NAME)"
    )
    gone = simtool("lab", "--labdir", str(labdir), "status")
    assert gone.code == LabNotRunningError.exit_code
    assert "no lab is running" in gone.stderr


def test_supervisor_refuses_to_run_in_the_callers_namespace(labdir: Path) -> None:
    # Run outside `unshare` it would mount over this machine's /run/pcscd.
    layout = LabLayout(labdir)
    config = LabConfig(
        slots=2,
        base_port=BASE_PORT,
        cards=(),
        outer_mount_namespace=mount_namespace(),
        ready_timeout=5,
    )
    write_json_atomically(layout.config_file, config.to_json_dict())
    proc = subprocess.run(
        [sys.executable, "-m", "apdu.lab.server", "--labdir", str(labdir), "--no-detach"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "own mount namespace" in proc.stderr
    assert not layout.state_file.exists()
