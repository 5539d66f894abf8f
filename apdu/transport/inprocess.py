"""A card model in this process, for unit tests of pure card logic.

The model is any object with ``power_on() -> bytes`` and
``process(command) -> bytes`` (the virtual UICC is one). Integration tests use
the same model through the lab instead, the way a physical reader is used.
"""

from __future__ import annotations

from typing import Protocol

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
        card: CardModel,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        tracer: Tracer | None = None,
        name: str = "in-process",
    ) -> None:
        super().__init__(timeout=timeout, tracer=tracer, name=name)
        self.card = card

    def _connect(self) -> bytes:
        return self.card.power_on()

    def _disconnect(self) -> None:
        self.card.power_off()

    def _transmit(self, command: bytes, timeout: float) -> bytes:
        return self.card.process(command)
