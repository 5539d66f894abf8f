"""The virtual UICC, driven by APDUs only, as a terminal would."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu.errors import ParseError
from apdu.fcp import Fcp, parse_fcp, parse_gsm_response
from apdu.files import (
    decode_dir_record,
    decode_iccid,
    decode_imsi,
    decode_msisdn,
    decode_spn,
    encode_spn,
)
from apdu.milenage import Milenage, c3
from apdu.tlv import parse_ber_tlv
from apdu.virtual import CardProfile, VirtualUicc, lab_profile, load_profile
from apdu.virtual.filesystem import (
    ARR_RULES,
    DF_ARR_RECORD,
    USIM_AID,
    arr_records,
    build_file_system,
)

PIN_OK = "0000"


def pin_hex(value: str) -> str:
    return (value.encode("ascii") + b"\xff" * (8 - len(value))).hex()


class Terminal:
    """Sends hex APDUs to a VirtualUicc; ``run`` also fetches 61xx data like a driver."""

    def __init__(self, card: VirtualUicc) -> None:
        self.card = card
        card.power_on()

    def send(self, command: str) -> tuple[bytes, int]:
        response = self.card.process(bytes.fromhex(command.replace(" ", "")))
        assert len(response) >= 2
        return response[:-2], int.from_bytes(response[-2:], "big")

    def sw(self, command: str) -> int:
        return self.send(command)[1]

    def run(self, command: str) -> tuple[bytes, int]:
        data, sw = self.send(command)
        if sw >> 8 == 0x61:
            return self.send(f"00C00000{sw & 0xFF:02X}")
        if sw >> 8 == 0x9F:
            return self.send(f"A0C00000{sw & 0xFF:02X}")
        return data, sw

    def select(self, *fids: str) -> int:
        sw = 0x9000
        for fid in fids:
            sw = self.sw(f"00A4000C02{fid}")
        return sw

    def select_usim(self) -> int:
        return self.sw("00A4040C07" + USIM_AID[:7].hex())

    def verify(self, value: str = PIN_OK, ref: str = "01") -> int:
        return self.sw(f"002000{ref}08{pin_hex(value)}")

    def read(self, le: int) -> tuple[bytes, int]:
        return self.send(f"00B00000{le:02X}")

    def fcp(self, command: str) -> Fcp:
        data, sw = self.run(command)
        assert sw == 0x9000
        return parse_fcp(data)


@pytest.fixture
def card() -> VirtualUicc:
    return VirtualUicc(load_profile("default"))


@pytest.fixture
def term(card: VirtualUicc) -> Terminal:
    return Terminal(card)


def with_profile(**changes: object) -> Terminal:
    profile = dataclasses.replace(load_profile("default"), **changes)  # type: ignore[arg-type]
    return Terminal(VirtualUicc(profile))


# --- power and ATR ----------------------------------------------------------------


def test_power_on_returns_atr_and_clears_volatile_state() -> None:
    card = VirtualUicc(dataclasses.replace(load_profile("default"), msisdn_protected=True))
    term = Terminal(card)
    assert card.power_on() == card.atr == load_profile("default").atr
    assert card.protocol == 0
    term.select_usim()
    assert term.verify() == 0x9000
    card.power_off()
    card.power_on()
    assert term.select("6F40") == 0x6A82, "power-on must leave the MF selected"
    term.select_usim()
    term.select("6F40")
    assert term.sw("00B201041C") == 0x6982, "verification must not survive power off"
    assert card.reset() == card.atr


def test_apdu_count(term: Terminal) -> None:
    before = term.card.apdu_count
    term.sw("00A4000C023F00")
    term.sw("FF")
    assert term.card.apdu_count == before + 2


# --- SELECT --------------------------------------------------------------------------


def test_select_mf_ways(term: Terminal) -> None:
    assert term.fcp("00A40004023F00").file_id == 0x3F00
    term.select("7F20")
    assert term.sw("00A4000C") == 0x9000  # no data: the MF
    assert term.fcp("00A40804").file_id == 0x3F00  # empty path: the MF
    assert term.fcp("00A4080402 3F00").file_id == 0x3F00
    mf = term.fcp("00A40004023F00")
    assert mf.file_type == "df" and mf.pin_status is not None
    assert mf.pin_status.enabled(0x01)


def test_select_by_partial_aid_activates_usim(term: Terminal) -> None:
    fcp = term.fcp("00A4040407A0000000871002")
    assert fcp.df_name == USIM_AID
    assert fcp.pin_status is not None and fcp.pin_status.key_references == [0x01, 0x81, 0x0A]
    assert term.sw("00A4040407A0000000871004") == 0x6A82  # ISIM: absent
    assert term.sw("00A4040207A0000000871002") == 0x6A82  # next occurrence: none


def test_select_rules_parent_child_sibling(term: Terminal) -> None:
    assert term.select("7FFF") == 0x6A82, "7FFF needs an active application"
    term.select_usim()
    assert term.select("6F07") == 0x9000
    assert term.select("7F20") == 0x9000, "sibling DF through the MF"
    assert term.select("6F3A") == 0x6A82, "EF.ADN is in DF.TELECOM, not reachable here"
    assert term.select("7F10", "6F3A") == 0x9000
    assert term.select("7FFF", "6FAD") == 0x9000
    assert term.select("2FE2") == 0x6A82, "EF.ICCID is not a child of the ADF"
    assert term.select("3F00", "2FE2") == 0x9000


def test_select_by_path(term: Terminal) -> None:
    term.select_usim()
    imsi = term.fcp("00A40804047FFF6F07")
    assert (imsi.file_id, imsi.short_file_id, imsi.file_size) == (0x6F07, 0x07, 9)
    assert term.fcp("00A40804047F206F07").file_id == 0x6F07
    assert term.fcp("00A40804063F007F106F3A").file_id == 0x6F3A
    assert term.sw("00A40804047F106F99") == 0x6A82
    assert term.sw("00A40804036F07") == 0x6700
    term.select("3F00", "7F10")
    assert term.fcp("00A4090402 6F40").file_id == 0x6F40
    assert term.sw("00A4090C02 2FE2") == 0x6A82


def test_select_parent_and_child_p1(term: Terminal) -> None:
    term.select("7F20")
    assert term.sw("00A4030C") == 0x9000
    assert term.sw("00A4020C022FE2") == 0x9000
    assert term.sw("00A4010C022FE2") == 0x6A82, "P1=01 selects DFs only"
    assert term.sw("00A4010C027F10") == 0x9000


def test_select_bad_parameters(term: Terminal) -> None:
    assert term.sw("00A4000802 3F00") == 0x6A86
    assert term.sw("00A4050C02 3F00") == 0x6A86
    assert term.sw("00A4000C03 3F0000") == 0x6700


def test_ef_fcps_follow_ts_31_102(term: Terminal) -> None:
    term.select_usim()
    msisdn = term.fcp("00A40004026F40")
    assert (msisdn.structure, msisdn.record_length, msisdn.number_of_records) == (
        "linear_fixed",
        28,
        2,
    )
    assert msisdn.short_file_id is None
    for fid, sfi in (
        ("6F07", 0x07),
        ("6FAD", 0x03),
        ("6F38", 0x04),
        ("6F56", 0x05),
        ("6F78", 0x06),
        ("6F7E", 0x0B),
        ("6F73", 0x0C),
        ("6F7B", 0x0D),
        ("6F08", 0x08),
        ("6F09", 0x09),
        ("6F31", 0x12),
        ("6F5B", 0x0F),
        ("6F5C", 0x10),
        ("6FB7", 0x01),
        ("6F05", 0x02),
    ):
        fcp = term.fcp(f"00A4000402{fid}")
        assert fcp.short_file_id == sfi, fid
        assert fcp.life_cycle == 0x05
        assert fcp.security_attributes is not None
        assert fcp.security_attributes.arr_file_id == 0x6F06


def arr_rule(term: Terminal, fcp: Fcp) -> list[tuple[int, int]]:
    """(access mode byte, SC DO tag or key reference) pairs of the EF.ARR record an FCP names."""
    assert fcp.security_attributes is not None and fcp.security_attributes.arr_record
    term.select(f"{fcp.security_attributes.arr_file_id:04X}")
    data, sw = term.send(f"00B2{fcp.security_attributes.arr_record:02X}0428")
    assert sw == 0x9000
    objects = parse_ber_tlv(data)
    pairs = []
    for am, sc in zip(objects[::2], objects[1::2], strict=True):
        key = sc.children()[0].value[0] if sc.tag == 0xA4 else sc.tag
        pairs.append((am.value[0], key))
    return pairs


def test_arr_announces_what_is_enforced() -> None:
    term = with_profile(imsi_protected=True)
    term.select_usim()
    imsi = term.fcp("00A40004026F07")
    rule = arr_rule(term, imsi)
    assert (0x01, 0x01) in rule, "READ needs PIN1 (key reference 01)"
    assert any(am & 0x02 and key == 0x0A for am, key in rule), "UPDATE needs ADM1"
    term.select("6F07")
    assert term.read(9)[1] == 0x6982
    plain = Terminal(VirtualUicc(load_profile("default")))
    plain.select_usim()
    assert (0x01, 0x90) in arr_rule(plain, plain.fcp("00A40004026F07")), "READ always"


# --- T=0 transport behaviour --------------------------------------------------------


def test_61xx_get_response_and_6cxx(term: Terminal) -> None:
    data, sw = term.send("00A40004022FE2")
    assert data == b"" and sw >> 8 == 0x61
    length = sw & 0xFF
    assert term.sw("00C0000000") == 0x6C00 | length  # Le 256: wrong, data kept
    part, sw = term.send("00C0000004")
    assert len(part) == 4 and sw == 0x6100 | (length - 4)
    rest, sw = term.send(f"00C00000{length - 4:02X}")
    assert sw == 0x9000
    assert parse_fcp(part + rest).file_id == 0x2FE2
    assert term.sw("00C0000001") == 0x6985, "nothing pending any more"


def test_case_4_apdu_with_le_still_answers_61xx(term: Terminal) -> None:
    assert term.sw("00A40004023F0000") >> 8 == 0x61


def test_pending_data_is_lost_after_another_command(term: Terminal) -> None:
    assert term.sw("00A40004023F00") >> 8 == 0x61
    term.sw("00A4000C023F00")
    assert term.sw("00C0000010") == 0x6985


def test_wrong_le_on_read_gets_exact_length(term: Terminal) -> None:
    term.select("2FE2")
    assert term.read(0)[1] == 0x6C0A  # P3=00 means 256
    assert term.read(0x20)[1] == 0x6C0A
    data, sw = term.read(0x0A)
    assert sw == 0x9000 and decode_iccid(data) == load_profile("default").iccid
    assert term.send("00B0000004")[0] == data[:4]
    assert term.send("00B0000604") == (data[6:], 0x9000)
    assert term.sw("00B0000606") == 0x6C04
    assert term.sw("00B0000A01") == 0x6B00
    assert term.sw("00B00000") == 0x610A, "no Le: the length comes as 61xx"


def test_status(term: Terminal) -> None:
    term.select_usim()
    assert term.sw("80F20000") >> 8 == 0x61
    status = term.fcp("80F20000")
    assert status.df_name == USIM_AID
    length = len(term.run("80F20000")[0])
    assert term.sw("80F2000001") == 0x6C00 | length
    assert term.send(f"80F20000{length:02X}")[1] == 0x9000
    assert term.run("80F20001") == (bytes.fromhex("8410") + USIM_AID, 0x9000)
    assert term.sw("80F2000C") == 0x9000
    assert term.sw("80F20003") == 0x6A86


# --- reading and writing files ----------------------------------------------------------


def test_read_identity(term: Terminal) -> None:
    profile = load_profile("default")
    term.select_usim()
    term.select("6F07")
    assert decode_imsi(term.read(9)[0]) == profile.imsi
    term.select("6F46")
    assert decode_spn(term.read(17)[0]).name == profile.spn
    assert term.verify() == 0x9000
    term.select("6F40")
    record, sw = term.send("00B201041C")
    assert sw == 0x9000
    msisdn = decode_msisdn(record)
    assert msisdn is not None and msisdn.number == profile.msisdn


def test_sfi_addressing(term: Terminal) -> None:
    data, sw = term.send("00B082000A")  # EF.ICCID by SFI 02 from the MF
    assert sw == 0x9000 and decode_iccid(data) == load_profile("default").iccid
    record, sw = term.send("00B201F420")  # EF.DIR record 1 by SFI 1E
    assert sw == 0x9000
    app = decode_dir_record(record)
    assert app is not None and app.kind == "usim" and app.aid == USIM_AID
    term.select_usim()
    assert decode_imsi(term.send("00B0870009")[0]) == load_profile("default").imsi
    assert term.send("00B0000009")[1] == 0x9000, "the SFI read made EF.IMSI current"
    assert term.sw("00B09D0001") == 0x6A82
    assert term.sw("00B0E70001") == 0x6A86


def test_structure_and_state_errors(term: Terminal) -> None:
    assert term.sw("00B0000001") == 0x6986  # no current EF
    term.select("2F00")
    assert term.sw("00B0000001") == 0x6981  # binary read of a record file
    term.select("2FE2")
    assert term.sw("00B2010401") == 0x6981  # record read of a binary file
    term.select("2F00")
    assert term.sw("00B2030420") == 0x6A83  # no record 3
    assert term.sw("00B2010720") == 0x6A86  # mode 7


def test_record_navigation(term: Terminal) -> None:
    term.select_usim()
    term.select("6FB7")
    first, _ = term.send("00B2000204")  # next from nothing: record 1
    second, _ = term.send("00B2000204")
    assert first[:3] == bytes.fromhex("11F0FF") and second[:3] == bytes.fromhex("11F9FF")
    assert term.send("00B2000304")[0] == first  # previous
    assert term.send("00B2000404")[0] == first  # current
    assert term.sw("00B2000304") == 0x6A83  # before the first
    assert term.send("00B2030404")[0][:3] == bytes.fromhex("11F8FF")  # absolute
    assert term.send("00B2000404")[0] == first, "absolute mode keeps the pointer"
    assert term.sw("00B2010400") == 0x6C04


def test_update_needs_adm1_and_sticks(term: Terminal) -> None:
    term.select_usim()
    term.select("6F46")
    new = encode_spn("Lab MVNO", 0x00)
    assert term.sw("00D6000011" + new.hex()) == 0x6982
    assert term.verify("99999999", ref="0A") == 0x63C9
    assert term.verify(load_profile("default").adm1, ref="0A") == 0x9000
    assert term.sw("00D6000011" + new.hex()) == 0x9000
    assert decode_spn(term.read(17)[0]).name == "Lab MVNO"
    assert term.sw("00D6001002" + "0000") == 0x6700  # runs past the end
    assert term.sw("00D6001101" + "00") == 0x6B00


def test_update_record_and_pin_protected_update(term: Terminal) -> None:
    term.select_usim()
    term.select("6F7B")  # FPLMN: update needs PIN1
    assert term.sw("00D600000344F010") == 0x6982
    term.verify()
    assert term.sw("00D600000344F010") == 0x9000
    term.select("6F40")
    assert term.sw("00DC01041C" + "FF" * 28) == 0x6982  # MSISDN: update needs ADM1
    term.verify(load_profile("default").adm1, ref="0A")
    assert term.sw("00DC01041B" + "FF" * 27) == 0x6700
    assert term.sw("00DC01041C" + "FF" * 28) == 0x9000
    assert decode_msisdn(term.send("00B201041C")[0]) is None


def test_est_update_needs_pin2(term: Terminal) -> None:
    term.select_usim()
    term.verify()
    term.select("6F56")
    assert term.sw("00D6000001 01") == 0x6982
    assert term.verify(load_profile("default").pin2, ref="81") == 0x9000
    assert term.sw("00D6000001 01") == 0x9000


def test_pin1_protected_imsi() -> None:
    term = with_profile(imsi_protected=True)
    term.select_usim()
    term.select("6F07")
    assert term.read(9)[1] == 0x6982
    assert term.verify() == 0x9000
    assert term.read(9)[1] == 0x9000


def test_disabled_pin1_opens_pin1_files() -> None:
    term = with_profile(imsi_protected=True, pin1_enabled=False)
    term.select_usim()
    term.select("6F07")
    assert term.read(9)[1] == 0x9000
    mf = term.fcp("00A40004023F00")
    assert mf.pin_status is not None and not mf.pin_status.enabled(0x01)


# --- PIN state machine through APDUs -------------------------------------------------------


def test_retry_query_spends_nothing(term: Terminal) -> None:
    for command in ("00200001", "0020000100", "00200001"):
        assert term.sw(command) == 0x63C3
    assert term.sw("002C0001") == 0x63CA
    assert term.verify() == 0x9000
    # Verified in this session: "verification not required" (ISO 7816-4), no attempt spent.
    assert term.sw("00200001") == 0x9000
    assert term.sw("002C0001") == 0x63CA


def test_wrong_pins_block_and_puk_unblocks(card: VirtualUicc) -> None:
    term = Terminal(card)
    assert [term.verify("1111") for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert term.verify() == 0x6983
    assert term.sw("00200001") == 0x63C0
    assert card.pin_state(0x01) == (0, True, 10)
    puk = load_profile("default").puk1
    assert term.sw(f"002C000110{pin_hex('99999999')}{pin_hex('2468')}") == 0x63C9
    assert term.sw(f"002C000110{pin_hex(puk)}{pin_hex('2468')}") == 0x9000
    assert card.pin_state(0x01) == (3, True, 10)
    term.select_usim()
    term.select("6F40")
    assert term.sw("00B201041C") == 0x9000, "a successful UNBLOCK satisfies PIN1"
    card.power_on()
    assert term.verify() == 0x63C2
    assert term.verify("2468") == 0x9000


def test_ten_wrong_puks_make_a_dead_card(card: VirtualUicc) -> None:
    term = Terminal(card)
    for _ in range(3):
        term.verify("1111")
    bad = f"002C000110{pin_hex('00000000')}{pin_hex('1234')}"
    answers = [term.sw(bad) for _ in range(10)]
    assert answers[-1] == 0x63C0 and answers[0] == 0x63C9
    puk = load_profile("default").puk1
    for command in (
        f"002C000110{pin_hex(puk)}{pin_hex('1234')}",
        "00200001" + "08" + pin_hex(PIN_OK),
        f"0024000110{pin_hex(PIN_OK)}{pin_hex('1234')}",
        f"0026000108{pin_hex(PIN_OK)}",
        bad,
    ):
        assert term.sw(command) == 0x6983, command


def test_disable_enable_change_via_apdus(card: VirtualUicc) -> None:
    term = Terminal(card)
    assert term.sw(f"0026000108{pin_hex('1234')}") == 0x63C2
    assert term.sw(f"0026000108{pin_hex(PIN_OK)}") == 0x9000
    assert card.pin_state(0x01) == (3, False, 10)
    assert term.verify() == 0x6984
    assert term.sw("00200001") == 0x63C3
    assert term.sw(f"0028000108{pin_hex(PIN_OK)}") == 0x9000
    assert term.sw(f"0024000110{pin_hex('1234')}{pin_hex('5678')}") == 0x63C2
    assert term.sw(f"0024000110{pin_hex(PIN_OK)}{pin_hex('5678')}") == 0x9000
    card.power_on()
    assert term.verify("5678") == 0x9000
    assert term.sw(f"0026008108{pin_hex(load_profile('default').pin2)}") == 0x6985


def test_pin_command_errors(term: Terminal) -> None:
    assert term.sw("002000010430303030") == 0x6700
    assert term.sw(f"002C000108{pin_hex('12345678')}") == 0x6700
    assert term.sw("0024000100") == 0x6700
    assert term.sw(f"0020000208{pin_hex(PIN_OK)}") == 0x6A88
    assert term.sw(f"0020010108{pin_hex(PIN_OK)}") == 0x6B00
    assert term.sw("0020000101") == 0x6700


def test_blocked_pin_profile() -> None:
    term = Terminal(VirtualUicc(load_profile("blocked-pin")))
    assert term.sw("00200001") == 0x63C0
    assert term.verify() == 0x6983
    assert term.sw("002C0001") == 0x63CA
    puk = load_profile("blocked-pin").puk1
    assert term.sw(f"002C000110{pin_hex(puk)}{pin_hex(PIN_OK)}") == 0x9000


# --- AUTHENTICATE -------------------------------------------------------------------

# TS 35.208 test set 3 (K, OPc, RAND, SQN, AMF and the expected f2/f3/f4).
SET3 = {
    "k": "fec86ba6eb707ed08905757b1bb44b8f",
    "opc": "1006020f0a478bf6b699f15c062e42b3",
    "rand": "9f7c8d021accf4db213ccff0c7f71a6a",
    "sqn": "9d0277595ffc",
    "amf": "725c",
    "res": "8011c48c0c214ed2",
    "ck": "5dbdbb2954e8f3cde665b046179a5098",
    "ik": "59a92d3b476a0443487055cf88b2307b",
}


def set3_card(state_path: Path | None = None) -> tuple[Terminal, Milenage, bytes]:
    profile = dataclasses.replace(
        load_profile("default"), ki=bytes.fromhex(SET3["k"]), opc=bytes.fromhex(SET3["opc"])
    )
    term = Terminal(VirtualUicc(profile, state_path))
    milenage = Milenage(profile.ki, profile.opc)
    autn = milenage.generate_autn(
        bytes.fromhex(SET3["rand"]), bytes.fromhex(SET3["sqn"]), bytes.fromhex(SET3["amf"])
    )
    return term, milenage, autn


def authenticate(term: Terminal, rand: str, autn: bytes) -> tuple[bytes, int]:
    return term.run(f"0088008122 10{rand} 10{autn.hex()}")


def test_authenticate_matches_ts_35_208_set_3() -> None:
    term, _, autn = set3_card()
    term.select_usim()
    term.verify()
    data, sw = authenticate(term, SET3["rand"], autn)
    assert sw == 0x9000
    res, ck, ik = (bytes.fromhex(SET3[n]) for n in ("res", "ck", "ik"))
    expected = b"\xdb" + bytes((8,)) + res + b"\x10" + ck + b"\x10" + ik + b"\x08" + c3(ck, ik)
    assert data == expected


def test_replayed_autn_asks_for_resync_and_bad_mac_fails() -> None:
    term, milenage, autn = set3_card()
    term.select_usim()
    term.verify()
    authenticate(term, SET3["rand"], autn)
    data, sw = authenticate(term, SET3["rand"], autn)
    assert sw == 0x9000 and data[:2] == bytes.fromhex("DC0E")
    rand = bytes.fromhex(SET3["rand"])
    assert milenage.verify_auts(rand, data[2:]) == bytes.fromhex(SET3["sqn"])
    tampered = autn[:-1] + bytes((autn[-1] ^ 1,))
    assert term.sw(f"0088008122 10{SET3['rand']} 10{tampered.hex()}") == 0x9862
    newer = milenage.generate_autn(rand, bytes.fromhex("9d0277595ffd"), bytes.fromhex("8000"))
    assert authenticate(term, SET3["rand"], newer)[0][0] == 0xDB


def test_authenticate_preconditions(term: Terminal) -> None:
    command = "0088008122 10" + "00" * 16 + "10" + "00" * 16
    assert term.sw(command) == 0x6985  # no application selected
    term.select_usim()
    assert term.sw(command) == 0x6982  # PIN1 not verified
    term.verify()
    assert term.sw("0088008110" + "00" * 16) == 0x6700
    assert term.sw("0088008211 10" + "00" * 16) == 0x6A86


def test_authenticate_gsm_context(term: Terminal) -> None:
    profile = load_profile("default")
    term.select_usim()
    term.verify()
    rand = bytes(range(16))
    data, sw = term.run("0088008011 10" + rand.hex())
    sres, kc = Milenage(profile.ki, profile.opc).gsm(rand)
    assert (data, sw) == (b"\x04" + sres + b"\x08" + kc, 0x9000)


# --- classic SIM (CLA A0) -----------------------------------------------------------


def test_classic_sim_profile() -> None:
    profile = load_profile("classic-sim")
    card = VirtualUicc(profile)
    term = Terminal(card)
    assert card.atr == profile.atr
    assert term.sw("00A4000C023F00") == 0x6E00
    assert term.sw("80F20000") == 0x6E00
    sw = term.sw("A0A40000027F20")
    assert sw >> 8 == 0x9F
    response, sw = term.send(f"A0C00000{sw & 0xFF:02X}")
    assert sw == 0x9000
    info = parse_gsm_response(response)
    assert info.file_id == 0x7F20 and info.gsm is not None
    assert info.gsm.chv1 is not None and info.gsm.chv1.retries == 3
    assert info.gsm.chv1_enabled
    assert term.sw("A0A40000026F07") == 0x9F0F
    assert decode_imsi(term.send("A0B0000009")[0]) == profile.imsi
    assert term.sw("A0B000000A") == 0x6709
    assert term.sw("A0A40000026F99") == 0x9404


def test_classic_chv_and_gsm_algorithm() -> None:
    profile = load_profile("classic-sim")
    term = Terminal(VirtualUicc(profile))
    term.send("A0A40000027F20")
    rand = bytes(range(16, 32))
    assert term.sw("A088000010" + rand.hex()) == 0x9804  # CHV1 needed
    assert term.sw("A020000108" + pin_hex("1111")) == 0x9804
    assert term.sw("A020000108" + pin_hex(PIN_OK)) == 0x9000
    assert term.sw("A088000010" + rand.hex()) == 0x9F0C
    data, sw = term.send("A0C000000C")
    assert (data, sw) == (b"".join(Milenage(profile.ki, profile.opc).gsm(rand)), 0x9000)
    assert term.sw("A026000108" + pin_hex(PIN_OK)) == 0x9000
    assert term.sw("A020000108" + pin_hex(PIN_OK)) == 0x9808  # CHV1 disabled
    assert term.sw("A028000108" + pin_hex(PIN_OK)) == 0x9000
    for _ in range(2):
        assert term.sw("A020000108" + pin_hex("1111")) == 0x9804
    assert term.sw("A020000108" + pin_hex("1111")) == 0x9840
    assert term.sw("A02C000010" + pin_hex(profile.puk1) + pin_hex("7777")) == 0x9000
    assert term.sw("A020000108" + pin_hex("7777")) == 0x9000


def test_classic_records_and_status() -> None:
    term = Terminal(
        VirtualUicc(dataclasses.replace(load_profile("classic-sim"), msisdn_protected=True))
    )
    term.send("A0A40000027F10")
    assert term.sw("A0A40000026F40") >> 8 == 0x9F
    assert term.sw("A0B201041C") == 0x9804  # MSISDN needs CHV1
    term.sw("A020000108" + pin_hex(PIN_OK))
    record, sw = term.send("A0B201041C")
    assert sw == 0x9000 and decode_msisdn(record) is not None
    assert term.sw("A0B2010410") == 0x671C
    assert term.sw("A0B203041C") == 0x9402
    assert term.sw("A0B0000001") == 0x9408
    status, sw = term.send("A0F2000016")
    assert sw == 0x9000 and parse_gsm_response(status).file_id == 0x7F10


def test_uicc_keeps_a_classic_view_unless_disabled() -> None:
    term = Terminal(VirtualUicc(load_profile("default")))
    assert term.sw("A0A40000027F20") >> 8 == 0x9F
    closed = with_profile(classic_view=False)
    assert closed.sw("A0A40000027F20") == 0x6E00


# --- persistence ----------------------------------------------------------------------


def test_blocked_pin_survives_a_new_card_object(tmp_path: Path) -> None:
    state = tmp_path / "card-state.json"
    profile = load_profile("default")
    term = Terminal(VirtualUicc(profile, state))
    for _ in range(3):
        term.verify("1111")
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    again = Terminal(VirtualUicc(profile, state))
    assert again.sw("00200001") == 0x63C0
    assert again.verify() == 0x6983
    assert [p.name for p in tmp_path.iterdir()] == ["card-state.json"]


def test_updates_pin_changes_and_sqn_survive(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    term, _, autn = set3_card(state)
    adm = load_profile("default").adm1
    term.select_usim()
    term.verify(adm, ref="0A")
    term.select("6F46")
    term.sw("00D6000011" + encode_spn("Saved", 1).hex())
    term.sw(f"0024000110{pin_hex(PIN_OK)}{pin_hex('8642')}")
    term.verify("8642")
    assert authenticate(term, SET3["rand"], autn)[0][0] == 0xDB
    again, _, _ = set3_card(state)
    again.select_usim()
    again.select("6F46")
    assert decode_spn(again.read(17)[0]).name == "Saved"
    assert again.verify(PIN_OK) == 0x63C2
    assert again.verify("8642") == 0x9000
    assert authenticate(again, SET3["rand"], autn)[0][0] == 0xDC, "SQN must persist"
    assert again.card.profile.pin1 == PIN_OK, "the profile itself is not rewritten"
    saved = json.loads(state.read_text())
    assert set(saved["files"]) == {"ADF.USIM/EF.SPN"}


def test_state_of_another_card_or_garbage_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    term = Terminal(VirtualUicc(load_profile("default"), state))
    term.verify("1111")
    with pytest.raises(ParseError, match="ICCID"):
        VirtualUicc(load_profile("blocked-pin"), state)
    state.write_text("{not json")
    with pytest.raises(ParseError):
        VirtualUicc(load_profile("default"), state)
    state.write_text(
        json.dumps(
            {
                "format": 1,
                "iccid": load_profile("default").iccid,
                "pins": [],
                "files": {},
                "sqn_ms": "00",
            }
        )
    )
    with pytest.raises(ParseError):
        VirtualUicc(load_profile("default"), state)


# --- robustness ---------------------------------------------------------------------


def test_malformed_apdus_get_status_words(term: Terminal) -> None:
    assert term.sw("00") == 0x6700
    assert term.sw("00A4") == 0x6700
    assert term.sw("00A4000C05 3F00") == 0x6700  # Lc says 5, 2 given
    assert term.sw("00A4000C 00 0002 3F00") == 0x6700  # extended: not on T=0
    assert term.sw("00FF0000") == 0x6D00
    assert term.sw("B0B0000001") == 0x6E00
    assert term.sw("01B0000001") == 0x6881
    assert term.sw("0CB0000001") == 0x6882
    assert term.sw("80B0000001") == 0x6E00
    assert term.sw("8010000002 FFFF") == 0x9000  # TERMINAL PROFILE


def lab_cards() -> list[CardProfile]:
    return [lab_profile(i) for i in range(4)]


@pytest.mark.parametrize("profile", lab_cards(), ids=lambda p: p.name)
def test_lab_cards_read_back_their_identity(profile: CardProfile) -> None:
    term = Terminal(VirtualUicc(profile))
    assert decode_iccid(term.send("00B082000A")[0]) == profile.iccid
    term.select_usim()
    assert decode_imsi(term.send("00B0870009")[0]) == profile.imsi


_FUZZ_CARD = VirtualUicc(load_profile("default"))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.tuples(
                st.sampled_from([0x00, 0x80, 0xA0, 0x01, 0x0C]),
                st.sampled_from(
                    [
                        0xA4,
                        0xB0,
                        0xB2,
                        0xD6,
                        0xDC,
                        0x20,
                        0x24,
                        0x26,
                        0x28,
                        0x2C,
                        0x88,
                        0xC0,
                        0xF2,
                        0x10,
                    ]
                ),
                st.integers(0, 255),
                st.integers(0, 255),
                st.binary(max_size=40),
                st.one_of(st.none(), st.integers(0, 255)),
            ).map(
                lambda t: (
                    bytes(t[:4])
                    + (bytes((len(t[4]),)) + t[4] if t[4] else b"")
                    + (bytes((t[5],)) if t[5] is not None else b"")
                )
            ),
        ),
        max_size=12,
    )
)
def test_process_never_raises(commands: list[bytes]) -> None:
    card = _FUZZ_CARD
    card.power_on()
    for command in commands:
        response = card.process(command)
        assert len(response) >= 2
    assert card.internal_errors == 0


def test_classic_view_shares_data_with_the_usim() -> None:
    term = Terminal(VirtualUicc(load_profile("default")))
    term.select_usim()
    term.verify(load_profile("default").adm1, ref="0A")
    term.select("6F46")
    term.sw("00D6000011" + encode_spn("Shared", 1).hex())
    term.send("A0A40000027F20")
    term.send("A0A40000026F46")
    assert decode_spn(term.send("A0B0000011")[0]).name == "Shared"


def test_file_tree_is_consistent() -> None:
    fs = build_file_system(load_profile("default"))
    for df in (fs.mf, fs.usim, fs.gsm, fs.telecom):
        sfis = [ef.sfi for ef in df.efs if ef.sfi is not None]
        fids = [child.fid for child in df.children if child.fid is not None]
        assert len(sfis) == len(set(sfis)), df.name
        assert len(fids) == len(set(fids)), df.name
        for ef in df.efs:
            assert ef.access in ARR_RULES, (df.name, ef.name)
    assert len(arr_records()) == DF_ARR_RECORD


def test_msisdn_open_by_default_and_protected_on_request() -> None:
    open_card = with_profile()
    open_card.select_usim()
    open_card.select("6F40")
    assert open_card.sw("00B201041C") == 0x9000
    closed = with_profile(msisdn_protected=True)
    closed.select_usim()
    closed.select("6F40")
    assert closed.sw("00B201041C") == 0x6982
