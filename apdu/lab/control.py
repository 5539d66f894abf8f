"""The lab supervisor's control socket: one JSON request line, one JSON reply line.

Requests are ``{"op": ..., ...}`` with ``op`` one of :data:`OPERATIONS`; replies
are ``{"ok": true, ...}`` or ``{"ok": false, "error": "...", "kind": "...",
"slot": N}``. No secret ever crosses this socket: profiles travel as files.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from apdu.lab.errors import LabError, LabNotRunningError, SlotError

#: status; remove {slot}; insert {slot, profile_file?}; restart_pcscd; shutdown.
OPERATIONS = ("status", "remove", "insert", "restart_pcscd", "shutdown", "latency")
#: The longest request or reply line accepted.
MAX_LINE = 1 << 20


def read_line(conn: socket.socket) -> bytes:
    """Read one newline-terminated line (without the newline)."""
    chunks = bytearray()
    while not chunks.endswith(b"\n"):
        data = conn.recv(65536)
        if not data:
            break
        chunks += data
        if len(chunks) > MAX_LINE:
            raise LabError("control message too long")
    return bytes(chunks).rstrip(b"\n")


def send_message(conn: socket.socket, message: dict[str, Any]) -> None:
    """Send one JSON message as a line."""
    conn.sendall(json.dumps(message).encode("utf-8") + b"\n")


def request(
    control_socket: Path, op: str, *, timeout: float = 30.0, **arguments: Any
) -> dict[str, Any]:
    """Send one request to the supervisor and return its successful reply.

    Raises :class:`LabNotRunningError` when nobody answers on the socket,
    :class:`SlotError` / :class:`LabError` for a refused request.
    """
    if op not in OPERATIONS:
        raise LabError(f"unknown lab operation {op!r}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(str(control_socket))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise LabNotRunningError(
                f"no lab answers on {control_socket}: {exc.strerror}",
                labdir=str(control_socket.parent),
            ) from None
        try:
            send_message(conn, {"op": op, **arguments})
            line = read_line(conn)
        except TimeoutError:
            raise LabError(
                f"the lab did not answer {op!r} within {timeout:g} s",
                labdir=str(control_socket.parent),
            ) from None
        except OSError as exc:
            raise LabError(
                f"lost the lab's control socket during {op!r}: {exc}",
                labdir=str(control_socket.parent),
            ) from None
    if not line:
        raise LabError(
            f"the lab closed the control socket without answering {op!r}",
            labdir=str(control_socket.parent),
        )
    try:
        reply = json.loads(line)
    except json.JSONDecodeError:
        raise LabError(
            f"the lab answered {op!r} with something that is not JSON",
            labdir=str(control_socket.parent),
        ) from None
    if not isinstance(reply, dict):
        raise LabError(f"the lab answered {op!r} with {type(reply).__name__}, not an object")
    if not reply.get("ok"):
        message = str(reply.get("error") or f"the lab refused {op!r}")
        if reply.get("kind") == "slot" and isinstance(reply.get("slot"), int):
            raise SlotError(message, slot=reply["slot"], labdir=str(control_socket.parent))
        raise LabError(message, labdir=str(control_socket.parent))
    return reply
