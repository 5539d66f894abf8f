"""Real cards' speed in the lab: a delay before every answer to a command APDU.

A virtual card answers in about 0.1 ms; a real SIM takes milliseconds per
APDU. ``simtool lab up --latency MS [--jitter MS]`` makes every lab card wait
that long (plus a uniform random ``±jitter``) before it answers a command, so
benchmarks measure a station as it will run on real cards. Control messages
(power, reset, ATR polls) are answered at once, as a reader does.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from apdu.errors import UsageError

#: The largest delay the lab accepts (a card this slow is a broken card).
MAX_LATENCY_MS = 5000.0


class CardLatency:
    """The delay every card of a lab adds to a command, changeable while it runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency_s = 0.0
        self._jitter_s = 0.0
        self._random = random.Random()

    def set(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        """Set the delay per APDU and its jitter, in milliseconds."""
        for name, value in (("latency", latency_ms), ("jitter", jitter_ms)):
            if not 0.0 <= value <= MAX_LATENCY_MS:
                raise UsageError(f"{name} must be 0 to {MAX_LATENCY_MS:g} ms, not {value:g}")
        if jitter_ms > latency_ms:
            raise UsageError(f"jitter ({jitter_ms:g} ms) cannot exceed latency ({latency_ms:g} ms)")
        with self._lock:
            self._latency_s = latency_ms / 1000.0
            self._jitter_s = jitter_ms / 1000.0

    @property
    def milliseconds(self) -> tuple[float, float]:
        """(latency, jitter) in milliseconds."""
        with self._lock:
            return self._latency_s * 1000.0, self._jitter_s * 1000.0

    def delay(self) -> float:
        """Seconds the next answer waits."""
        with self._lock:
            if self._jitter_s:
                return max(0.0, self._latency_s + self._random.uniform(-1, 1) * self._jitter_s)
            return self._latency_s


class SlowCard:
    """A card that answers every command APDU after :meth:`CardLatency.delay`.

    Everything else (ATR, power, reset, the card's own attributes) is the
    wrapped card's, unchanged.
    """

    def __init__(self, card: Any, latency: CardLatency) -> None:
        self._card = card
        self._latency = latency

    def __getattr__(self, name: str) -> Any:
        return getattr(self._card, name)

    @property
    def atr(self) -> bytes:
        """The wrapped card's ATR."""
        atr: bytes = self._card.atr
        return atr

    def power_on(self) -> bytes:
        """Cold start of the wrapped card."""
        answer: bytes = self._card.power_on()
        return answer

    def power_off(self) -> None:
        """Power the wrapped card off."""
        self._card.power_off()

    def reset(self) -> bytes:
        """Warm reset of the wrapped card."""
        answer: bytes = self._card.reset()
        return answer

    def process(self, command: bytes) -> bytes:
        """The wrapped card's answer, after the lab's delay."""
        wait = self._latency.delay()
        if wait > 0:
            time.sleep(wait)
        answer: bytes = self._card.process(command)
        return answer
