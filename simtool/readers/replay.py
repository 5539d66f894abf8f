"""``replay:TRACE.jsonl``: the answers of a ``--trace`` file, for the same commands.

The command run against a replay must send exactly the APDUs it sent when
the trace was recorded (PINs are masked in a trace and match any PIN of the
same length); the first one that departs from the recording fails with a
:class:`~apdu.transport.replay.ReplayMismatchError` naming that APDU, what
was sent and what the trace holds. The ATR is the recorded one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apdu.transport.base import DEFAULT_TIMEOUT
from simtool.readers.base import OpenOptions, ReaderBackend, ReaderUrl

if TYPE_CHECKING:
    from apdu.transport.base import CardTransport
    from apdu.transport.trace import Tracer


class ReplayBackend(ReaderBackend):
    """``replay:FILE``: a recorded trace answers in place of a card."""

    scheme = "replay"
    summary = "the answers recorded in a --trace file (commands must match it)"
    target_help = "TRACE.jsonl"

    def open(self, url: ReaderUrl, options: OpenOptions, tracer: Tracer | None) -> CardTransport:
        from apdu.transport.replay import ReplayTransport

        return ReplayTransport.from_file(
            url.target,
            timeout=DEFAULT_TIMEOUT if options.timeout is None else options.timeout,
            tracer=tracer,
            name=str(url),
        )
