"""Watching the lab's readers through PC/SC, the way every client will see them.

The supervisor uses this to return from ``up``, ``insert`` and ``remove``
only once pcscd itself reports the new state: a test that inserts a card can
connect to it at once. libpcsclite reads ``PCSCLITE_CSOCK_NAME`` when it first
connects, so the caller sets it before the first use (the supervisor does so
at start).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from smartcard import scard

from apdu.lab.errors import LabError

# Context errors after which a fresh context may work (pcscd restarted, or not
# yet listening).
_CONTEXT_LOST = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_E_INVALID_HANDLE,
    scard.SCARD_F_COMM_ERROR,
}
_POLL = 0.02


class ReaderWatch:
    """A PC/SC context that waits for readers and card presence."""

    def __init__(self) -> None:
        self._context: int | None = None

    def close(self) -> None:
        """Release the PC/SC context."""
        if self._context is not None:
            scard.SCardReleaseContext(self._context)
            self._context = None

    def _ensure_context(self) -> int | None:
        if self._context is None:
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                return None
            self._context = context
        return self._context

    def _drop_context(self) -> None:
        if self._context is not None:
            scard.SCardReleaseContext(self._context)
        self._context = None

    def readers(self) -> list[str] | None:
        """The readers pcscd lists now; None when pcscd cannot be reached."""
        context = self._ensure_context()
        if context is None:
            return None
        hresult, names = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            if hresult in _CONTEXT_LOST:
                self._drop_context()
            return None
        return list(names)

    def wait_for_readers(
        self, names: list[str], timeout: float, check: Callable[[], None] | None = None
    ) -> None:
        """Wait until pcscd lists every reader in ``names``.

        ``check`` is called on every round and may raise to give up early
        (pcscd died).
        """
        deadline = time.monotonic() + timeout
        listed: list[str] | None = None
        while time.monotonic() < deadline:
            if check is not None:
                check()
            listed = self.readers()
            if listed is not None and all(name in listed for name in names):
                return
            time.sleep(_POLL)
        if listed is None:
            raise LabError(f"pcscd did not answer within {timeout:g} s")
        missing = [name for name in names if name not in listed]
        raise LabError(
            f"pcscd did not list the readers {missing} within {timeout:g} s (it lists {listed})"
        )

    def _states(self, names: list[str]) -> list[tuple[str, int]] | None:
        """(reader, event state) of each named reader now; None if pcscd is unreachable."""
        context = self._ensure_context()
        if context is None:
            return None
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(name, scard.SCARD_STATE_UNAWARE) for name in names]
        )
        if hresult != scard.SCARD_S_SUCCESS:
            if hresult in _CONTEXT_LOST:
                self._drop_context()
            return None
        return [(name, event) for name, event, _atr in states]

    def presence(self, names: list[str]) -> dict[str, bool] | None:
        """Whether a card is present in each named reader; None if pcscd is unreachable."""
        states = self._states(names)
        if states is None:
            return None
        return {name: bool(event & scard.SCARD_STATE_PRESENT) for name, event in states}

    def wait_for_presence(
        self, expected: Mapping[str, bool], timeout: float, check: Callable[[], None] | None = None
    ) -> None:
        """Wait until each named reader has a card (True) or none (False).

        ``check`` is called on every round and may raise to give up early.
        """
        if not expected:
            return
        names = list(expected)
        deadline = time.monotonic() + timeout
        seen: dict[str, bool] | None = None
        while True:
            if check is not None:
                check()
            states = self._states(names)
            seen = (
                None
                if states is None
                else {name: bool(event & scard.SCARD_STATE_PRESENT) for name, event in states}
            )
            if seen is not None and all(seen[name] == want for name, want in expected.items()):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            context = self._context
            if states is None or context is None:
                time.sleep(_POLL)
                continue
            # Block until pcscd reports a change from exactly what it just said
            # (any other "current state" makes it return at once), or a while passes.
            current = [(name, event & ~scard.SCARD_STATE_CHANGED) for name, event in states]
            scard.SCardGetStatusChange(context, int(min(remaining, 0.5) * 1000), current)
        if seen is None:
            raise LabError(f"pcscd did not answer within {timeout:g} s")
        wrong = [
            f"{name} ({'card' if seen[name] else 'no card'})"
            for name, want in expected.items()
            if seen[name] != want
        ]
        raise LabError(
            f"pcscd did not report the expected cards within {timeout:g} s: {', '.join(wrong)}"
        )
