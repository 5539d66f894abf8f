"""Errors of the virtual SIM lab."""

from __future__ import annotations

from apdu.errors import ExitCode, SimtoolError, UsageError


class LabError(SimtoolError):
    """The virtual lab could not do what was asked.

    ``labdir`` names the lab directory concerned, when there is one.
    """

    exit_code = ExitCode.UNAVAILABLE  # could not be started, reached or stopped

    def __init__(self, message: str, *, labdir: str | None = None) -> None:
        super().__init__(message)
        self.labdir = labdir


class LabNotRunningError(LabError):
    """No lab is running in ``labdir``."""


class LabConflictError(LabError):
    """``lab up`` asked for a lab other than the one already running in ``labdir``.

    ``running`` describes the running lab, ``asked`` lists what it lacks of
    the request, one item per difference, in plain words.
    """

    def __init__(self, message: str, *, labdir: str, running: str, asked: tuple[str, ...]) -> None:
        super().__init__(message, labdir=labdir)
        self.running = running
        self.asked = asked


class LabStartError(LabError):
    """``lab up`` failed; ``log_tail`` holds the last lines the supervisor logged."""

    def __init__(self, message: str, *, labdir: str | None = None, log_tail: str = "") -> None:
        super().__init__(message, labdir=labdir)
        self.log_tail = log_tail


class LabPermissionError(LabError):
    """The lab needs root (or user namespaces) to run a private pcscd."""

    exit_code = ExitCode.PERMISSION  # needs privileges this user does not have


class SlotError(LabError):
    """A slot request that cannot be done (no such slot, slot occupied, no card).

    ``slot`` is the slot number asked for.
    """

    exit_code = ExitCode.USAGE  # the request is wrong for the lab as it is

    def __init__(self, message: str, *, slot: int, labdir: str | None = None) -> None:
        super().__init__(message, labdir=labdir)
        self.slot = slot


class StockFileExistsError(UsageError):
    """The stock file to write already exists and was not to be overwritten.

    ``path`` is the existing file; it is left as it was.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path
