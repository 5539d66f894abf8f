"""The PIN state machine of a UICC (ETSI TS 102 221 §9.5 and §11.1.9-11.1.13).

One :class:`SecretCode` is a PIN (or ADM key) with its retry counter, its
enabled flag and, optionally, the UNBLOCK PIN (PUK) that resets it. Every
operation returns the TS 102 221 status word; the card translates it for the
classic SIM (GSM 11.11) interface. Nothing here knows about APDUs or files.

States of one PIN with its PUK::

    enabled/verified <-> enabled/not verified --3 wrong--> blocked
    blocked --PUK ok--> enabled/verified (PIN replaced, counters reset)
    blocked --10 wrong PUK--> dead: PIN and PUK both blocked for good
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from apdu import status

PIN_BLOCK = 8
PIN_RETRIES = 3
PUK_RETRIES = 10

SW_OK = status.SW_OK
SW_WRONG_LENGTH = status.SW_WRONG_LENGTH
SW_BLOCKED = status.SW_AUTH_METHOD_BLOCKED
SW_INVALIDATED = status.SW_REFERENCE_DATA_INVALIDATED
SW_CONDITIONS = status.SW_CONDITIONS_OF_USE
SW_BAD_DATA = status.SW_WRONG_DATA


def _retries_sw(count: int) -> int:
    return status.SW_RETRIES | min(count, 0x0F)


def pin_block(value: str) -> bytes:
    """A PIN as the card compares it: ASCII digits padded with FF to 8 bytes."""
    raw = value.encode("ascii")
    return raw + b"\xff" * (PIN_BLOCK - len(raw))


def parse_new_pin(block: bytes) -> str | None:
    """The digits of a new PIN block (4-8 ASCII digits, FF padded), or None if malformed."""
    value = block.rstrip(b"\xff")
    if len(block) != PIN_BLOCK or not 4 <= len(value) <= PIN_BLOCK:
        return None
    if not all(0x30 <= b <= 0x39 for b in value):
        return None
    return value.decode("ascii")


@dataclass
class SecretCode:
    """One PIN (with its PUK, if it has one) and its counters.

    ``verified`` is volatile: power-on and reset clear it. Everything else is
    the card's non-volatile memory and is persisted by the card.
    """

    key_reference: int
    value: str
    retries: int = PIN_RETRIES
    enabled: bool = True
    puk: str | None = None
    puk_retries: int = PUK_RETRIES
    max_retries: int = PIN_RETRIES
    max_puk_retries: int = PUK_RETRIES
    can_disable: bool = False
    verified: bool = False

    def __repr__(self) -> str:
        # Field values include the PIN and PUK: keep them out of logs and tracebacks.
        return (
            f"SecretCode(key_reference=0x{self.key_reference:02X}, retries={self.retries}, "
            f"enabled={self.enabled}, puk_retries={self.puk_retries})"
        )

    @property
    def blocked(self) -> bool:
        """No PIN attempt remains."""
        return self.retries == 0

    @property
    def dead(self) -> bool:
        """PIN blocked and no PUK attempt left: nothing can bring it back."""
        return self.blocked and (self.puk is None or self.puk_retries == 0)

    @property
    def satisfied(self) -> bool:
        """Whether the access condition "this PIN" is met now."""
        return self.verified or not self.enabled

    def _matches(self, block: bytes) -> bool:
        return hmac.compare_digest(block, pin_block(self.value))

    def _present(self, block: bytes) -> int:
        """Compare a presented PIN: reset the counter or spend an attempt."""
        if self._matches(block):
            self.retries = self.max_retries
            self.verified = True
            return SW_OK
        self.retries -= 1
        self.verified = False
        # The third false presentation answers 63C0; later ones 6983 (§11.1.9.1.1).
        return _retries_sw(self.retries)

    def verify(self, data: bytes | None) -> int:
        """VERIFY PIN (§11.1.9).

        Without data the command only reads the retry counter, spending
        nothing. §11.1.9.1.2 says this is performed "whether or not the
        relevant PIN is disabled or blocked", so a disabled PIN answers 63CX
        with its counter and a blocked one 63C0. A PIN already verified in this
        session answers 9000, "verification not required" (ISO 7816-4 §11.5.6),
        as most real cards do: that is how a terminal learns it is verified.
        """
        if data is None:
            if self.verified and self.enabled and not self.blocked:
                return SW_OK
            return _retries_sw(self.retries)
        if len(data) != PIN_BLOCK:
            return SW_WRONG_LENGTH
        if self.blocked:
            return SW_BLOCKED
        if not self.enabled:
            return SW_INVALIDATED
        return self._present(data)

    def change(self, data: bytes) -> int:
        """CHANGE PIN (§11.1.10): old PIN then new PIN, 8 bytes each."""
        if len(data) != 2 * PIN_BLOCK:
            return SW_WRONG_LENGTH
        if self.blocked:
            return SW_BLOCKED
        if not self.enabled:
            return SW_INVALIDATED
        new = parse_new_pin(data[PIN_BLOCK:])
        if new is None:
            return SW_BAD_DATA
        sw = self._present(data[:PIN_BLOCK])
        if sw == SW_OK:
            self.value = new
        return sw

    def disable(self, data: bytes) -> int:
        """DISABLE PIN (§11.1.11): needs the PIN, and spends an attempt when wrong."""
        if len(data) != PIN_BLOCK:
            return SW_WRONG_LENGTH
        if not self.can_disable:
            return SW_CONDITIONS
        if self.blocked:
            return SW_BLOCKED
        if not self.enabled:
            return SW_INVALIDATED
        sw = self._present(data)
        if sw == SW_OK:
            self.enabled = False
        return sw

    def enable(self, data: bytes) -> int:
        """ENABLE PIN (§11.1.12): needs the PIN, and spends an attempt when wrong."""
        if len(data) != PIN_BLOCK:
            return SW_WRONG_LENGTH
        if not self.can_disable:
            return SW_CONDITIONS
        if self.blocked:
            return SW_BLOCKED
        if self.enabled:
            return SW_CONDITIONS
        sw = self._present(data)
        if sw == SW_OK:
            self.enabled = True
        return sw

    def unblock(self, data: bytes | None) -> int:
        """UNBLOCK PIN (§11.1.13): PUK then new PIN; without data, the PUK counter.

        A correct PUK sets the new PIN, resets both counters, enables the PIN
        and satisfies it. A wrong PUK spends a PUK attempt only; the tenth
        answers 63C0 and later ones 6983 (the card is dead if the PIN is
        blocked too).
        """
        if self.puk is None:
            return SW_CONDITIONS
        if data is None:
            return _retries_sw(self.puk_retries)
        if len(data) != 2 * PIN_BLOCK:
            return SW_WRONG_LENGTH
        if self.puk_retries == 0:
            return SW_BLOCKED
        new = parse_new_pin(data[PIN_BLOCK:])
        if new is None:
            return SW_BAD_DATA
        if not hmac.compare_digest(data[:PIN_BLOCK], pin_block(self.puk)):
            self.puk_retries -= 1
            return _retries_sw(self.puk_retries)
        self.value = new
        self.retries = self.max_retries
        self.puk_retries = self.max_puk_retries
        self.enabled = True
        self.verified = True
        return SW_OK

    def persistent_state(self) -> dict[str, object]:
        """What survives power loss (contains the PIN and PUK values)."""
        return {
            "value": self.value,
            "retries": self.retries,
            "enabled": self.enabled,
            "puk": self.puk,
            "puk_retries": self.puk_retries,
        }
