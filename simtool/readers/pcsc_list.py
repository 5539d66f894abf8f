"""``python -m simtool.readers.pcsc_list``: the readers of one PC/SC service, as JSON.

Run by :mod:`simtool.readers.pcsc` with ``PCSCLITE_CSOCK_NAME`` set to the
socket of a service its own process is not tied to (libpcsclite reads the
variable once per process). Prints ``{"readers": [...]}`` or ``{"error": ...,
"pcsc_code": ...}`` on stdout and exits 0 either way: the caller decides.
"""

from __future__ import annotations

import json
import sys

from apdu.errors import SimtoolError


def main() -> int:
    """List the readers of the service ``PCSCLITE_CSOCK_NAME`` names."""
    from apdu.transport.pcsc import reader_states

    try:
        states = reader_states()
    except SimtoolError as error:
        answer: dict[str, object] = {
            "error": str(error),
            "pcsc_code": getattr(error, "pcsc_code", None),
        }
    else:
        answer = {
            "readers": [
                {
                    "name": s.name,
                    "card_present": s.card_present,
                    "atr": s.atr.hex() if s.atr else None,
                    "in_use": s.in_use,
                }
                for s in states
            ]
        }
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
