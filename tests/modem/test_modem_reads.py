"""What a modem can be asked: identity, SIM, network; dialect override and fallbacks."""

from __future__ import annotations

from apdu.virtual import lab_profile, load_profile
from modem.channel import at
from modem.modem import Modem, enter_pin_on_port
from modem.simulator.protocol_simmodem import modem_for_url


def test_iccid_falls_back_to_crsm_when_the_vendor_command_fails(shared_name: str) -> None:
    # A generic 27.007 modem driven as a Quectel: AT+QCCID is unknown there.
    address = f"simmodem://generic?name={shared_name}"
    with Modem.open(address, dialect="quectel") as modem:
        assert modem.dialect.name == "quectel"
        reading, source = modem.iccid()
        notes = list(modem.events.notes)
    assert reading.iccid == lab_profile(0).iccid and source == "AT+CRSM"
    assert any("AT+QCCID did not give an ICCID" in note for note in notes)
    assert "AT+CRSM=176,12258,0,0,10" in modem_for_url(address).history


def test_twenty_digit_iccid_through_every_path() -> None:
    expected = load_profile("iccid-20-digits").iccid
    for dialect in ("sierra", "generic", "huawei"):
        with Modem.open(f"simmodem://{dialect}?profile=iccid-20-digits") as modem:
            assert modem.iccid()[0].iccid == expected


def test_network_after_the_pin(shared_name: str) -> None:
    address = f"simmodem://telit?name={shared_name}"
    with Modem.open(address) as modem:
        assert not any(r.registered for r in modem.registrations())
        assert modem.signal().rssi is None
    enter_pin_on_port(address, "0000")
    with Modem.open(address) as modem:
        reports = modem.registrations()
        operator = modem.operator()
        signal = modem.signal()
        quality = modem.quality()
        imsi = modem.imsi()
    assert {r.kind for r in reports} == {"CREG", "CGREG", "CEREG"}
    assert all(r.registered and r.n == 0 for r in reports)
    assert operator.name == "NTT DOCOMO" and operator.technology == "E-UTRAN"
    assert signal.rssi_dbm == -73 and quality is not None and quality.rsrp_dbm == -93
    assert imsi == lab_profile(0).imsi


def test_unsolicited_registration_is_tracked(shared_name: str) -> None:
    address = f"simmodem://quectel?name={shared_name}"
    with Modem.open(address) as modem:
        modem.write(at("AT+CEREG=2", prefix=False))
        modem.enter_pin("0000")
        # The modem reports the new registration on its own; wait for it on data.
        urc = modem.channel.next_unsolicited(timeout=2.0)
        while urc is not None and not urc.line.startswith("+CEREG"):
            urc = modem.channel.next_unsolicited(timeout=2.0)
        assert urc is not None
        assert modem.last_registration["CEREG"].registered
        assert modem.last_registration["CEREG"].area == "1A2B"
