"""Configuring a modem that is registered: activated APNs, detach/attach, u-blox rules."""

from __future__ import annotations

import pytest

from modem.configure import configure_port
from modem.dialects import Auth
from modem.modem import Modem, enter_pin_on_port
from modem.profiles import IJMIO, ApnProfile
from modem.simulator.protocol_simmodem import modem_for_url


@pytest.mark.parametrize(("dialect", "applied"), [
    ("quectel", "cfun"), ("simcom", "detach-attach"), ("huawei", "detach-attach"),
    ("fibocom", "cfun")])
def test_activated_apn_reads_back_with_operator_identifier(dialect: str, applied: str,
                                                           shared_name: str) -> None:
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
    assert apns[1] == "ijmio.jp.mnc010.mcc440.gprs"
    again = configure_port(address, IJMIO)
    apn_check = next(c for c in again.checks if c.field == "apn")
    assert apn_check.read_back == "ijmio.jp.mnc010.mcc440.gprs"
    assert apn_check.status == "match" and again.written == () and again.verified


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
    other = ApnProfile(name="office", apn="office.example", user="u", password="p",
                       auth=Auth.PAP)
    result = configure_port(address, other)
    assert result.verified
    assert result.written == ('AT+CGDCONT=1,"IP","office.example"', 'AT+CGAUTH=1,1,"u","****"')
    assert next(c for c in result.checks if c.field == "auth").read_back == "pap"


def test_password_not_readable_is_left_unless_forced(shared_name: str) -> None:
    address = f"simmodem://sierra?name={shared_name}"
    engine = modem_for_url(address)
    assert configure_port(address, IJMIO).verified
    changed = IJMIO.with_overrides(password="other")
    kept = configure_port(address, changed)
    assert kept.written == () and kept.verified
    assert any("password is not readable" in note for note in kept.notes)
    assert engine.nv.auth[1][2] == "ij"
    forced = configure_port(address, changed, force_write=True)
    assert forced.verified and engine.nv.auth[1][2] == "other"
