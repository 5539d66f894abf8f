"""Replays a ``--trace`` file: the recorded answers, checked against the commands.

A replay is strict: each command must equal the recorded one (masked bytes
match anything of the same length), so a change in the card layer's APDU
sequence shows up as a clear error in tests instead of silently different
answers. The error names the exchange, both commands and their instructions.

The ATR is the one of the trace's first ``connect`` record (traces written
before those records existed replay with a minimal ``3B 00``).
"""

from __future__ import annotations

from pathlib import Path

from apdu.errors import TransportError, UsageError
from apdu.status import ins_name
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
    def from_file(
        cls,
        path: str | Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        tracer: Tracer | None = None,
        name: str | None = None,
    ) -> ReplayTransport:
        """Load a JSON-lines trace written by :class:`Tracer` (UsageError if unreadable)."""
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise UsageError(f"cannot read trace file {path}: {reason}") from error
        records = [
            TraceRecord.from_json(line, n) for n, line in enumerate(lines, 1) if line.strip()
        ]
        connects = [r for r in records if r.event == "connect" and r.response]
        atr = bytes.fromhex(connects[0].response) if connects else b"\x3b\x00"
        return cls(records, atr=atr, timeout=timeout, tracer=tracer, name=name or f"replay:{path}")

    @property
    def remaining(self) -> int:
        """Recorded exchanges not yet replayed."""
        return len(self._records) - self._position

    def _connect(self) -> bytes:
        return self._recorded_atr

    def _disconnect(self) -> None:
        return None

    def _transmit(self, command: bytes, timeout: float) -> bytes:
        sent = mask_command(command)
        if self._position >= len(self._records):
            raise ReplayMismatchError(
                f"{self.name}: APDU {self._position + 1} ({_describe(sent)}) departs from the "
                f"trace: the trace ends after {len(self._records)} exchanges"
            )
        record = self._records[self._position]
        if not _matches(sent, record.command):
            raise ReplayMismatchError(
                f"{self.name}: APDU {self._position + 1} of {len(self._records)} departs from "
                f"the trace: sent {_describe(sent)}, trace has {_describe(record.command)}"
            )
        self._position += 1
        return bytes.fromhex(record.response)


def _matches(sent: str, recorded: str) -> bool:
    if len(sent) != len(recorded):
        return False
    return all(a == b or b == MASK[0] for a, b in zip(sent, recorded, strict=True))


def _describe(hex_command: str) -> str:
    """``00A4000C02... (SELECT)``: the command as traced, with its instruction's name."""
    try:
        cla, ins = int(hex_command[0:2], 16), int(hex_command[2:4], 16)
    except ValueError:
        return hex_command
    return f"{hex_command} ({ins_name(ins, cla)})"
