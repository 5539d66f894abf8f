"""Status words: their meaning, and turning failures into exceptions.

Meanings follow ISO/IEC 7816-4 §5.1.3, ETSI TS 102 221 §10.2 and, for
classic SIMs (class A0), GSM 11.11 §9.4. :func:`check_response` is the one
place that maps a failing status word to the exception tree of
:mod:`apdu.errors`.
"""

from __future__ import annotations

from apdu.command import CommandApdu, ResponseApdu
from apdu.errors import (
    FileNotFoundOnCardError,
    PinBlockedError,
    SecurityStatusError,
    StatusWordError,
    WrongPinError,
)

GSM_CLA = 0xA0

# Status words the station acts on, by name (ISO/IEC 7816-4 §5.1.3, TS 102 221
# §10.2, GSM 11.11 §9.4). Modules compare against these, never hex literals.
SW_OK = 0x9000
SW_WARNING_EOF = 0x6282
SW_VERIFICATION_FAILED = 0x6300
SW_MEMORY_PROBLEM = 0x6581
SW_WRONG_LENGTH = 0x6700
SW_CHANNEL_NOT_SUPPORTED = 0x6881
SW_SM_NOT_SUPPORTED = 0x6882
SW_CHAINING_NOT_SUPPORTED = 0x6884
SW_COMMAND_NOT_ALLOWED = 0x6900
SW_INCOMPATIBLE_FILE_STRUCTURE = 0x6981
SW_SECURITY_STATUS = 0x6982
SW_AUTH_METHOD_BLOCKED = 0x6983
SW_REFERENCE_DATA_INVALIDATED = 0x6984
SW_CONDITIONS_OF_USE = 0x6985
SW_NO_CURRENT_EF = 0x6986
SW_WRONG_DATA = 0x6A80
SW_FUNCTION_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_WRONG_P1P2 = 0x6A86
SW_REFERENCE_NOT_FOUND = 0x6A88
SW_WRONG_P1P2_OFFSET = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_TECHNICAL_PROBLEM = 0x6F00
GSM_SW_NO_EF = 0x9400
GSM_SW_OUT_OF_RANGE = 0x9402
GSM_SW_FILE_NOT_FOUND = 0x9404
GSM_SW_INCONSISTENT = 0x9408
GSM_SW_ACCESS_CONDITION = 0x9804
GSM_SW_CHV_CONTRADICTION = 0x9808
GSM_SW_CHV_BLOCKED = 0x9840
SW_AUTH_MAC_FAILURE = 0x9862
# SW1 of the answers that carry a length in SW2: 61xx (GET RESPONSE), 6Cxx
# (re-send with Le = xx), 9Fxx (classic SIM GET RESPONSE), 67xx (classic SIM
# wrong length).
SW1_MORE_DATA = 0x61
SW1_WRONG_LE = 0x6C
SW1_GSM_MORE_DATA = 0x9F
SW1_GSM_WRONG_LENGTH = 0x67
# 63Cx: x retries left; the mask picks the family.
SW_RETRIES_MASK = 0xFFF0
SW_RETRIES = 0x63C0
# What a card that only speaks TS 51.011 answers to CLA 00.
NOT_A_UICC = frozenset({SW_CLA_NOT_SUPPORTED, SW_INS_NOT_SUPPORTED})

INS_NAMES: dict[int, str] = {
    0x04: "DEACTIVATE FILE",
    0x0E: "ERASE BINARY",
    0x10: "TERMINAL PROFILE",
    0x12: "FETCH",
    0x14: "TERMINAL RESPONSE",
    0x20: "VERIFY",
    0x24: "CHANGE PIN",
    0x26: "DISABLE PIN",
    0x28: "ENABLE PIN",
    0x2C: "UNBLOCK PIN",
    0x32: "INCREASE",
    0x44: "ACTIVATE FILE",
    0x70: "MANAGE CHANNEL",
    0x73: "MANAGE SECURE CHANNEL",
    0x75: "TRANSACT DATA",
    0x76: "SUSPEND UICC",
    0x78: "GET IDENTITY",
    0x82: "EXTERNAL AUTHENTICATE",
    0x84: "GET CHALLENGE",
    0x88: "AUTHENTICATE",
    0x89: "AUTHENTICATE",
    0xA2: "SEARCH RECORD",
    0xA4: "SELECT",
    0xAA: "TERMINAL CAPABILITY",
    0xB0: "READ BINARY",
    0xB2: "READ RECORD",
    0xC0: "GET RESPONSE",
    0xC2: "ENVELOPE",
    0xCA: "GET DATA",
    0xCB: "RETRIEVE DATA",
    0xD6: "UPDATE BINARY",
    0xDA: "PUT DATA",
    0xDB: "SET DATA",
    0xDC: "UPDATE RECORD",
    0xE0: "CREATE FILE",
    0xE4: "DELETE FILE",
    0xE6: "INSTALL",
    0xE8: "LOAD",
    0xF2: "STATUS",
}
"""Instruction names for UICC/ISO commands (TS 102 221 §10.1.2), keyed by INS."""

