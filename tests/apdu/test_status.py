"""Status words: meanings (ISO 7816-4, TS 102 221 §10.2, GSM 11.11 §9.4) and the error mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.command import CommandApdu, ResponseApdu
from apdu.errors import (
    FileNotFoundOnCardError,
    PinBlockedError,
    SecurityStatusError,
    StatusWordError,
    WrongPinError,
)
from apdu.status import (
    INS_NAMES,
    check_response,
    describe_sw,
    exact_length,
    ins_name,
    is_success,
    more_data_available,
    pin_retries,
)


@pytest.mark.parametrize(
    ("sw", "words"),
    [
        (0x9000, "normal ending"),
        (0x9115, "proactive command of 21 bytes"),
        (0x9101, "1 byte pending"),
        (0x9203, "3 internal update retries"),
        (0x9240, "memory problem"),
        (0x6110, "16 bytes of response data available"),
        (0x6100, "256 bytes"),
        (0x6C1A, "exactly 26 bytes"),
        (0x9F22, "34 bytes of response data available (SIM)"),
        (0x63C2, "2 attempts left"),
        (0x63C1, "1 attempt left"),
        (0x63C0, "0 attempts left"),
        (0x6983, "blocked"),
        (0x6982, "security status not satisfied"),
        (0x6A82, "file or application not found"),
        (0x6A83, "record not found"),
        (0x6A86, "incorrect parameters P1-P2"),
        (0x6A88, "referenced data not found"),
        (0x6B00, "wrong parameters P1-P2"),
        (0x6D00, "instruction code not supported"),
        (0x6E00, "class not supported"),
        (0x6F00, "technical problem"),
        (0x6F12, "technical problem"),
        (0x6700, "wrong length"),
        (0x6581, "memory problem"),
        (0x6400, "execution error"),
        (0x6985, "conditions of use not satisfied"),
        (0x6986, "no current EF"),
        (0x6A81, "function not supported"),
        (0x6A84, "not enough memory"),
        (0x6283, "invalidated"),
        (0x6282, "end of file or record reached"),
        (0x9802, "no CHV initialised"),
        (0x9804, "access condition not fulfilled"),
        (0x9808, "contradiction with CHV status"),
        (0x9810, "contradiction with invalidation status"),
        (0x9840, "CHV blocked"),
        (0x9404, "not found"),
        (0x9300, "toolkit busy"),
    ],
)
def test_describe_sw(sw: int, words: str) -> None:
    assert words in describe_sw(sw)


@pytest.mark.parametrize(
    ("sw", "text"),
    [
        (0x1234, "unknown status word 1234"),
        (0x6A8F, "unknown status word 6A8F"),
        (0x9905, "unknown status word 9905"),
    ],
)
def test_describe_unknown_sw(sw: int, text: str) -> None:
    assert describe_sw(sw) == text


@given(st.integers(-5, 0x1FFFF))
def test_describe_sw_always_answers(sw: int) -> None:
    assert describe_sw(sw)


@pytest.mark.parametrize(
    ("sw", "more", "exact", "retries"),
    [
        (0x6110, 16, None, None),
        (0x6100, 256, None, None),
        (0x9F0F, 15, None, None),
        (0x9F00, 256, None, None),
        (0x6C05, None, 5, None),
        (0x6C00, None, 256, None),
        (0x63C3, None, None, 3),
        (0x63C0, None, None, 0),
        (0x9000, None, None, None),
        (0x6300, None, None, None),
        (0x9110, None, None, None),
    ],
)
def test_length_and_retry_helpers(
    sw: int, more: int | None, exact: int | None, retries: int | None
) -> None:
    assert more_data_available(sw) == more
    assert exact_length(sw) == exact
    assert pin_retries(sw) == retries


@pytest.mark.parametrize(
    ("sw", "ok"),
    [
        (0x9000, True),
        (0x9110, True),
        (0x9200, True),
        (0x6120, True),
        (0x9F10, True),
        (0x9240, False),
        (0x6282, False),
        (0x6A82, False),
        (0x9300, False),
    ],
)
def test_is_success(sw: int, ok: bool) -> None:
    assert is_success(sw) is ok


VERIFY_PIN1 = CommandApdu(0x00, 0x20, 0x00, 0x01, b"1234\xff\xff\xff\xff")
READ_BINARY = CommandApdu(0x00, 0xB0, 0x00, 0x00, le=10)
SELECT = CommandApdu(0x00, 0xA4, 0x00, 0x04, bytes.fromhex("6F07"), le=256)
GSM_SELECT = CommandApdu(0xA0, 0xA4, 0x00, 0x00, bytes.fromhex("6F07"))
GSM_VERIFY = CommandApdu(0xA0, 0x20, 0x00, 0x01, b"1234\xff\xff\xff\xff")


def test_check_response_returns_successful_response() -> None:
    response = ResponseApdu(b"\x98\x10", 0x90, 0x00)
    assert check_response(response, READ_BINARY) is response
    pending = ResponseApdu(b"", 0x91, 0x1A)
    assert check_response(pending, READ_BINARY) is pending


@pytest.mark.parametrize(
    ("sw", "command", "error", "words"),
    [
        (0x63C2, VERIFY_PIN1, WrongPinError, "VERIFY: wrong PIN, 2 attempts left"),
        (0x6983, VERIFY_PIN1, PinBlockedError, "VERIFY: authentication method blocked"),
        (0x6982, READ_BINARY, SecurityStatusError, "READ BINARY: security status not satisfied"),
        (0x6A82, SELECT, FileNotFoundOnCardError, "SELECT: file or application not found"),
        (0x6B00, READ_BINARY, StatusWordError, "READ BINARY: wrong parameters P1-P2"),
        (0x6282, READ_BINARY, StatusWordError, "end of file"),
        (0x9240, READ_BINARY, StatusWordError, "memory problem"),
        (0x9404, GSM_SELECT, FileNotFoundOnCardError, "SELECT: file id or pattern not found"),
        (0x9804, GSM_SELECT, SecurityStatusError, "access condition not fulfilled"),
        (0x9804, GSM_VERIFY, StatusWordError, "VERIFY CHV: wrong CHV, at least one attempt"),
        (0x9840, GSM_VERIFY, PinBlockedError, "VERIFY CHV: CHV blocked"),
        (
            0x1234,
            CommandApdu(0x00, 0x99, 0, 0),
            StatusWordError,
            "INS 99: unknown status word 1234",
        ),
    ],
)
def test_check_response_raises_matching_error(
    sw: int, command: CommandApdu, error: type[StatusWordError], words: str
) -> None:
    with pytest.raises(StatusWordError) as info:
        check_response(ResponseApdu.from_sw(sw), command)
    assert type(info.value) is error
    assert info.value.sw == sw
    assert info.value.command == command.header
    assert words in str(info.value)
    assert f"SW {sw:04X}" in str(info.value)


def test_wrong_pin_carries_retries_and_never_the_pin() -> None:
    with pytest.raises(WrongPinError) as info:
        check_response(ResponseApdu.from_sw(0x63C1), VERIFY_PIN1)
    assert info.value.retries == 1
    assert info.value.command == bytes.fromhex("00200001")
    assert "1234" not in str(info.value)
    assert b"1234" not in (info.value.command or b"")


def test_verify_without_data_is_a_status_query() -> None:
    query = CommandApdu(0x00, 0x20, 0x00, 0x81)
    with pytest.raises(WrongPinError) as info:
        check_response(ResponseApdu.from_sw(0x63C3), query)
    assert info.value.retries == 3
    assert "PIN not verified, 3 attempts left" in str(info.value)


def test_ins_names() -> None:
    assert INS_NAMES[0xB0] == "READ BINARY"
    assert ins_name(0x20) == "VERIFY"
    assert ins_name(0x20, cla=0xA0) == "VERIFY CHV"
    assert ins_name(0x04, cla=0x00) == "DEACTIVATE FILE"
    assert ins_name(0x04, cla=0xA0) == "INVALIDATE"
    assert ins_name(0xFA, cla=0xA0) == "SLEEP"
    assert ins_name(0x99) == "INS 99"


@given(st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 255))
def test_check_response_either_returns_or_raises_status_word_error(
    sw: int, cla: int, ins: int
) -> None:
    command = CommandApdu(cla, ins, 0, 0, b"\x31\x32\x33\x34")
    response = ResponseApdu.from_sw(sw)
    try:
        assert check_response(response, command) is response
        assert is_success(sw)
    except StatusWordError as exc:
        assert not is_success(sw)
        assert exc.sw == sw
        assert exc.command == command.header
