"""The hint for a PCSCLITE_CSOCK_NAME that names a lab which is not running (no pcscd)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from apdu.lab import explain_missing_service
from apdu.lab.layout import LABDIR_ENV, LabLayout, reader_conf_text
from apdu.lab.state import LabState, write_json_atomically


def _former_lab(root: Path) -> LabLayout:
    """A lab directory as `lab down` leaves it: configuration kept, lab.json and sockets gone."""
    layout = LabLayout(root)
    for directory in (layout.pcscd_dir, layout.reader_conf_dir, layout.cards_dir):
        directory.mkdir(parents=True)
    layout.reader_conf_file.write_text(reader_conf_text(layout, 2))
    return layout


def _dead_pid() -> int:
    """A pid that belongs to no lab supervisor (a finished child of ours)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_former_lab_says_it_is_not_running_and_how_to_start_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LABDIR_ENV, raising=False)
    layout = _former_lab(tmp_path / "lab")
    hint = explain_missing_service(str(layout.pcsc_socket))
    assert hint == (
        f"the lab in {layout.root} is not running (start it with 'simtool lab "
        f"--labdir {layout.root} up', or unset PCSCLITE_CSOCK_NAME)"
    )


def test_default_labdir_needs_no_labdir_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = _former_lab(tmp_path / "lab")
    monkeypatch.setenv(LABDIR_ENV, str(layout.root))
    assert explain_missing_service(str(layout.pcsc_socket)) == (
        f"the lab in {layout.root} is not running (start it with 'simtool lab up', or unset "
        "PCSCLITE_CSOCK_NAME)"
    )


def test_lab_that_died_without_cleaning_up_is_not_running(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path)
    layout.pcscd_dir.mkdir()
    state = LabState(
        labdir=str(tmp_path),
        phase="ready",
        supervisor_pid=_dead_pid(),
        pcscd_pid=None,
        pcsc_socket=str(layout.pcsc_socket),
        control_socket=str(layout.control_socket),
        base_port=35963,
    )
    write_json_atomically(layout.state_file, state.to_json_dict())
    hint = explain_missing_service(str(layout.pcsc_socket))
    assert hint is not None
    assert hint.startswith(f"the lab in {tmp_path} is not running (")


def test_relative_socket_path_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = _former_lab(tmp_path / "lab")
    monkeypatch.chdir(tmp_path)
    hint = explain_missing_service("lab/pcscd/pcscd.comm")
    assert hint is not None and f"the lab in {layout.root} is not running" in hint


@pytest.mark.parametrize(
    "socket_path", ["", "/run/pcscd/pcscd.comm", "/nonexistent/apdu/lab/pcscd/pcscd.comm"]
)
def test_other_sockets_get_no_hint(socket_path: str) -> None:
    assert explain_missing_service(socket_path) is None


def test_directory_without_a_lab_layout_gets_no_hint(tmp_path: Path) -> None:
    (tmp_path / "pcscd").mkdir()
    (tmp_path / "config.json").write_text("{}")
    assert explain_missing_service(str(tmp_path / "pcscd" / "pcscd.comm")) is None


def test_unreadable_lab_state_gives_no_exception(tmp_path: Path) -> None:
    layout = _former_lab(tmp_path / "lab")
    layout.state_file.write_text("{not json")
    hint = explain_missing_service(str(layout.pcsc_socket))
    assert hint is not None and "is not running" in hint