GSM_INS_NAMES: dict[int, str] = {
    **INS_NAMES,
    0x04: "INVALIDATE",
    0x20: "VERIFY CHV",
    0x24: "CHANGE CHV",
    0x26: "DISABLE CHV",
    0x28: "ENABLE CHV",
    0x2C: "UNBLOCK CHV",
    0x44: "REHABILITATE",
    0x88: "RUN GSM ALGORITHM",
    0xA2: "SEEK",
    0xFA: "SLEEP",
}
"""Instruction names as GSM 11.11 §9.2 calls them (class A0)."""

# Commands that present a PIN/CHV: a security failure on them is about that code.
PIN_INSTRUCTIONS = frozenset({0x20, 0x24, 0x26, 0x28, 0x2C})

_EXACT: dict[int, str] = {
    0x9000: "normal ending of the command",
    0x9300: "SIM toolkit busy: command cannot be executed now, retry later",
    0x9240: "memory problem",
    0x6200: "warning: no information given, state of non-volatile memory unchanged",
    0x6281: "warning: part of the returned data may be corrupted",
    0x6282: "warning: end of file or record reached before reading Le bytes, "
    "or unsuccessful search",
    0x6283: "warning: selected file invalidated (deactivated)",
    0x6284: "warning: selected file in termination state",
    0x6285: "warning: selected file in termination state",
    0x6286: "warning: no input data available from a sensor on the card",
    0x62F1: "warning: more data available",
    0x62F2: "warning: more data available and proactive command pending",
    0x62F3: "warning: response data available",
    0x6300: "warning: verification or authentication failed",
    0x63F1: "warning: more data expected",
    0x63F2: "warning: more data expected and proactive command pending",
    0x6400: "execution error: state of non-volatile memory unchanged",
    0x6401: "execution error: immediate response required by the card",
    0x6500: "execution error: state of non-volatile memory changed",
    0x6581: "memory problem",
    0x6700: "wrong length (Lc or Le)",
    0x6800: "functions in CLA not supported",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6900: "command not allowed",
    0x6981: "command incompatible with the file structure",
    0x6982: "security status not satisfied (PIN or key not verified)",
    0x6983: "authentication method blocked (PIN or key blocked)",
    0x6984: "referenced data invalidated",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed: no current EF",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "incorrect secure messaging data objects",
    0x6989: "command not allowed: secure channel security not satisfied",
    0x6A80: "incorrect parameters in the data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A85: "Lc inconsistent with TLV structure",
    0x6A86: "incorrect parameters P1-P2",
    0x6A87: "Lc inconsistent with P1-P2",
    0x6A88: "referenced data not found",
    0x6A89: "file already exists",
    0x6A8A: "DF name already exists",
    0x6B00: "wrong parameters P1-P2 (offset outside the file)",
    0x6D00: "instruction code not supported or invalid",
    0x6E00: "class not supported",
    0x6F00: "technical problem, no precise diagnosis",
    0x9400: "no EF selected",
    0x9402: "out of range (invalid address or record)",
    0x9404: "file id or pattern not found",
    0x9408: "file inconsistent with the command",
    0x9802: "no CHV initialised",
    0x9804: "access condition not fulfilled, or wrong CHV with at least one attempt left",
    0x9808: "in contradiction with CHV status",
    0x9810: "in contradiction with invalidation status",
    0x9840: "CHV blocked, or wrong CHV with no attempt left",
    0x9850: "INCREASE cannot be performed: maximum value reached",
    0x9862: "authentication error, application specific",
    0x9863: "security session or association expired",
    0x9864: "minimum UICC suspension time is too long",
}


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {plural or word + 's'}"


def describe_sw(sw: int) -> str:
    """The meaning of status word ``sw`` in plain words; unknown -> 'unknown status word XXXX'."""
    if not 0 <= sw <= 0xFFFF:
        return f"unknown status word {sw:X}"
    exact = _EXACT.get(sw)
    if exact is not None:
        return exact
    sw1, sw2 = sw >> 8, sw & 0xFF
    count = sw2 or 256
    if sw1 == 0x61:
        return f"normal ending, {_plural(count, 'byte')} of response data available"
    if sw1 == 0x9F:
        return f"normal ending, {_plural(count, 'byte')} of response data available (SIM)"
    if sw1 == 0x6C:
        return f"wrong Le: the card has exactly {_plural(count, 'byte')} to return"
    if sw1 == 0x91:
        return f"normal ending, proactive command of {_plural(sw2, 'byte')} pending (FETCH it)"
    if sw1 == 0x92:
        if sw2 <= 0x0F:
            retries = _plural(sw2, "internal update retry", "internal update retries")
            return f"normal ending after {retries}"
        return "normal ending, with information about an ongoing data transfer session"
    if sw & SW_RETRIES_MASK == SW_RETRIES:
        return f"verification failed, {_plural(sw2 & 0x0F, 'attempt')} left"
    if sw1 == 0x67:
        return "wrong length"
    if sw1 == 0x6B:
        return "wrong parameters P1-P2"
    if sw1 == 0x6D:
        return "instruction code not supported or invalid"
    if sw1 == 0x6E:
        return "class not supported"
    if sw1 == 0x6F:
        return "technical problem, no precise diagnosis"
    if sw1 == 0x62:
        return "warning: state of non-volatile memory unchanged"
    if sw1 == 0x63:
        return "warning: state of non-volatile memory changed"
    if sw1 == 0x64:
        return "execution error: state of non-volatile memory unchanged"
    if sw1 == 0x65:
        return "execution error: state of non-volatile memory changed"
    return f"unknown status word {sw:04X}"


