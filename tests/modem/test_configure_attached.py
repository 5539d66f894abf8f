"""Configuring a modem that is registered: activated APNs, detach/attach, u-blox rules."""

from __future__ import annotations

import pytest

from modem.configure import compare, configure_port, read_state
from modem.dialects import DIALECT_NAMES, DIALECTS, Auth
from modem.modem import Modem, credential_command, enter_pin_on_port
from modem.profiles import IJMIO, ApnProfile
from modem.simulator.protocol_simmodem import modem_for_url


@pytest.mark.parametrize(
    ("dialect", "applied"),
    [
        ("quectel", "cfun"),
        ("simcom", "detach-attach"),
        ("huawei", "detach-attach"),
        ("fibocom", "cfun"),
    ],
)
def test_activated_apn_reads_back_with_operator_identifier(
    dialect: str, applied: str, shared_name: str
) -> None:
    address = f"simmodem://{dialect}?name={shared_name}"
    enter_pin_on_port(address, "0000")
    first = configure_port(address, IJMIO)
    assert first.verified and first.applied == applied
    if applied == "cfun":
        # A CFUN cycle powers the SIM down: it asks for its PIN again.
        enter_pin_on_port(address, "0000")
    with Modem.open(address) as modem:
        assert modem.attached() is True
        apns = {c.cid: c.apn for c in modem.pdp_contexts()}
        checks = compare(modem, IJMIO, read_state(modem, 1))
    assert apns[1] == "ijmio.jp.mnc010.mcc440.gprs"
    apn_check = next(c for c in checks if c.field == "apn")
    assert apn_check.read_back == "ijmio.jp.mnc010.mcc440.gprs"
    assert apn_check.status == "match"
    again = configure_port(address, IJMIO)
    assert again.verified
    # Only the credentials are written again, and only where the password is unreadable.
    expected = (
        ()
        if DIALECTS[dialect].auth.password_readable
        else (credential_command(DIALECTS[dialect], 1, IJMIO).shown,)
    )
    assert again.written == expected


def test_ublox_deactivates_the_context_before_its_credentials(shared_name: str) -> None:
    address = f"simmodem://ublox?name={shared_name}"
    enter_pin_on_port(address, "0000")
    with Modem.open(address) as modem:
        assert modem.active_contexts() == {1: True}
    result = configure_port(address, IJMIO)
    assert result.verified
    assert result.written[0] == "AT+CGACT=0,1"
    assert result.written[-1].startswith("AT+UAUTHREQ=1,3,")


def test_changed_profile_is_rewritten(shared_name: str) -> None:
    address = f"simmodem://generic?name={shared_name}"
    assert configure_port(address, IJMIO).verified
    other = ApnProfile(name="office", apn="office.example", user="u", password="p", auth=Auth.PAP)
    result = configure_port(address, other)
    assert result.verified
    assert result.written == ('AT+CGDCONT=1,"IP","office.example"', 'AT+CGAUTH=1,1,"u","****"')
    assert next(c for c in result.checks if c.field == "auth").read_back == "pap"


UNREADABLE = [d for d in DIALECT_NAMES if not DIALECTS[d].auth.password_readable]
READABLE = [d for d in DIALECT_NAMES if DIALECTS[d].auth.password_readable]


@pytest.mark.parametrize("dialect", UNREADABLE)
def test_a_password_that_cannot_be_read_back_is_always_written(
    dialect: str, shared_name: str
) -> None:
    address = f"simmodem://{dialect}?name={shared_name}"
    engine = modem_for_url(address)
    assert configure_port(address, IJMIO).verified
    code, user, _ = engine.nv.auth[1]
    engine.nv.auth[1] = (code, user, "wrong")  # the modem holds another password
    result = configure_port(address, IJMIO)
    credential = credential_command(engine.dialect, 1, IJMIO).shown
    assert result.written == (credential,)  # the context read back equal: left alone
    assert engine.nv.auth[1][2] == "ij"
    password = next(c for c in result.checks if c.field == "password")
    assert password.status == "not readable" and password.read_back is None
    assert "password" not in result.verified_fields
    assert result.password_status == "written, not readable back"
    assert result.credentials_written and result.verified
    assert any("cannot read it back: it is not verified" in note for note in result.notes)


@pytest.mark.parametrize("dialect", UNREADABLE)
def test_password_option_replaces_a_password_that_cannot_be_read(
    dialect: str, shared_name: str
) -> None:
    address = f"simmodem://{dialect}?name={shared_name}"
    engine = modem_for_url(address)
    assert configure_port(address, IJMIO).verified
    result = configure_port(address, IJMIO.with_overrides(password="other"))
    assert engine.nv.auth[1][2] == "other" and result.credentials_written
    assert result.password_status == "written, not readable back"


@pytest.mark.parametrize("dialect", READABLE)
def test_nothing_is_written_only_when_every_field_reads_back_equal(
    dialect: str, shared_name: str
) -> None:
    address = f"simmodem://{dialect}?name={shared_name}"
    engine = modem_for_url(address)
    assert configure_port(address, IJMIO).verified
    again = configure_port(address, IJMIO)
    assert again.written == () and again.password_status == "match"
    code, user, _ = engine.nv.auth[1]
    engine.nv.auth[1] = (code, user, "wrong")
    fixed = configure_port(address, IJMIO)
    assert fixed.written == (credential_command(engine.dialect, 1, IJMIO).shown,)
    assert engine.nv.auth[1][2] == "ij" and fixed.password_status == "match"


def test_force_write_writes_context_and_credentials(shared_name: str) -> None:
    address = f"simmodem://quectel?name={shared_name}"
    assert configure_port(address, IJMIO).verified
    forced = configure_port(address, IJMIO, force_write=True)
    assert forced.verified and len(forced.written) == 2
