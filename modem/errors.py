"""The modem package's exceptions, one family under :class:`ModemError`.

Every error names the AT command it concerns in the form safe to show (a PIN
or a password is masked before it gets here) and carries what came back, so a
caller or a test never has to parse a message. ``ModemError`` derives from the
project root :class:`apdu.errors.SimtoolError`; the CLI maps it to a message
and an exit code in its one handler.
"""

from __future__ import annotations

from collections.abc import Sequence

from apdu.errors import ExitCode, ParseError, SimtoolError, UsageError

# Exit codes, from the station's table (apdu.errors.ExitCode): MODEM for a
# modem that does not answer, fails a command or misbehaves; MODEM_NOT_VERIFIED
# for settings written but not confirmed by the read-back; PIN_REFUSED for a
# PIN attempt the station refused (nothing sent); PIN_WRONG for a PIN the SIM
# rejected (the same as ``simtool pin verify``); USAGE for a request that is
# wrong before any modem sees it; UNAVAILABLE for a port that cannot be opened.


def _tail(lines: Sequence[str], limit: int = 6) -> str:
    shown = [line for line in lines if line][-limit:]
    return " | ".join(shown) if shown else "nothing"


class ModemError(SimtoolError):
    """Something went wrong talking to a modem over its AT port."""

    exit_code = ExitCode.MODEM


class ModemPortError(ModemError):
    """The port could not be opened, or the link to it broke (``port`` names it)."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, message: str, *, port: str) -> None:
        super().__init__(message)
        self.port = port


class AtCommandError(ModemError):
    """The modem answered a command with a failure result code.

    ``final`` is the final result line as received (``ERROR``, ``+CME ERROR: 16``,
    ``NO CARRIER``, ...). ``cme_code``/``cme_text`` are both filled whether the
    modem sent the number or the text (3GPP TS 27.007 clause 9.2), the same for
    ``cms_code``/``cms_text`` (TS 27.005 clause 3.2.5).
    """

    def __init__(
        self,
        command: str,
        response_lines: Sequence[str],
        final: str,
        *,
        cme_code: int | None = None,
        cme_text: str | None = None,
        cms_code: int | None = None,
        cms_text: str | None = None,
    ) -> None:
        detail = final
        if cme_code is not None or cme_text is not None:
            detail = f"+CME ERROR {cme_code if cme_code is not None else '?'}" + (
                f" ({cme_text})" if cme_text else ""
            )
        elif cms_code is not None or cms_text is not None:
            detail = f"+CMS ERROR {cms_code if cms_code is not None else '?'}" + (
                f" ({cms_text})" if cms_text else ""
            )
        super().__init__(f"{command} failed: {detail}")
        self.command = command
        self.response_lines = tuple(response_lines)
        self.final = final
        self.cme_code = cme_code
        self.cme_text = cme_text
        self.cms_code = cms_code
        self.cms_text = cms_text


class AtTimeoutError(ModemError):
    """No final result code arrived before the command's deadline."""

    def __init__(self, command: str, response_lines: Sequence[str], timeout: float) -> None:
        super().__init__(
            f"{command}: no final result within {timeout:g} s (received: {_tail(response_lines)})"
        )
        self.command = command
        self.response_lines = tuple(response_lines)
        self.timeout = timeout


class ModemGarbageError(ModemError):
    """Bytes that are not AT text arrived while a command was in flight.

    The channel waited for the final result before raising, so it is back in
    step; ``final`` tells whether the command itself succeeded (a write whose
    ``final`` is ``OK`` did happen, a read answer may be incomplete).
    """

    def __init__(
        self,
        command: str,
        garbage: Sequence[bytes],
        response_lines: Sequence[str],
        final: str | None,
    ) -> None:
        sample = garbage[0][:16].hex(" ") if garbage else ""
        super().__init__(
            f"{command}: {len(garbage)} line(s) of garbage on the port "
            f"(first bytes {sample}); final result {final or 'none'}"
        )
        self.command = command
        self.garbage = tuple(garbage)
        self.response_lines = tuple(response_lines)
        self.final = final


class ModemRebootedError(ModemError):
    """The modem restarted (``marker`` such as ``RDY``) during ``command``.

    Volatile settings (echo, error format) are back to their defaults and the
    command in flight was lost.
    """

    def __init__(self, command: str, marker: str, response_lines: Sequence[str]) -> None:
        super().__init__(f"modem restarted ({marker}) during {command}")
        self.command = command
        self.marker = marker
        self.response_lines = tuple(response_lines)


