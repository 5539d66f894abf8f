"""A card model in this process: the ``virtual:`` readers and unit tests of card logic.

The model is any object with ``power_on() -> bytes``, ``power_off()`` and
``process(command) -> bytes`` (the virtual UICC is one). No pcscd, no lab and
no socket is involved, so an exchange costs a function call.

The transport behaves like a reader with the card in it, including what goes
wrong with real cards: :meth:`InProcessTransport.pull` takes the card out
(the next command fails with :class:`NoCardError`, as PC/SC reports a removed
card) and :meth:`InProcessTransport.stall` makes it stop answering (the next
command fails with :class:`DeadlineError` once the per-APDU deadline has
passed). A stalled call only waits on an event, so this backend keeps its own
deadline and needs no watchdog thread.
"""

from __future__ import annotations

import threading
from typing import Protocol

from apdu.errors import DeadlineError, NoCardError
from apdu.transport.base import DEFAULT_TIMEOUT, CardTransport
from apdu.transport.trace import Tracer


class CardModel(Protocol):
    """What a card simulation must offer to be used in process."""

    def power_on(self) -> bytes:
        """Power the card; return the ATR."""

    def power_off(self) -> None:
        """Remove power."""

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU with data + SW."""


class InProcessTransport(CardTransport):
    """Direct calls into a card model; T=0 semantics like the lab's cards."""

    def __init__(
        self,
        card: CardModel | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        tracer: Tracer | None = None,
        name: str = "in-process",
    ) -> None:
        super().__init__(timeout=timeout, tracer=tracer, name=name)
        self.card = card
        self._stalled = threading.Event()
        self._unstalled = threading.Event()

    # -- what happens to a card in a reader -------------------------------------------
    def pull(self) -> CardModel | None:
        """Take the card out of the reader (power is lost); returns it."""
        card, self.card = self.card, None
        if card is not None:
            card.power_off()
        return card

    def insert(self, card: CardModel) -> None:
        """Put a card in the reader; the link must be (re)connected to use it."""
        self.card = card
        self.unstall()

    def stall(self) -> None:
        """Make the card stop answering: commands wait for the deadline, then fail."""
        self._unstalled.clear()
        self._stalled.set()

    def unstall(self) -> None:
        """Let a stalled card answer again (a command already waiting still fails)."""
        self._stalled.clear()
        self._unstalled.set()

    # -- backend primitives -----------------------------------------------------------
    def _connect(self) -> bytes:
        if self.card is None:
            raise NoCardError(f"{self.name}: no card in the reader")
        return self.card.power_on()

    def _disconnect(self) -> None:
        if self.card is not None:
            self.card.power_off()

    def _disconnect_and_reset(self) -> None:
        # Powering the model off already clears its volatile security state.
        self._disconnect()

    def _transmit(self, command: bytes, timeout: float) -> bytes:
        if self.card is None:
            raise NoCardError(f"{self.name}: the card was removed")
        if self._stalled.is_set():
            self._unstalled.wait(timeout)
            raise DeadlineError(
                f"{self.name}: card did not answer within {timeout:g} s",
                command=command[:4],
                timeout=timeout,
            )
        return self.card.process(command)
