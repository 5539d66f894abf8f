"""AT traffic traces as JSON lines, secrets masked before they are written.

One record per command (the command as safe to show, the answer lines unless
the answer may hold a secret, the final result, the time it took) and one per
unsolicited line or burst of garbage, so a trace can be shared with a vendor
and replayed in a test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from modem.errors import TraceFileError


class AtTracer:
    """Writes AT trace records to a text stream, thread-safe."""

    def __init__(self, stream: IO[str], *, owns_stream: bool = False) -> None:
        self._stream = stream
        self._owns = owns_stream
        self._lock = threading.Lock()

    @classmethod
    def to_path(cls, path: str | Path) -> AtTracer:
        """A tracer appending to ``path`` (created 0600: traces show SIM data).

        Raises :class:`TraceFileError` (a usage error) when the file cannot be
        opened; callers open the tracer before the port, so nothing was sent.
        """
        target = Path(path)
        try:
            target.touch(mode=0o600, exist_ok=True)
            stream = target.open("a", encoding="utf-8")
        except OSError as error:
            raise TraceFileError(str(path), error.strerror or str(error)) from error
        return cls(stream, owns_stream=True)

    def _write(self, record: dict[str, object]) -> None:
        record["time"] = round(time.time(), 6)
        with self._lock:
            self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._stream.flush()

    def command(
        self,
        port: str,
        command: str,
        lines: Sequence[str] | None,
        final: str | None,
        seconds: float,
    ) -> None:
        """One command and its answer; ``lines=None`` records that they were masked."""
        self._write(
            {
                "event": "at",
                "port": port,
                "command": command,
                "lines": "masked" if lines is None else list(lines),
                "final": final,
                "seconds": round(seconds, 6),
            }
        )

    def unsolicited(self, port: str, line: str) -> None:
        """One unsolicited line."""
        self._write({"event": "urc", "port": port, "line": line})

    def garbage(self, port: str, data: bytes) -> None:
        """Bytes that were not AT text."""
        self._write({"event": "garbage", "port": port, "hex": data.hex()})

    def close(self) -> None:
        """Close the file if this tracer opened it."""
        if self._owns:
            self._stream.close()
