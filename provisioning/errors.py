"""The exception family of the line database and the warehouse workflows.

Everything here derives from :class:`~apdu.errors.SimtoolError`, so the CLI's
one handler maps it to a message and an exit code. Each class carries the data
that explains it; no caller has to parse a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from apdu.errors import ExitCode, ParseError, SimtoolError


class ProvisioningError(SimtoolError):
    """Root of the line database's errors."""

    exit_code: int = ExitCode.REFUSED


class RefusedError(ProvisioningError):
    """A station action was refused by a rule; nothing was written.

    ``rule`` is the code of the rule (see :class:`provisioning.lifecycle.Rule`),
    ``iccid``/``service_code`` what it concerned, when known.
    """

    def __init__(
        self, message: str, *, rule: str, iccid: str | None = None, service_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.iccid = iccid
        self.service_code = service_code


class LifecycleError(RefusedError):
    """An illegal step of the card or line lifecycle, or a broken business rule.

    ``state`` is the state the card or line was in when the step was refused.
    """

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        state: str | None = None,
        iccid: str | None = None,
        service_code: str | None = None,
    ) -> None:
        super().__init__(message, rule=rule, iccid=iccid, service_code=service_code)
        self.state = state


@dataclass(frozen=True)
class Check:
    """One check of a provisioning pass: its name, whether it passed, and why."""

    name: str
    passed: bool
    detail: str


class CheckFailedError(RefusedError):
    """A provisioning check failed; ``checks`` lists every check made, the last failed."""

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        checks: Sequence[Check],
        iccid: str | None = None,
        service_code: str | None = None,
    ) -> None:
        super().__init__(message, rule=rule, iccid=iccid, service_code=service_code)
        self.checks = tuple(checks)


class NotFoundError(ProvisioningError):
    """No ``kind`` (card, line, batch) with identifier ``key`` in the database."""

    exit_code = ExitCode.NOT_FOUND

    def __init__(self, message: str, *, kind: str, key: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.key = key


class ConcurrentChangeError(ProvisioningError):
    """Another station changed the same card or line first; this action wrote nothing."""

    exit_code = ExitCode.CONCURRENT_CHANGE

    def __init__(self, message: str, *, kind: str, key: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.key = key


class DatabaseError(ProvisioningError):
    """The database cannot be used: unreachable, not initialised, schema out of date, busy.

    ``url`` is the database URL with any password masked.
    """

    exit_code = ExitCode.DATABASE

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class SecretsKeyError(ProvisioningError):
    """The secrets key is missing, malformed, unsafe, or not the one the database needs.

    ``expected_key_id``/``key_id`` are short fingerprints of keys, never keys.
    """

    exit_code = ExitCode.SECRETS_KEY

    def __init__(
        self,
        message: str,
        *,
        source: str,
        key_id: str | None = None,
        expected_key_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.key_id = key_id
        self.expected_key_id = expected_key_id


@dataclass(frozen=True)
class RowProblem:
    """One bad row of an input file: 1-based ``line``, the ``field`` and the ``reason``.

    ``reason`` never contains the value of a secret field.
    """

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


class InputFileError(ProvisioningError, ParseError):
    """An input file (stock, lines) has bad rows; nothing of it was imported."""

    exit_code = ExitCode.DATA

    def __init__(self, message: str, *, path: str, problems: Sequence[RowProblem]) -> None:
        ProvisioningError.__init__(self, message)
        self.data = path
        self.offset = None
        self.path = path
        self.problems = tuple(problems)

    def __str__(self) -> str:
        lines = [super().__str__()]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


class AuditTamperedError(ProvisioningError):
    """The audit chain is broken at event ``seq``: ``kind`` is edited, inserted or deleted."""

    exit_code = ExitCode.AUDIT_BROKEN

    def __init__(self, message: str, *, seq: int, kind: str) -> None:
        super().__init__(message)
        self.seq = seq
        self.kind = kind
