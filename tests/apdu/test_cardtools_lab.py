"""``simtool apdu`` and ``simtool watch`` against lab cards (real pcscd + vpcd)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.support.cli import simtool

pytestmark = pytest.mark.lab


def test_apdu_select_mf_answers_9000(lab: Any) -> None:
    result = simtool("apdu", "--reader", "lab:0", "00A4000C023F00", "--json")
    assert result.code == 0, result.stderr
    (response,) = result.json["responses"]
    assert (response["sw"], response["ok"]) == ("9000", True)
    assert response["meaning"] == "normal ending of the command"


def test_apdu_does_get_response_and_names_failures(lab: Any) -> None:
    # SELECT ADF.USIM with its FCP: 61xx on the lab's T=0 card, then GET RESPONSE.
    result = simtool(
        "apdu", "--reader", "lab:0", "00A4040407A0000000871002", "00B0000001", "--json"
    )
    assert result.code == 0, result.stderr
    fcp, no_ef = result.json["responses"]
    assert fcp["sw"] == "9000" and fcp["data"].startswith("62")
    assert no_ef["sw"] == "6986" and no_ef["ok"] is False
    human = simtool("apdu", "--reader", "lab:0", "00B0000001")
    assert human.code == 0 and "6986  command not allowed: no current EF" in human.stdout


def test_apdu_masks_a_pin_and_leaves_the_card_locked(fresh_card: Any, tmp_path: Any) -> None:
    reader, _ = fresh_card()
    trace = tmp_path / "apdu.jsonl"
    verify = "0020000108" + b"0000".hex() + "FFFFFFFF"
    result = simtool(
        "apdu", "--reader", reader, "00A4040C07A0000000871002", verify, "--trace", str(trace)
    )
    assert result.code == 0, result.stderr
    assert "9000" in result.stdout
    for text in (result.output, trace.read_text()):
        assert b"0000".hex().upper() + "FFFFFFFF" not in text.upper()
    status = simtool("pin", "status", "--reader", reader, "--json")
    assert status.json["pin1"]["verified"] is False


def test_apdu_bad_hex_is_a_usage_error(lab: Any) -> None:
    result = simtool("apdu", "--reader", "lab:0", "00A4XYZ")
    assert result.code == 64
    assert "Traceback" not in result.stderr and "hex" in result.stderr


def test_watch_reports_removal_and_insertion(fresh_card: Any, lab: Any) -> None:
    reader, profile = fresh_card()
    slot = lab.slot_of(reader)
    command = ["watch", "--json", "--reader", f"lab:{slot}", "--exit-after", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "simtool", *command, "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None

    def next_event() -> dict[str, Any]:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, proc.stderr.read() if proc.stderr else ""
        event: dict[str, Any] = json.loads(line)
        return event

    try:
        assert next_event()["event"] == "reader-added"
        present = next_event()
        assert (present["event"], present["reader"]) == ("inserted", reader)
        assert present["atr"] == profile.atr.hex().upper()
        lab.remove(slot)
        assert next_event() == {
            "event": "removed",
            "reader": reader,
            "atr": None,
            "card_name": None,
        }
        lab.insert(slot, profile)
        back = next_event()
        assert (back["event"], back["atr"]) == ("inserted", profile.atr.hex().upper())
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_watch_survives_a_pcscd_restart(tmp_path: Any) -> None:
    # A private lab: restarting the session lab's pcscd would disturb other tests.
    from apdu.lab import Lab

    private = Lab.up(cards=1, slots=1, labdir=tmp_path / "lab", fresh=True)
    try:
        env = {**private.pcsc_environment(), "SIMTOOL_LAB_DIR": str(tmp_path / "lab")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "simtool", "watch", "--json", "--timeout", "60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        assert proc.stdout is not None
        try:

            def wait_for(kind: str) -> dict[str, Any]:
                while True:
                    line = proc.stdout.readline()  # type: ignore[union-attr]
                    assert line, proc.stderr.read() if proc.stderr else ""
                    event: dict[str, Any] = json.loads(line)
                    if event["event"] == kind:
                        return event

            wait_for("inserted")
            private.restart_pcscd()
            wait_for("service-lost")
            wait_for("service-back")
            back = wait_for("inserted")
            assert back["reader"] == private.reader_name(0)
            private.remove(0)
            assert wait_for("removed")["reader"] == private.reader_name(0)
        finally:
            proc.kill()
            proc.wait()
    finally:
        private.down()
