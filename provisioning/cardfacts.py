"""What the workflows need from the card in the reader, as plain data.

The workflows never talk to a card directly. They get a :class:`CardSession`:
the facts read once from the chip (ICCID, IMSI, PIN state) and the PIN policy's
``ensure-default`` step. :mod:`provisioning.reader` implements it on a real
transport through the card layer; :class:`StaticCard` implements it from data,
for tests and for replaying a recorded reading.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class PinOutcomeKind(enum.StrEnum):
    """The three answers of the PIN policy's ensure-default (issue 3)."""

    ALREADY_DEFAULT = "already-default"
    CHANGED_TO_DEFAULT = "changed-to-default"
    CANNOT_PROVE = "cannot-prove"


@dataclass(frozen=True)
class PinOutcome:
    """What ensure-default did and why (``reason`` never holds a PIN)."""

    outcome: PinOutcomeKind
    reason: str
    #: PIN1's counter before and after (None: not known); an attempt was spent
    #: when ``retries_after`` is below ``retries_before``.
    retries_before: int | None = None
    retries_after: int | None = None

    @property
    def attempt_spent(self) -> bool:
        """True when the card counted a wrong PIN1."""
        return (
            self.retries_before is not None
            and self.retries_after is not None
            and self.retries_after < self.retries_before
        )

    @property
    def is_default(self) -> bool:
        """True when the card now has PIN1 = 0000, proven."""
        return self.outcome is not PinOutcomeKind.CANNOT_PROVE


@dataclass(frozen=True)
class PinFacts:
    """The state of one PIN or PUK as the chip reported it (no attempt spent)."""

    retries: int | None
    enabled: bool | None
    blocked: bool


@dataclass(frozen=True)
class CardFacts:
    """The chip's answers, read once: identity and PIN state.

    ``imsi`` is None when the card would not show it (``imsi_protected``: PIN1
    not verified yet).
    """

    iccid: str
    iccid_luhn_ok: bool
    imsi: str | None
    imsi_protected: bool
    pin1: PinFacts
    puk1: PinFacts | None = None

    @classmethod
    def from_identity(cls, identity: CardIdentityLike) -> CardFacts:
        """Take the facts the workflows use from the card layer's ``CardIdentity``."""
        pins = identity.pins

        def facts(name: str) -> PinFacts | None:
            status = pins.get(name)
            if status is None:
                return None
            return PinFacts(retries=status.retries, enabled=status.enabled, blocked=status.blocked)

        pin1 = facts("pin1") or PinFacts(retries=None, enabled=None, blocked=False)
        return cls(
            iccid=identity.iccid,
            iccid_luhn_ok=identity.iccid_luhn_ok,
            imsi=identity.imsi,
            imsi_protected=identity.imsi_protected,
            pin1=pin1,
            puk1=facts("puk1"),
        )


class PinStatusLike(Protocol):
    """The fields of ``apdu.card.PinStatus`` the workflows read."""

    @property
    def retries(self) -> int | None:
        """Attempts left."""

    @property
    def enabled(self) -> bool | None:
        """Whether the PIN is enabled."""

    @property
    def blocked(self) -> bool:
        """Whether no attempt is left."""


class CardIdentityLike(Protocol):
    """The fields of ``apdu.card.CardIdentity`` the workflows read."""

    @property
    def iccid(self) -> str:
        """The chip's ICCID."""

    @property
    def iccid_luhn_ok(self) -> bool:
        """Whether its check digit is right."""

    @property
    def imsi(self) -> str | None:
        """The IMSI, when readable."""

    @property
    def imsi_protected(self) -> bool:
        """True when the IMSI needs PIN1 first."""

    @property
    def pins(self) -> Mapping[str, PinStatusLike]:
        """``pin1``, ``pin2``, ``puk1``, ``puk2``."""


class CardSession(Protocol):
    """The card in the reader, as a workflow uses it."""

    def read_facts(self) -> CardFacts:
        """Read identity and PIN state (once per workflow)."""

    def ensure_default_pin(self, known_pin: str | None) -> PinOutcome:
        """Run the PIN policy's ensure-default; ``known_pin`` is the vendor's PIN1."""

    def read_imsi(self) -> str | None:
        """Read the IMSI again, after ensure-default verified PIN1."""


@dataclass
class StaticCard:
    """A :class:`CardSession` from data: tests, and replaying a recorded reading.

    ``imsi_after_pin`` is what :meth:`read_imsi` returns (the IMSI a protected
    card shows once PIN1 is verified). ``calls`` records what was asked, so a
    test can prove that a refused card's PIN was never touched.
    """

    facts: CardFacts
    pin_outcome: PinOutcome
    imsi_after_pin: str | None = None
    calls: list[str] | None = None

    def _record(self, call: str) -> None:
        if self.calls is not None:
            self.calls.append(call)

    def read_facts(self) -> CardFacts:
        """The facts given."""
        self._record("read_facts")
        return self.facts

    def ensure_default_pin(self, known_pin: str | None) -> PinOutcome:
        """The outcome given."""
        self._record("ensure_default_pin")
        return self.pin_outcome

    def read_imsi(self) -> str | None:
        """The IMSI given for after PIN1."""
        self._record("read_imsi")
        return self.imsi_after_pin
