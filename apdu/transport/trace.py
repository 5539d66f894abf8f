"""APDU traces as JSON lines, with secrets masked before they are written.

One record per exchange: time, direction-free command and response hex, status
word, duration; and one ``connect`` record per power-up with the ATR in its
``response`` (so that ``replay:`` answers the power-up as the card did).

The data field of the PIN commands (VERIFY, CHANGE REFERENCE DATA,
DISABLE/ENABLE VERIFICATION REQUIREMENT, RESET RETRY COUNTER / UNBLOCK)
and of AUTHENTICATE-adjacent key material is replaced by ``*`` of the same
length so a trace can be shared with a vendor without leaking a PIN or PUK.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from apdu.errors import ParseError, UsageError

# INS codes whose data field is a PIN, PUK or ADM code (ISO 7816-4 / TS 102 221).
SECRET_INS = frozenset({0x20, 0x24, 0x26, 0x28, 0x2C})
# The masking marker keeps the length visible, which is what a reader of a
# trace needs to debug a "wrong length" error without seeing the secret.
MASK = "**"


def mask_command(command: bytes) -> str:
    """Hex of a command APDU with any secret data field masked."""
    if len(command) > 5 and command[1] in SECRET_INS:
        return command[:5].hex().upper() + MASK * (len(command) - 5)
    return command.hex().upper()


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One command/response exchange as recorded in a trace file."""

    command: str
    response: str
    seconds: float
    time: float
    reader: str = ""
    event: str = "apdu"

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(
            {
                "event": self.event,
                "time": round(self.time, 6),
                "reader": self.reader,
                "command": self.command,
                "response": self.response,
                "seconds": round(self.seconds, 6),
            }
        )

    @classmethod
    def from_json(cls, line: str, line_number: int = 0) -> TraceRecord:
        """Parse one JSON line of a trace file."""
        try:
            obj: Any = json.loads(line)
            return cls(
                command=str(obj["command"]),
                response=str(obj.get("response", "")),
                seconds=float(obj.get("seconds", 0.0)),
                time=float(obj.get("time", 0.0)),
                reader=str(obj.get("reader", "")),
                event=str(obj.get("event", "apdu")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ParseError(
                f"trace line {line_number} is not a trace record: {error}",
                data=line[:200],
                offset=line_number,
            ) from error


class Tracer:
    """Writes trace records to a file (or any text stream), thread-safe."""

    def __init__(self, stream: IO[str], *, owns_stream: bool = False) -> None:
        self._stream = stream
        self._owns = owns_stream
        self._lock = threading.Lock()

    @classmethod
    def to_path(cls, path: str | Path) -> Tracer:
        """A tracer writing ``path`` afresh (created 0600: traces show card data).

        An existing file is truncated, as ``--trace FILE`` says "write": a
        trace holds one run, so that it can be replayed.
        """
        p = Path(path)
        try:
            p.touch(mode=0o600, exist_ok=True)
            return cls(p.open("w", encoding="utf-8"), owns_stream=True)
        except OSError as error:
            raise UsageError(f"cannot write trace file {p}: {error.strerror or error}") from error

    def record(self, command: bytes, response: bytes, seconds: float, reader: str = "") -> None:
        """Write one exchange; the command's secret data is masked here."""
        rec = TraceRecord(
            command=mask_command(command),
            response=response.hex().upper(),
            seconds=seconds,
            time=time.time(),
            reader=reader,
        )
        self.event(rec)

    def connected(self, atr: bytes, reader: str = "") -> None:
        """Write a ``connect`` record: the card's ATR (in ``response``) at power-up."""
        self.event(
            TraceRecord(
                command="",
                response=atr.hex().upper(),
                seconds=0.0,
                time=time.time(),
                reader=reader,
                event="connect",
            )
        )

    def event(self, rec: TraceRecord) -> None:
        """Write one record (APDU, or a connect/reset/remove event)."""
        with self._lock:
            self._stream.write(rec.to_json() + "\n")
            self._stream.flush()

    def close(self) -> None:
        """Close the file if this tracer opened it."""
        if self._owns:
            self._stream.close()
