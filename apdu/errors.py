"""The project's exception tree.

Every error simtool raises derives from :class:`SimtoolError`. It lives in the
lowest package (``apdu``) so that every layer can use it without importing
upwards; ``modem`` and ``provisioning`` derive their own families from it, and
the CLI maps the families to messages and exit codes in one handler.

Each exception carries the data that explains it (status word, command, ICCID,
counter values) so that callers and tests never have to parse a message.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The station's exit codes, one per kind of outcome (documented in the README)."""

    OK = 0
    FAILED = 1
    SYNTAX = 2  # click's own command-line errors
    CARD = 3
    PIN_REFUSED = 4
    PIN_WRONG = 5
    CARD_DEAD = 6
    PIN_NOT_PROVEN = 7
    MODEM = 8
    MODEM_NOT_VERIFIED = 9
    REFUSED = 10
    NOT_FOUND = 11
    CONCURRENT_CHANGE = 12
    DATABASE = 13
    SECRETS_KEY = 14
    AUDIT_BROKEN = 15
    PARTIAL = 16  # a card read that went on past files the card refused
    USAGE = 64
    DATA = 65
    UNAVAILABLE = 69
    PERMISSION = 77
    INTERRUPTED = 130


class SimtoolError(Exception):
    """Root of every error simtool raises on purpose.

    ``exit_code`` is what the CLI exits with when this error reaches it.
    """

    exit_code: int = ExitCode.FAILED


class ParseError(SimtoolError, ValueError):
    """Bytes or text that do not decode: truncated, malformed, out of range.

    ``data`` holds the offending input (never a secret) and ``offset`` where
    decoding stopped, when known.
    """

    exit_code = ExitCode.DATA

    def __init__(
        self, message: str, *, data: bytes | str | None = None, offset: int | None = None
    ) -> None:
        super().__init__(message)
        self.data = data
        self.offset = offset


class UsageError(SimtoolError):
    """A request that is wrong before any device sees it (bad syntax, bad option)."""

    exit_code = ExitCode.USAGE


class CardError(SimtoolError):
    """Something went wrong talking to a smart card."""

    exit_code = ExitCode.CARD


class TransportError(CardError):
    """The link to the card (reader, pcscd, modem) failed; not the card's answer."""


class NoCardError(TransportError):
    """No card in the reader, or the card was removed during an operation."""


class ReaderNotFoundError(TransportError):
    """No reader matches what was asked for."""


class ServiceUnavailableError(TransportError):
    """The service behind the readers is not there (no lab running, no pcscd): 69."""

    exit_code = ExitCode.UNAVAILABLE


class DeadlineError(TransportError):
    """The card did not answer within the per-APDU deadline."""

    def __init__(
        self, message: str, *, command: bytes | None = None, timeout: float | None = None
    ) -> None:
        super().__init__(message)
        self.command = command
        self.timeout = timeout


class StatusWordError(CardError):
    """The card answered with a status word that means failure.

    ``sw`` is the 16-bit status word; ``command`` the header bytes (CLA INS P1
    P2) of the command that failed, never its data (which may be a PIN).
    """

    def __init__(self, message: str, *, sw: int, command: bytes | None = None) -> None:
        super().__init__(message)
        self.sw = sw
        self.command = command


class FileNotFoundOnCardError(StatusWordError):
    """6A82: file or application not found."""


class SecurityStatusError(StatusWordError):
    """6982: security status not satisfied (for example, PIN1 not verified)."""


class WrongPinError(StatusWordError):
    """63Cx: wrong PIN/PUK; ``retries`` attempts remain."""

    def __init__(
        self, message: str, *, sw: int, retries: int, command: bytes | None = None
    ) -> None:
        super().__init__(message, sw=sw, command=command)
        self.retries = retries


class PinBlockedError(StatusWordError):
    """6983: the PIN (or PUK) is blocked; no attempt remains."""


class PinPolicyError(CardError):
    """The station's PIN safety policy refused an attempt (nothing was sent).

    ``retries_before``/``retries_after`` are the counter values read just before
    the refusal (equal, since nothing was spent).
    """

    exit_code = ExitCode.PIN_REFUSED

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        retries_before: int | None = None,
        retries_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.retries_before = retries_before
        self.retries_after = retries_after
