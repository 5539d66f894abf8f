"""``simtool files`` and DF.TELECOM of the virtual UICC, through real pcscd + vpcd."""

from __future__ import annotations

from typing import Any

import pytest

from apdu.card import Card
from apdu.files import DF_TELECOM, EF_ADN, EF_EXT1, EF_FDN, EF_MSISDN, EF_SMS, EF_SMSP
from apdu.pin import PinPolicy
from apdu.transport.pcsc import PcscTransport
from tests.support.cli import simtool

pytestmark = pytest.mark.lab


def test_telecom_holds_an_operator_cards_files(fresh_card: Any) -> None:
    # (file, records, record length) as TS 51.011 §10.5 sizes them.
    expected = {
        EF_ADN.fid: (10, 28),
        EF_FDN.fid: (10, 28),
        EF_SMS.fid: (10, 176),
        EF_MSISDN.fid: (2, 28),
        EF_SMSP.fid: (2, 40),
        EF_EXT1.fid: (10, 13),
    }
    reader, _ = fresh_card()
    with PcscTransport(reader) as transport:
        card = Card(transport)
        card.detect()
        PinPolicy(card).verify("pin1", "0000")
        for fid, (records, length) in expected.items():
            fcp = card.select_path([DF_TELECOM.fid, fid], fcp=True)
            assert fcp is not None and fcp.structure == "linear_fixed", hex(fid)
            assert (fcp.number_of_records, fcp.record_length) == (records, length), hex(fid)
            assert len(card.read_record(1, length)) == length
        sms = card.select_path([DF_TELECOM.fid, EF_SMS.fid], fcp=True)
        assert sms is not None
        assert card.read_record(1, 176)[0] == 0x00  # status byte: free record


def test_files_walks_what_the_access_rules_allow(fresh_card: Any) -> None:
    reader, profile = fresh_card()
    result = simtool("files", "--reader", reader, "--json")
    assert result.code == 0, result.stderr
    data = result.json
    assert data["directories"] == ["MF", "DF.TELECOM", "DF.GSM", "ADF.USIM"]
    by_name = {(e["path"], e["name"]): e for e in data["files"]}
    assert by_name[("MF", "EF.ICCID")]["decoded"] == profile.iccid
    assert by_name[("ADF.USIM", "EF.IMSI")]["decoded"] == profile.imsi
    assert by_name[("DF.TELECOM", "EF.MSISDN")]["decoded"][0]["number"] == profile.msisdn
    sms = by_name[("DF.TELECOM", "EF.SMS")]
    assert (sms["status"], sms["sw"]) == ("protected", "6982")
    assert (sms["records"], sms["record_length"]) == (10, 176)
    human = simtool("files", "--reader", reader)
    assert human.code == 0 and "DF.TELECOM" in human.stdout and "EF.SMSP" in human.stdout
