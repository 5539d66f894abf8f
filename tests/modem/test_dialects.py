"""The dialect table: detection, credential commands in each vendor's order."""

from __future__ import annotations

import pytest

from modem.dialects import DIALECTS, Auth, detect_dialect, get_dialect, summarize
from modem.errors import UnknownDialectError
from modem.modem import credential_command
from modem.profiles import IJMIO


@pytest.mark.parametrize(
    ("manufacturer", "model", "dialect"),
    [
        ("Quectel", "EC25", "quectel"),
        ("SIMCOM INCORPORATED", "SIMCOM_SIM7600E-H", "simcom"),
        ("Sierra Wireless, Incorporated", "EM7455", "sierra"),
        ("u-blox", "SARA-R410M-02B", "ublox"),
        ("Telit", "LE910C1-EU", "telit"),
        ("huawei", "ME909s-120", "huawei"),
        ("Fibocom Wireless Inc.", "L850-GL", "fibocom"),
        ("Fibocom", "FM350-GL", "fibocom"),
        ("Some OEM", "Quectel EC25 inside", "quectel"),  # model names the module
        ("Acme Modems", "X1", "generic"),
    ],
)
def test_detection(manufacturer: str, model: str, dialect: str) -> None:
    assert detect_dialect(manufacturer, model).name == dialect


def test_unknown_dialect_name() -> None:
    with pytest.raises(UnknownDialectError) as caught:
        get_dialect("nokia")
    assert "quectel" in str(caught.value) and caught.value.exit_code == 64
    assert get_dialect(" Quectel ").name == "quectel"


# The credential command for the ijmio profile on context 1, as each vendor's
# manual orders the arguments (see modem.dialects for the sources).
EXPECTED = {
    "generic": 'AT+CGAUTH=1,2,"mio@ij","ij"',
    "quectel": 'AT+QICSGP=1,1,"ijmio.jp","mio@ij","ij",3',
    "sierra": 'AT$QCPDPP=1,3,"ij","mio@ij"',  # password first
    "simcom": 'AT+CGAUTH=1,2,"ij","mio@ij"',  # password first
    "ublox": 'AT+UAUTHREQ=1,3,"mio@ij","ij"',
    "telit": 'AT#PDPAUTH=1,2,"mio@ij","ij"',
    "huawei": 'AT^AUTHDATA=1,2,"","ij","mio@ij"',  # PLMN, password, user
    "fibocom": 'AT+XGAUTH=1,2,"mio@ij","ij"',
}


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_credential_command_order_and_masking(name: str) -> None:
    command = credential_command(DIALECTS[name], 1, IJMIO)
    assert command.text == EXPECTED[name]
    assert command.shown == EXPECTED[name].replace('"ij"', '"****"')
    assert '"ij"' not in command.shown


def test_pap_or_chap_semantics() -> None:
    # 27.007 has no "either" value (3 is EAP in recent releases): CHAP there;
    # vendors that document an either value get it.
    assert DIALECTS["generic"].auth.code_for(Auth.PAP_OR_CHAP) == 2
    assert DIALECTS["quectel"].auth.code_for(Auth.PAP_OR_CHAP) == 3
    assert DIALECTS["ublox"].auth.code_for(Auth.PAP_OR_CHAP) == 3
    assert DIALECTS["huawei"].auth.code_for(Auth.PAP_OR_CHAP) == 2
    assert DIALECTS["quectel"].auth.auth_for(3) is Auth.PAP_OR_CHAP
    assert DIALECTS["telit"].auth.auth_for(7) is None


def test_every_dialect_is_complete() -> None:
    for dialect in DIALECTS.values():
        spec = dialect.auth
        assert {"cid", "auth"} <= set(spec.write_order)
        assert {"user", "password"} <= set(spec.write_order)
        assert "auth" in spec.read_order and "user" in spec.read_order
        assert dialect.apply in ("none", "cfun", "detach-attach")
        summary = summarize(dialect)
        assert summary.auth_command == spec.command


def test_dialect_table_on_the_command_line() -> None:
    from tests.support.cli import simtool

    run = simtool("modem", "dialects", "--json")
    assert run.code == 0, run.output
    rows = {row["name"]: row for row in run.json["dialects"]}
    assert set(rows) == set(DIALECTS)
    assert rows["sierra"]["write_order"] == ["cid", "auth", "password", "user"]
    assert rows["sierra"]["retry_command"] == "AT+CSIM empty VERIFY"
    assert rows["generic"]["iccid_command"] == "AT+CRSM (EF.ICCID)"