def more_data_available(sw: int) -> int | None:
    """Bytes waiting for GET RESPONSE after 61xx (UICC) or 9Fxx (SIM); xx=00 gives 256.

    The value can be used directly as the Le of the GET RESPONSE.
    """
    if sw >> 8 in (0x61, 0x9F):
        return (sw & 0xFF) or 256
    return None


def exact_length(sw: int) -> int | None:
    """The exact Le to re-send with after 6Cxx (xx=00 gives 256); None otherwise."""
    if sw >> 8 == 0x6C:
        return (sw & 0xFF) or 256
    return None


def pin_retries(sw: int) -> int | None:
    """Attempts left from 63Cx, None for any other status word."""
    if sw & SW_RETRIES_MASK == SW_RETRIES:
        return sw & 0x0F
    return None


def is_success(sw: int) -> bool:
    """True when the command completed: 9000, 91xx, 92xx (not 9240), 61xx and 9Fxx.

    61xx/9Fxx mean the command completed and response bytes wait for GET
    RESPONSE; fetching them is the transport's job.
    """
    sw1 = sw >> 8
    if sw == 0x9240:  # memory problem, despite its 92 prefix
        return False
    return sw == SW_OK or sw1 in (0x91, 0x92, 0x61, 0x9F)


def ins_name(ins: int, cla: int | None = None) -> str:
    """Name of an instruction, with GSM 11.11 names for class A0; 'INS XX' if unknown."""
    table = GSM_INS_NAMES if cla == GSM_CLA else INS_NAMES
    return table.get(ins, f"INS {ins:02X}")


def check_response(response: ResponseApdu, command: CommandApdu) -> ResponseApdu:
    """Return ``response`` if its status word means success, else raise the matching error.

    63Cx -> :class:`WrongPinError` (a VERIFY without data is a status query:
    its 63Cx means "not verified yet", still raised with ``retries``), 6983 and
    9840 on a PIN command -> :class:`PinBlockedError`, 6982 and 9804 (outside PIN
    commands) -> :class:`SecurityStatusError`, 6A82 and 9404 on SELECT ->
    :class:`FileNotFoundOnCardError`, anything else failing ->
    :class:`StatusWordError`. Only the command header is attached, never its
    data (which may be a PIN).
    """
    sw = response.sw
    if is_success(sw):
        return response
    name = ins_name(command.ins, command.cla)
    meaning = describe_sw(sw)
    header = command.header
    pin_command = command.ins in PIN_INSTRUCTIONS
    retries = pin_retries(sw)
    if retries is not None:
        if command.ins == 0x20 and not command.data:
            meaning = f"PIN not verified, {_plural(retries, 'attempt')} left"
        else:
            meaning = f"wrong PIN, {_plural(retries, 'attempt')} left"
        raise WrongPinError(
            f"{name}: {meaning} (SW {sw:04X})", sw=sw, retries=retries, command=header
        )
    if pin_command and sw == GSM_SW_ACCESS_CONDITION:
        meaning = "wrong CHV, at least one attempt left"
    elif pin_command and sw == GSM_SW_CHV_BLOCKED:
        meaning = "CHV blocked, no attempt left"
    message = f"{name}: {meaning} (SW {sw:04X})"
    if sw == SW_AUTH_METHOD_BLOCKED or (sw == GSM_SW_CHV_BLOCKED and pin_command):
        raise PinBlockedError(message, sw=sw, command=header)
    if sw == SW_SECURITY_STATUS or (sw == GSM_SW_ACCESS_CONDITION and not pin_command):
        raise SecurityStatusError(message, sw=sw, command=header)
    if sw == SW_FILE_NOT_FOUND or (sw == GSM_SW_FILE_NOT_FOUND and command.ins == 0xA4):
        raise FileNotFoundOnCardError(message, sw=sw, command=header)
    raise StatusWordError(message, sw=sw, command=header)
