"""lab.json: what a running lab tells its clients (pids, sockets, slots; no secrets).

The supervisor writes it (atomically) whenever something changes; clients
only read it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from apdu.errors import ParseError

STATE_FORMAT = 1

Phase = Literal["starting", "ready", "failed", "stopping"]
SlotState = Literal["present", "removed", "empty"]


@dataclass(frozen=True)
class SlotInfo:
    """One slot of the lab and the card in it.

    ``state`` is "present" (card in the reader), "removed" (the slot's card
    was pulled and can be re-inserted) or "empty" (no card yet). The card
    fields describe the present or removed card, and are None when empty.
    """

    slot: int
    reader: str
    port: int
    state: SlotState
    profile: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    form_factor: str | None = None

    @property
    def present(self) -> bool:
        """Whether a card is in the reader."""
        return self.state == "present"

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready data, with ``present`` spelled out for scripts."""
        data = asdict(self)
        data["present"] = self.present
        return data

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> SlotInfo:
        """The inverse of :meth:`to_json_dict`."""
        state = data["state"]
        if state not in ("present", "removed", "empty"):
            raise ParseError(f"slot state {state!r} is not present/removed/empty")
        return cls(
            slot=int(data["slot"]),
            reader=str(data["reader"]),
            port=int(data["port"]),
            state=state,
            profile=data.get("profile"),
            iccid=data.get("iccid"),
            imsi=data.get("imsi"),
            form_factor=data.get("form_factor"),
        )


@dataclass(frozen=True)
class LabState:
    """The content of lab.json."""

    labdir: str
    phase: Phase
    supervisor_pid: int
    pcscd_pid: int | None
    pcsc_socket: str
    control_socket: str
    base_port: int
    slots: tuple[SlotInfo, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "format": STATE_FORMAT,
            "labdir": self.labdir,
            "phase": self.phase,
            "supervisor_pid": self.supervisor_pid,
            "pcscd_pid": self.pcscd_pid,
            "pcsc_socket": self.pcsc_socket,
            "control_socket": self.control_socket,
            "base_port": self.base_port,
            "slots": [slot.to_json_dict() for slot in self.slots],
            "error": self.error,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json_dict(cls, data: Any) -> LabState:
        """Parse lab.json data; ParseError when it is not a lab state."""
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise ParseError("not a lab state (format 1)")
        try:
            phase = data["phase"]
            if phase not in ("starting", "ready", "failed", "stopping"):
                raise ParseError(f"lab phase {phase!r} is unknown")
            pcscd_pid = data.get("pcscd_pid")
            return cls(
                labdir=str(data["labdir"]),
                phase=phase,
                supervisor_pid=int(data["supervisor_pid"]),
                pcscd_pid=None if pcscd_pid is None else int(pcscd_pid),
                pcsc_socket=str(data["pcsc_socket"]),
                control_socket=str(data["control_socket"]),
                base_port=int(data["base_port"]),
                slots=tuple(SlotInfo.from_json_dict(s) for s in data.get("slots", [])),
                error=data.get("error"),
                notes=tuple(str(n) for n in data.get("notes", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError(f"lab state is malformed: {exc!r}") from None


def read_state(path: Path) -> LabState | None:
    """The lab state in ``path``; None when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{path} is not JSON: {exc.msg}", offset=exc.pos) from None
    return LabState.from_json_dict(data)


def write_json_atomically(path: Path, data: Any, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` as JSON so that readers never see half a file."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class LabConfig:
    """config.json: what the launcher asks the supervisor to start.

    ``cards`` lists the slots that start with a card (its profile is in
    ``cards/<slot>.profile.json``); ``outer_mount_namespace`` identifies the
    launcher's mount namespace, so that the supervisor can refuse to run in it.
    """

    slots: int
    base_port: int
    cards: tuple[int, ...]
    outer_mount_namespace: str
    ready_timeout: float
    notes: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "format": STATE_FORMAT,
            "slots": self.slots,
            "base_port": self.base_port,
            "cards": list(self.cards),
            "outer_mount_namespace": self.outer_mount_namespace,
            "ready_timeout": self.ready_timeout,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json_dict(cls, data: Any) -> LabConfig:
        """Parse config.json data; ParseError when malformed."""
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise ParseError("not a lab configuration (format 1)")
        try:
            return cls(
                slots=int(data["slots"]),
                base_port=int(data["base_port"]),
                cards=tuple(int(s) for s in data["cards"]),
                outer_mount_namespace=str(data["outer_mount_namespace"]),
                ready_timeout=float(data["ready_timeout"]),
                notes=tuple(str(n) for n in data.get("notes", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError(f"lab configuration is malformed: {exc!r}") from None


def read_config(path: Path) -> LabConfig:
    """The lab configuration in ``path``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ParseError(f"cannot read lab configuration {path}: {exc}") from None
    return LabConfig.from_json_dict(data)
