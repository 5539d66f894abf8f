"""Replays a ``--trace`` file: the recorded answers, checked against the commands.

A replay is strict: each command must equal the recorded one (masked bytes
match anything of the same length), so a change in the card layer's APDU
sequence shows up as a clear error in tests instead of silently different
answers.
"""

from __future__ import annotations

from pathlib import Path

from apdu.errors import TransportError
from apdu.transport.base import DEFAULT_TIMEOUT, CardTransport
from apdu.transport.trace import MASK, Tracer, TraceRecord, mask_command


class ReplayMismatchError(TransportError):
    """The command sent differs from the one recorded at this point of the trace."""


class ReplayTransport(CardTransport):
    """Answers from a recorded trace, in order."""

    def __init__(
        self,
        records: list[TraceRecord],
        *,
        atr: bytes = b"\x3b\x00",
        timeout: float = DEFAULT_TIMEOUT,
        tracer: Tracer | None = None,
        name: str = "replay",
    ) -> None:
        super().__init__(timeout=timeout, tracer=tracer, name=name)
        self._records = [r for r in records if r.event == "apdu"]
        self._position = 0
        self._recorded_atr = atr

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: object) -> ReplayTransport:
        """Load a JSON-lines trace written by :class:`Tracer`."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        records = [
            TraceRecord.from_json(line, n) for n, line in enumerate(lines, 1) if line.strip()
        ]
        return cls(records, **kwargs)  # type: ignore[arg-type]

    @property
    def remaining(self) -> int:
        """Recorded exchanges not yet replayed."""
        return len(self._records) - self._position

    def _connect(self) -> bytes:
        return self._recorded_atr

    def _disconnect(self) -> None:
        return None

    def _transmit(self, command: bytes, timeout: float) -> bytes:
        if self._position >= len(self._records):
            raise ReplayMismatchError(f"trace exhausted after {self._position} exchanges")
        record = self._records[self._position]
        sent = mask_command(command)
        if not _matches(sent, record.command):
            raise ReplayMismatchError(
                f"exchange {self._position + 1}: sent {sent}, trace has {record.command}"
            )
        self._position += 1
        return bytes.fromhex(record.response)


def _matches(sent: str, recorded: str) -> bool:
    if len(sent) != len(recorded):
        return False
    return all(a == b or b == MASK[0] for a, b in zip(sent, recorded, strict=True))
