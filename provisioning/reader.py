"""The card in a reader as the workflows see it, through the card layer.

The one seam between the workflows and real (or lab) cards:
:func:`apdu.card.read_card` for the facts and :class:`apdu.pin.PinPolicy` for
ensure-default, on any :class:`~apdu.transport.base.CardTransport`.
"""

from __future__ import annotations

from apdu.card import Card, read_card, read_imsi
from apdu.pin import PinPolicy
from apdu.transport.base import CardTransport
from provisioning.cardfacts import CardFacts, PinOutcome, PinOutcomeKind


class ReaderCard:
    """A :class:`~provisioning.cardfacts.CardSession` on a connected card transport."""

    def __init__(self, transport: CardTransport) -> None:
        self._transport = transport

    def read_facts(self) -> CardFacts:
        """ICCID, IMSI and PIN counters, read without spending an attempt."""
        return CardFacts.from_identity(read_card(self._transport))

    def ensure_default_pin(self, known_pin: str | None) -> PinOutcome:
        """The PIN policy's ensure-default (it never risks blocking the card)."""
        result = PinPolicy(Card(self._transport)).ensure_default(known_pin)
        return PinOutcome(
            outcome=PinOutcomeKind(result.outcome),
            reason=result.reason,
            retries_before=result.retries_before,
            retries_after=result.retries_after,
        )

    def read_imsi(self) -> str | None:
        """The IMSI, read again now that PIN1 is verified (2 APDUs, not a full read)."""
        return read_imsi(self._transport)
