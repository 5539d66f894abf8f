"""Look at a lab from a separate process (libpcsclite binds one socket per process).

``python -m tests.lab.lab_probe readers`` prints the readers of the pcscd named
by ``PCSCLITE_CSOCK_NAME`` as JSON; ``... apdu READER HEX [HEX ...]`` sends the
APDUs over one connection and prints the responses in hex.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from smartcard import scard

REPO = Path(__file__).resolve().parents[2]


def _readers() -> list[dict[str, Any]]:
    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    hresult, names = scard.SCardListReaders(context, [])
    if hresult != scard.SCARD_S_SUCCESS:
        return []
    _, states = scard.SCardGetStatusChange(
        context, 0, [(name, scard.SCARD_STATE_UNAWARE) for name in names]
    )
    scard.SCardReleaseContext(context)
    return [
        {
            "reader": name,
            "present": bool(event & scard.SCARD_STATE_PRESENT),
            "atr": bytes(atr).hex().upper(),
        }
        for name, event, atr in states
    ]


def _apdus(reader: str, commands: list[str]) -> list[str]:
    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    hresult, card, protocol = scard.SCardConnect(
        context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
    )
    if hresult != scard.SCARD_S_SUCCESS:
        raise SystemExit(f"connect failed: 0x{hresult & 0xFFFFFFFF:08X}")
    out = []
    for command in commands:
        hresult, response = scard.SCardTransmit(card, protocol, list(bytes.fromhex(command)))
        out.append(
            bytes(response).hex().upper() if hresult == 0 else f"error 0x{hresult & 0xFFFFFFFF:08X}"
        )
    scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
    scard.SCardReleaseContext(context)
    return out


def probe(pcsc_environment: dict[str, str], *args: str) -> Any:
    """Run this module in a subprocess against the lab ``pcsc_environment`` names."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.lab.lab_probe", *args],
        env={**os.environ, **pcsc_environment},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"probe {args} failed: {proc.stderr}")
    return json.loads(proc.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "readers":
        print(json.dumps(_readers()))
    else:
        print(json.dumps(_apdus(sys.argv[2], sys.argv[3:])))
