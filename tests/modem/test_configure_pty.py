"""Every dialect configured and verified through a real pty, simulator in its own process.

This is the issue's "done when": ``simtool modem configure --port <pty>
--profile ijmio --json`` against ``python -m modem.simulator --dialect D``
verifies APN, user and authentication and exits 0; a second run writes
nothing; ``simtool modem info`` gives the IMEI and the SIM's ICCID.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apdu.files import luhn_valid
from apdu.virtual import lab_profile
from modem.dialects import DIALECT_NAMES, DIALECTS
from modem.simulator.vendors import VENDORS
from tests.support.cli import simtool

SimFactory = Callable[..., Any]


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_configure_verify_rerun_and_info(dialect: str, sim_pty: SimFactory) -> None:
    sim = sim_pty(dialect)
    first = simtool("modem", "configure", "--port", sim.path, "--profile", "ijmio", "--json")
    assert first.code == 0, first.output
    result = first.json
    assert result["verified"] is True and result["dialect"] == dialect
    assert {"apn", "user", "auth"} <= set(result["verified_fields"])
    assert result["changed"] is True
    auth_command = DIALECTS[dialect].auth.command
    assert any(auth_command in command for command in result["written"])
    # The password never appears in clear: written commands and checks mask it.
    assert all("****" in c for c in result["written"] if auth_command in c)
    password_check = next(c for c in result["checks"] if c["field"] == "password")
    assert password_check["wanted"] == "****"
    if DIALECTS[dialect].auth.password_readable:
        assert password_check["status"] == "match" and password_check["read_back"] == "****"
        assert result["password_status"] == "match"
    else:
        assert password_check["status"] == "not readable"
        assert result["password_status"] == "written, not readable back"
    assert result["imei"] == VENDORS[dialect].imei

    again = simtool("modem", "configure", "--port", sim.path, "--profile", "ijmio", "--json")
    assert again.code == 0, again.output
    assert again.json["verified"] is True
    if DIALECTS[dialect].auth.password_readable:
        # Every field, the password included, reads back equal: nothing is written.
        assert again.json["written"] == [] and again.json["changed"] is False
        assert again.json["password_status"] == "match"
    else:
        # The password could be anything: only the credentials are written again.
        assert [auth_command in c for c in again.json["written"]] == [True]
        assert again.json["password_status"] == "written, not readable back"

    info = simtool("modem", "info", "--port", sim.path, "--json")
    assert info.code == 0, info.output
    data = info.json
    assert data["identity"]["imei"] == VENDORS[dialect].imei
    assert luhn_valid(data["identity"]["imei"])
    assert data["sim"]["iccid"] == lab_profile(0).iccid
    assert data["sim"]["pin_state"] == "SIM PIN"  # lab stock: PIN1 0000 enabled
    context = next(c for c in data["contexts"] if c["cid"] == 1)
    assert context["apn"] == "ijmio.jp" and context["user"] == "mio@ij"
    assert sim.stop() == 0


def test_custom_credentials_never_leak(sim_pty: SimFactory, tmp_path: Path) -> None:
    sim = sim_pty("quectel")
    secret = "Xq7-secret-pw"
    trace = tmp_path / "at.jsonl"
    run = simtool(
        "modem",
        "configure",
        "--port",
        sim.path,
        "--apn",
        "office.example",
        "--user",
        "u1",
        "--password",
        secret,
        "--auth",
        "chap",
        "--json",
        "--trace",
        str(trace),
    )
    assert run.code == 0, run.output
    assert run.json["verified"] and run.json["profile"] == "custom"
    assert secret not in run.output
    traced = trace.read_text()
    assert "QICSGP" in traced and secret not in traced


def test_credentials_refused_before_anything_is_sent(sim_pty: SimFactory, tmp_path: Path) -> None:
    sim = sim_pty("fibocom")
    trace = tmp_path / "at.jsonl"
    quote = simtool(
        "modem",
        "configure",
        "--port",
        sim.path,
        "--apn",
        "x.example",
        "--user",
        'we"ird',
        "--password",
        "p",
        "--trace",
        str(trace),
    )
    assert quote.code == 64 and "quote" in quote.stderr
    assert not trace.exists() or trace.read_text() == ""  # the port was never opened
    long_password = "p" * 51  # +XGAUTH carries at most 50 characters
    too_long = simtool(
        "modem",
        "configure",
        "--port",
        sim.path,
        "--apn",
        "x.example",
        "--user",
        "u",
        "--password",
        long_password,
        "--trace",
        str(trace),
    )
    assert too_long.code == 64 and "50" in too_long.stderr
    assert long_password not in too_long.output
    sent = trace.read_text()
    assert "XGAUTH" not in sent and "CGDCONT=" not in sent  # identified, nothing written


@pytest.mark.parametrize(
    "dialect", [d for d in DIALECT_NAMES if not DIALECTS[d].auth.password_readable]
)
def test_wrong_password_is_replaced_where_it_cannot_be_read_back(
    dialect: str, sim_pty: SimFactory
) -> None:
    sim = sim_pty(dialect)
    wrong = simtool(
        "modem", "configure", "--port", sim.path, "--profile", "ijmio", "--password", "wrong-pw"
    )
    assert wrong.code == 0, wrong.output
    # The modem now holds a wrong password; configuring the profile must replace it
    # and must not claim the modem already held the profile.
    run = simtool("modem", "configure", "--port", sim.path, "--profile", "ijmio")
    assert run.code == 0, run.output
    auth_command = DIALECTS[dialect].auth.command
    wrote = [line for line in run.stdout.splitlines() if line.startswith("wrote:")]
    assert len(wrote) == 1 and auth_command in wrote[0] and "****" in wrote[0]
    text = " ".join(run.stdout.split())
    assert "wrote nothing" not in text and "already holds" not in text
    assert "password written, not readable back (not verified)" in text
    assert "password │ **** │ - │ written, not readable back" in text
    assert "wrong-pw" not in run.output and "wrong-pw" not in wrong.output


def test_modem_list_probes_the_pty_without_hanging(sim_pty: SimFactory) -> None:
    sim = sim_pty("huawei")
    run = simtool("modem", "list", "--also", sim.path, "--json")
    assert run.code == 0, run.output
    ours = next(r for r in run.json["ports"] if r["device"] == sim.path)
    assert ours["answers_at"] is True and ours["dialect"] == "huawei"