class AtParseError(ModemError, ParseError):
    """An answer line that does not decode (both a modem and a parse error)."""

    # 65 (EX_DATAERR), as for every ParseError: the modem answered, with text
    # that does not decode.
    exit_code = ExitCode.DATA

    def __init__(
        self, message: str, *, line: str | None = None, command: str | None = None
    ) -> None:
        ParseError.__init__(self, message, data=line)
        self.line = line
        self.command = command


class UnknownDialectError(ModemError, UsageError):
    """A dialect name that is not in the table."""

    exit_code = ExitCode.USAGE

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown modem dialect {name!r}; known: {', '.join(known)}")
        self.name = name
        self.known = tuple(known)


class UnsupportedCredentialsError(ModemError, UsageError):
    """Credentials or an APN the dialect cannot carry; refused before anything is sent.

    ``field`` is ``apn``, ``user``, ``password`` or ``auth``; the value itself is
    never part of the message when it is the password.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, field: str, dialect: str | None) -> None:
        super().__init__(message)
        self.field = field
        self.dialect = dialect


class UnknownProfileError(ModemError, UsageError):
    """An APN profile name that is neither built in nor in the configuration."""

    exit_code = ExitCode.USAGE

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown APN profile {name!r}; known: {', '.join(known) or 'none'}")
        self.name = name
        self.known = tuple(known)


class ConfigFileError(ModemError, UsageError):
    """A configuration file given explicitly that is missing or cannot be read (``path``)."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class TraceFileError(ModemError, UsageError):
    """The AT trace file (``path``) cannot be opened for writing; nothing was sent."""

    exit_code = ExitCode.USAGE

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot write trace file {path}: {reason}")
        self.path = path
        self.reason = reason


class ModemPinError(ModemError):
    """The SIM behind the modem rejected the PIN that was sent (``AT+CPIN``).

    ``state`` is the ``+CPIN?`` state before the attempt;
    ``retries_before``/``retries_after`` are the PIN1 counter around it
    (``None`` when it could not be read); the PIN itself is never carried.
    """

    exit_code = ExitCode.PIN_WRONG

    def __init__(
        self, message: str, *, state: str, retries_before: int | None, retries_after: int | None
    ) -> None:
        super().__init__(message)
        self.state = state
        self.retries_before = retries_before
        self.retries_after = retries_after


class SimStateRefusalError(ModemPinError):
    """PIN1 was not sent: the SIM is not asking for it (it wants its PUK, or is unusable).

    A station refusal like :class:`apdu.errors.PinPolicyError` (nothing was
    spent); unblocking with the PUK is a card operation.
    """

    exit_code = ExitCode.PIN_REFUSED


class ConfigureError(ModemError):
    """Configuration stopped part-way; ``written`` lists what the modem accepted.

    ``cause`` is the error that stopped it. A modem is never left half-written
    without this list reaching the operator.
    """

    def __init__(self, message: str, *, written: Sequence[str], cause: ModemError) -> None:
        done = "; ".join(written) if written else "nothing"
        super().__init__(f"{message} (written before the failure: {done})")
        self.written = tuple(written)
        self.cause = cause


class NotVerifiedError(ModemError):
    """The settings were written but the read-back did not prove them.

    ``mismatches`` holds ``(field, read_back)`` pairs, password values masked.
    """

    exit_code = ExitCode.MODEM_NOT_VERIFIED

    def __init__(self, mismatches: Sequence[tuple[str, str | None]]) -> None:
        text = ", ".join(f"{field} read back as {value!r}" for field, value in mismatches)
        super().__init__(f"configuration not verified: {text}")
        self.mismatches = tuple(mismatches)


class ConnectionRejectedError(ModemError):
    """The network refused to activate the PDP context: the credentials are not proven.

    ``cause`` is the ESM/SM cause number (TS 24.301 clause 9.9.4.4) when the
    modem told it (``+CME ERROR: 129``, ``AT+CEER``), ``reason`` the cause in
    words, ``kind`` what it means for the station: ``authentication`` (29),
    ``apn`` (27), ``subscription`` (33), ``no service`` (no network to ask),
    or ``other``. Exit code 9, as for settings not verified.
    """

    exit_code = ExitCode.MODEM_NOT_VERIFIED

    def __init__(
        self, message: str, *, cause: int | None, reason: str, kind: str, final: str
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.reason = reason
        self.kind = kind
        self.final = final
