"""The lab fault profiles: cards that behave like the ones technicians get back.

``puk-blocked``, ``mute``, ``auth-fault`` and ``fs-corrupt`` are checked on the
card model (pure) and through real pcscd + vpcd, where a mute card must end in
a deadline, not a hang.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from apdu.card import Card, read_card, read_iccid
from apdu.command import CommandApdu
from apdu.errors import DeadlineError, ParseError
from apdu.files import USIM_AID_PREFIX, decode_imsi
from apdu.lab import Lab, lab_card_profiles
from apdu.milenage import Milenage
from apdu.transport.pcsc import PcscTransport
from apdu.virtual import VirtualUicc, lab_profile, load_profile
from provisioning.labstock import stock_csv

RAND = bytes(range(16))


def _select_usim(card: VirtualUicc) -> None:
    card.power_on()
    select = CommandApdu(0x00, 0xA4, 0x04, 0x0C, USIM_AID_PREFIX).to_bytes()
    assert card.process(select)[-2:] == b"\x90\x00"
    verify = CommandApdu(0x00, 0x20, 0x00, 0x01, b"0000" + b"\xff" * 4).to_bytes()
    assert card.process(verify)[-2:] == b"\x90\x00"


def _authenticate(card: VirtualUicc, ki: bytes, opc: bytes) -> bytes:
    autn = Milenage(ki, opc).generate_autn(RAND, (1).to_bytes(6, "big"), b"\x80\x00")
    command = CommandApdu(0x00, 0x88, 0x00, 0x81, b"\x10" + RAND + b"\x10" + autn)
    return card.process(command.to_bytes())


def test_auth_fault_card_rejects_a_challenge_made_from_its_stock_record() -> None:
    profile = load_profile("auth-fault")
    card = VirtualUicc(profile)
    _select_usim(card)
    # The stock record's Ki makes a MAC the card's damaged key does not accept.
    assert _authenticate(card, profile.ki, profile.opc) == b"\x98\x62"
    healthy = VirtualUicc(load_profile("default"))
    _select_usim(healthy)
    assert _authenticate(healthy, profile.ki, profile.opc)[-2:] == b"\x61\x35"


def test_auth_fault_stock_file_holds_the_true_key() -> None:
    profile = load_profile("auth-fault")
    text = stock_csv(lab_card_profiles(1, ["auth-fault"]))
    assert profile.ki.hex().upper() in text


def test_fs_corrupt_card_holds_a_garbled_imsi() -> None:
    card = VirtualUicc(load_profile("fs-corrupt"))
    card.power_on()
    select = CommandApdu(0x00, 0xA4, 0x04, 0x0C, USIM_AID_PREFIX).to_bytes()
    assert card.process(select)[-2:] == b"\x90\x00"
    answer = card.process(CommandApdu(0x00, 0xB0, 0x87, 0x00, le=9).to_bytes())
    assert answer[-2:] == b"\x90\x00"
    with pytest.raises(ParseError, match="length byte"):
        decode_imsi(answer[:-2])


@pytest.mark.lab
def test_puk_blocked_card_reads_dead(fresh_card: Any) -> None:
    reader, _ = fresh_card("puk-blocked")
    with PcscTransport(reader) as transport:
        identity = read_card(transport)
    assert identity.dead
    assert identity.pins["pin1"].retries == 0 and identity.pins["puk1"].retries == 0


@pytest.mark.lab
def test_mute_card_gives_its_atr_then_meets_the_deadline(fresh_card: Any, lab: Lab) -> None:
    reader, profile = fresh_card("mute")
    transport = PcscTransport(reader, timeout=0.5)
    try:
        assert transport.connect() == profile.atr
        started = time.monotonic()
        with pytest.raises(DeadlineError):
            Card(transport).detect()
        assert time.monotonic() - started < 5
    finally:
        transport.disconnect()
    # The stuck handle must not stall the process's other readers (libpcsclite
    # holds a process-wide lock while it waits on a handle).
    with PcscTransport(lab.reader_name(0), timeout=2.0) as other:
        assert read_iccid(other) == lab_profile(0).iccid


def test_fault_profiles_are_known_by_name() -> None:
    for name in ("puk-blocked", "mute", "auth-fault", "fs-corrupt"):
        assert load_profile(name).name == name
    assert load_profile("mute").mute and not load_profile("default").mute
