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

import pytest

from apdu.virtual import VirtualUicc, lab_profile
from simtool.lab import Lab, LabError, LabNotRunningError, find_system_pcscd
from simtool.lab.layout import BASE_PORT, LabLayout, expected_reader_name
from simtool.lab.processes import command_line, mount_namespace
from simtool.lab.state import LabConfig, write_json_atomically
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
    lab.down()
    assert command_line(supervisor) is None
    assert command_line(pcscd) is None
    assert processes_mentioning(str(labdir)) == []
    assert not lab.pcsc_socket.exists()
    assert not lab.layout.control_socket.exists()
    assert Lab.find(labdir) is None


def test_up_is_idempotent(labdir: Path) -> None:
    first = Lab.up(cards=2, labdir=labdir)
    second = Lab.up(cards=4, labdir=labdir)
    assert first.started and not second.started
    assert second.supervisor_pid == first.supervisor_pid
    assert len(second.slots) == 2
    first.down()


def test_two_labs_at_once_do_not_interfere(lab: Lab, labdir: Path) -> None:
    other = Lab.up(cards=2, seed=5, labdir=labdir)
    try:
        readers = probe(other.pcsc_environment(), "readers")
        assert [r["reader"] for r in readers] == [expected_reader_name(0),
                                                  expected_reader_name(1)]
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
    up = simtool("lab", "--labdir", str(labdir), "up", "--cards", "2", "--profile",
                 "classic-sim")
    assert up.code == 0, up.stderr
    assert f"export PCSCLITE_CSOCK_NAME={labdir}/pcscd/pcscd.comm" in up.stdout
    status = simtool("lab", "--labdir", str(labdir), "status", "--json")
    assert status.code == 0, status.stderr
    slots = status.json["slots"]
    assert [s["profile"] for s in slots] == ["classic-sim", "lab-1"]
    removed = simtool("lab", "--labdir", str(labdir), "remove", "1", "--json")
    assert removed.code == 0 and removed.json["state"] == "removed"
    inserted = simtool("lab", "--labdir", str(labdir), "insert", "1", "--profile",
                       "blocked-pin", "--json")
    assert inserted.code == 0, inserted.stderr
    assert inserted.json["profile"] == "blocked-pin" and inserted.json["present"]
    again = simtool("lab", "--labdir", str(labdir), "up")
    assert again.code == 0 and "already up" in again.stdout
    down = simtool("lab", "--labdir", str(labdir), "down")
    assert down.code == 0, down.stderr
    gone = simtool("lab", "--labdir", str(labdir), "status")
    assert gone.code == LabNotRunningError.exit_code
    assert "no lab is running" in gone.stderr


def test_supervisor_refuses_to_run_in_the_callers_namespace(labdir: Path) -> None:
    # Run outside `unshare` it would mount over this machine's /run/pcscd.
    layout = LabLayout(labdir)
    config = LabConfig(slots=2, base_port=BASE_PORT, cards=(),
                       outer_mount_namespace=mount_namespace(), ready_timeout=5)
    write_json_atomically(layout.config_file, config.to_json_dict())
    proc = subprocess.run([sys.executable, "-m", "simtool.lab.server", "--labdir", str(labdir),
                           "--no-detach"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2
    assert "own mount namespace" in proc.stderr
    assert not layout.state_file.exists()
