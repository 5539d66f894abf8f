"""The card layer's T=0 chores and its reading logic, against in-process models.

These are unit tests of pure logic; the same paths run against the lab in
test_card_lab.py.
"""

from __future__ import annotations

import pytest

from apdu.card import Card, counter_from_response, pin_block, read_card
from apdu.command import CommandApdu, ResponseApdu
from apdu.errors import CardError, NoCardError, ParseError, StatusWordError
from apdu.transport.inprocess import InProcessTransport
from apdu.virtual import VirtualUicc, load_profile


class Scripted:
    """A card model that answers from a function of the command bytes."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.seen: list[bytes] = []

    def power_on(self) -> bytes:
        return bytes.fromhex("3B00")

    def power_off(self) -> None:
        return None

    def process(self, command: bytes) -> bytes:
        self.seen.append(command)
        return self.answer(command)  # type: ignore[operator, no-any-return]


def test_get_response_after_61xx() -> None:
    def answer(command: bytes) -> bytes:
        if command[1] == 0xC0:
            return b"\x01\x02\x03\x90\x00"
        return b"\x61\x03"

    card = Card(InProcessTransport(Scripted(answer)))
    response = card.send(CommandApdu(0, 0xA4, 4, 4, b"\xa0", le=256))
    assert response.data == b"\x01\x02\x03" and response.sw == 0x9000


def test_resend_with_exact_length_after_6cxx() -> None:
    model = Scripted(lambda c: b"\x6c\x05" if c[-1] != 5 else b"ABCDE\x90\x00")
    card = Card(InProcessTransport(model))
    assert card.read_binary(None) == b"ABCDE"
    assert model.seen[-1][-1] == 5


def test_endless_61xx_is_bounded() -> None:
    card = Card(InProcessTransport(Scripted(lambda c: b"\x61\x10")))
    with pytest.raises(CardError, match="GET RESPONSE"):
        card.send(CommandApdu(0, 0xA4, 4, 4, b"\xa0", le=256))


def test_truncated_response_is_a_parse_error() -> None:
    card = Card(InProcessTransport(Scripted(lambda c: b"\x90")))
    with pytest.raises(ParseError):
        card.send(CommandApdu(0, 0xB0, 0, 0, le=10))


def test_empty_response_is_a_lost_card_and_the_next_call_reconnects() -> None:
    # pcscd answers "success" with 0 bytes when the card goes away mid-exchange.
    answers = iter([b"", b"\x90\x00"])
    powered: list[bool] = []

    class Vanishing(Scripted):
        def power_on(self) -> bytes:
            powered.append(True)
            return bytes.fromhex("3B00")

    model = Vanishing(lambda c: next(answers))
    transport = InProcessTransport(model)
    card = Card(transport)
    with pytest.raises(NoCardError, match="stopped answering") as info:
        card.send(CommandApdu(0, 0xB0, 0, 0, le=10))
    assert info.value.exit_code == 3
    assert not transport.connected
    assert card.send(CommandApdu(0, 0xA4, 0, 0x0C, b"\x3f\x00")).sw == 0x9000
    assert len(powered) == 2  # the second command found the reader afresh


def test_failure_word_names_the_command_not_the_data() -> None:
    card = Card(InProcessTransport(Scripted(lambda c: b"\x6a\x82")))
    with pytest.raises(StatusWordError) as info:
        card.exchange(CommandApdu(0, 0xA4, 0, 0x0C, b"\x6f\x07"))
    assert info.value.sw == 0x6A82
    assert info.value.command == bytes.fromhex("00A4000C")


@pytest.mark.parametrize(
    ("sw", "expected"),
    [
        (0x63C3, (3, False)),
        (0x63C0, (0, True)),
        (0x6983, (0, True)),
        (0x9000, (None, False)),
    ],
)
def test_counter_from_response(sw: int, expected: tuple[int | None, bool]) -> None:
    assert counter_from_response(ResponseApdu.from_sw(sw)) == expected


def test_counter_from_an_unexpected_word_is_an_error() -> None:
    with pytest.raises(StatusWordError):
        counter_from_response(ResponseApdu.from_sw(0x6A88))


def test_pin_block_pads_with_ff() -> None:
    assert pin_block("0000") == b"0000\xff\xff\xff\xff"
    assert pin_block("12345678") == b"12345678"
    with pytest.raises(ParseError):
        pin_block("123456789")


@pytest.mark.parametrize(
    "name", ["default", "classic-sim", "pin-protected-imsi", "iccid-20-digits", "blocked-pin"]
)
def test_read_card_matches_every_profile(name: str) -> None:
    profile = load_profile(name)
    identity = read_card(InProcessTransport(VirtualUicc(profile)))
    assert identity.iccid == profile.iccid
    assert identity.iccid_luhn_ok
    if profile.imsi_protected:
        assert identity.imsi is None and identity.imsi_protected
    else:
        assert identity.imsi == profile.imsi
    assert identity.card_type == ("sim" if profile.classic_only else "uicc")
    assert identity.pins["puk1"].retries == 10
    assert identity.pins["pin1"].blocked == (name == "blocked-pin")
    # As few APDUs as the standards allow (see apdu/card.py's docstring).
    assert identity.apdu_count <= 18


def test_read_card_spends_no_attempt() -> None:
    card = VirtualUicc(load_profile("default"))
    for _ in range(5):
        read_card(InProcessTransport(card))
    assert card.pin_state(0x01)[0] == 3


class T1Card:
    """The virtual UICC as a T=1 reader presents it: no 61xx/6Cxx reaches the host.

    On T=1 the response data comes with the command itself (Le=00 means
    "all there is"), which is what this wrapper does with the T=0 model.
    """

    def __init__(self, card: VirtualUicc) -> None:
        self.card = card

    def power_on(self) -> bytes:
        return self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def process(self, command: bytes) -> bytes:
        response = self.card.process(command)
        if response[-2] == 0x6C:
            response = self.card.process(command[:-1] + response[-1:])
        if response[-2] == 0x61:
            response = self.card.process(bytes((command[0], 0xC0, 0, 0, response[-1])))
        return response


class T1Transport(InProcessTransport):
    @property
    def protocol(self) -> str:
        return "T=1"


def test_full_read_fits_twelve_apdus_on_t1() -> None:
    # Issue 9: identity + 4 counters in <= 12 APDUs on a T=1 card.
    profile = load_profile("default")
    transport = T1Transport(T1Card(VirtualUicc(profile)))
    identity = read_card(transport)
    assert (identity.iccid, identity.imsi, identity.msisdn) == (
        profile.iccid,
        profile.imsi,
        profile.msisdn,
    )
    assert identity.pins["puk2"].retries == 10
    assert identity.apdu_count <= 12
