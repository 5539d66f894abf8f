"""The session lab seen through pyscard, as every station program sees it."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from smartcard import scard

from apdu.lab import Lab
from apdu.lab.layout import expected_reader_name
from apdu.virtual import CardProfile, VirtualUicc
from tests.support.cli import simtool

pytestmark = pytest.mark.lab

FreshCard = Callable[..., tuple[str, CardProfile]]

SELECT_MF_FCP = bytes.fromhex("00A40004023F00")
SELECT_MF_NO_DATA = bytes.fromhex("00A4000C023F00")
WRONG_PIN1 = bytes.fromhex("0020000108") + b"9999" + b"\xff" * 4
PIN1_RETRIES = bytes.fromhex("00200001")  # VERIFY without data: the counter, no attempt
# A removed card fails the next transmit with one of these (docs/lab.md).
REMOVAL_ERRORS = {0x80100016, 0x80100069, 0x8010000C, 0x80100067}


@dataclass
class Connection:
    context: int
    handle: int
    protocol: int

    def transmit(self, command: bytes) -> tuple[int, bytes]:
        hresult, response = scard.SCardTransmit(self.handle, self.protocol, list(command))
        return hresult & 0xFFFFFFFF, bytes(response)

    def sw(self, command: bytes) -> int:
        hresult, response = self.transmit(command)
        assert hresult == 0, f"transmit failed: 0x{hresult:08X}"
        return int.from_bytes(response[-2:], "big")


@pytest.fixture
def pcsc() -> Iterator[int]:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hresult == 0
    yield context
    scard.SCardReleaseContext(context)


def connect(context: int, reader: str) -> Connection:
    hresult, handle, protocol = scard.SCardConnect(
        context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
    )
    assert hresult == 0, f"connect to {reader} failed: 0x{hresult & 0xFFFFFFFF:08X}"
    return Connection(context, handle, protocol)


def presence(context: int, reader: str) -> tuple[bool, bytes]:
    hresult, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
    assert hresult == 0
    _, event, atr = states[0]
    return bool(event & scard.SCARD_STATE_PRESENT), bytes(atr)


def test_sixteen_slots_listed_by_name(lab: Lab, pcsc: int) -> None:
    hresult, readers = scard.SCardListReaders(pcsc, [])
    assert hresult == 0
    assert sorted(readers) == sorted(expected_reader_name(slot) for slot in range(16))
    assert [s.reader for s in lab.slots] == [expected_reader_name(s) for s in range(16)]
    assert [s.present for s in lab.slots] == [True] * 8 + [False] * 8


def test_lab_cards_are_lab_stock_0_to_7(lab: Lab) -> None:
    from apdu.virtual import lab_profile

    for slot in range(8):
        assert lab.profile(slot) == lab_profile(slot)
        assert lab.slot(slot).iccid == lab_profile(slot).iccid


def test_atr_through_pcsc_is_the_virtual_cards_atr(lab: Lab, pcsc: int) -> None:
    for slot in range(8):
        profile = lab.profile(slot)
        assert profile is not None
        present, atr = presence(pcsc, lab.reader_name(slot))
        assert present
        assert atr == VirtualUicc(profile).atr


def test_select_mf_reaches_the_card(lab: Lab, pcsc: int) -> None:
    profile = lab.profile(4)
    assert profile is not None
    twin = VirtualUicc(profile)
    twin.power_on()
    connection = connect(pcsc, lab.reader_name(4))
    hresult, response = connection.transmit(SELECT_MF_FCP)
    assert hresult == 0
    assert response == twin.process(SELECT_MF_FCP)
    assert response[0] == 0x61  # T=0: the FCP waits for GET RESPONSE
    get_response = bytes([0x00, 0xC0, 0x00, 0x00, response[1]])
    hresult, fcp = connection.transmit(get_response)
    assert hresult == 0
    assert fcp == twin.process(get_response)
    assert fcp[0] == 0x62 and fcp[-2:] == b"\x90\x00"
    scard.SCardDisconnect(connection.handle, scard.SCARD_LEAVE_CARD)


def test_removed_card_fails_and_works_again_after_reconnect(
    lab: Lab, fresh_card: FreshCard, pcsc: int
) -> None:
    reader, _profile = fresh_card()
    slot = lab.slot_of(reader)
    connection = connect(pcsc, reader)
    assert connection.sw(SELECT_MF_NO_DATA) == 0x9000

    info = lab.remove(slot)
    assert info.state == "removed" and not info.present
    assert presence(pcsc, reader) == (False, b"")
    hresult, _ = connection.transmit(SELECT_MF_NO_DATA)
    assert hresult in REMOVAL_ERRORS

    assert lab.insert(slot).present
    assert presence(pcsc, reader)[0]
    # The old handle stays dead after reinsertion; a new connection works.
    hresult, _ = connection.transmit(SELECT_MF_NO_DATA)
    assert hresult != 0
    scard.SCardDisconnect(connection.handle, scard.SCARD_LEAVE_CARD)
    again = connect(pcsc, reader)
    assert again.sw(SELECT_MF_NO_DATA) == 0x9000
    scard.SCardDisconnect(again.handle, scard.SCARD_LEAVE_CARD)


def test_blocked_pin_stays_blocked_across_remove_and_insert(
    lab: Lab, fresh_card: FreshCard, pcsc: int
) -> None:
    reader, _profile = fresh_card()
    slot = lab.slot_of(reader)
    connection = connect(pcsc, reader)
    assert connection.sw(PIN1_RETRIES) == 0x63C3
    assert [connection.sw(WRONG_PIN1) for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    blocked = connection.sw(PIN1_RETRIES)
    assert blocked in (0x6983, 0x63C0)
    scard.SCardDisconnect(connection.handle, scard.SCARD_LEAVE_CARD)

    lab.remove(slot)
    assert lab.layout.card_state(slot).exists()
    lab.insert(slot)
    again = connect(pcsc, reader)
    assert again.sw(PIN1_RETRIES) == blocked
    scard.SCardDisconnect(again.handle, scard.SCARD_LEAVE_CARD)


def test_fresh_card_with_a_profile_starts_from_fresh_state(
    lab: Lab, fresh_card: FreshCard, pcsc: int
) -> None:
    reader, profile = fresh_card()
    connection = connect(pcsc, reader)
    assert connection.sw(WRONG_PIN1) == 0x63C2
    scard.SCardDisconnect(connection.handle, scard.SCARD_LEAVE_CARD)
    slot = lab.slot_of(reader)
    lab.remove(slot)
    lab.insert(slot, profile)  # the same personalisation, but a new card
    again = connect(pcsc, reader)
    assert again.sw(PIN1_RETRIES) == 0x63C3
    scard.SCardDisconnect(again.handle, scard.SCARD_LEAVE_CARD)


def test_status_cli_matches_the_lab(lab: Lab) -> None:
    result = simtool("lab", "status", "--json")
    assert result.code == 0, result.stderr
    data = result.json
    assert data["pcsc_socket"] == str(lab.pcsc_socket)
    assert [
        (s["slot"], s["reader"], s["present"], s["iccid"], s["imsi"], s["form_factor"])
        for s in data["slots"][:8]
    ] == [(s.slot, s.reader, True, s.iccid, s.imsi, s.form_factor) for s in lab.slots[:8]]
    for slot in data["slots"][:8]:
        profile = lab.profile(slot["slot"])
        assert profile is not None
        # No secret of the card reaches the status output.
        for secret in (profile.puk1, profile.adm1, profile.ki.hex().upper()):
            assert secret not in result.output


def test_insert_into_an_occupied_slot_or_a_missing_slot_is_refused(lab: Lab) -> None:
    result = simtool("lab", "insert", "0")
    assert result.code == 64
    assert "already holds a card" in result.stderr
    result = simtool("lab", "remove", "15")
    assert result.code == 64
    assert "no card" in result.stderr


def test_apdu_round_trip_latency(lab: Lab, pcsc: int, record_property: Any) -> None:
    connection = connect(pcsc, lab.reader_name(5))
    for _ in range(20):
        connection.sw(SELECT_MF_NO_DATA)
    samples = []
    for _ in range(1000):
        start = time.perf_counter()
        hresult, response = connection.transmit(SELECT_MF_NO_DATA)
        samples.append(time.perf_counter() - start)
        assert hresult == 0 and response == b"\x90\x00"
    scard.SCardDisconnect(connection.handle, scard.SCARD_LEAVE_CARD)
    samples.sort()
    median = statistics.median(samples) * 1000
    p95 = samples[949] * 1000
    record_property("apdu_median_ms", round(median, 3))
    record_property("apdu_p95_ms", round(p95, 3))
    print(f"\nlab APDU round trip over 1000 APDUs: median {median:.3f} ms, p95 {p95:.3f} ms")
    # Without TCP_QUICKACK each APDU costs ~44 ms (delayed ACK): that must never return.
    assert median < 5.0
    assert p95 < 20.0
