"""Misbehaviour the simulated modem can be asked for.

A fault list is comma-separated names, some with a ``:value``::

    echo,urc,cmee-text,slow:0.5,noanswer:+QICSGP=,mute:+CGATT,garbage:3,reboot,cfun-apply

- ``echo``: echo stays on whatever ``ATE0`` says (as after a restart);
- ``urc``: unsolicited lines before, inside and after answers, in turn;
- ``cmee-text``: ``+CME ERROR: <text>`` even when numbers were asked for;
- ``slow[:s]``: every answer ``s`` seconds (default 0.5) later than usual;
- ``noanswer[:cmd]``: the first command starting ``cmd`` (default: the
  dialect's credential write) is swallowed, never answered;
- ``mute[:cmd]``: every such command is swallowed (a modem wedged on it);
- ``garbage[:n]``: a line of binary noise before every ``n``-th answer
  (default 3);
- ``reboot[:cmd]``: the modem restarts when the first command starting
  ``cmd`` arrives (default: the credential write), losing that command;
- ``cfun-apply``: written contexts and credentials only show (and take effect)
  after a CFUN cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from apdu.errors import UsageError

FAULT_NAMES = (
    "echo",
    "urc",
    "cmee-text",
    "slow",
    "noanswer",
    "mute",
    "garbage",
    "reboot",
    "cfun-apply",
)

# How each fault is written, for help texts (one entry per name above, same order).
FAULT_SYNTAX = (
    "echo",
    "urc",
    "cmee-text",
    "slow[:s]",
    "noanswer[:cmd]",
    "mute[:cmd]",
    "garbage[:n]",
    "reboot[:cmd]",
    "cfun-apply",
)


@dataclass(frozen=True, slots=True)
class Faults:
    """The parsed fault list (all off by default)."""

    echo: bool = False
    urc: bool = False
    cmee_text: bool = False
    slow: float = 0.0
    noanswer: str | None = None
    mute: str | None = None
    garbage_every: int = 0
    reboot: str | None = None
    cfun_apply: bool = False

    @property
    def any(self) -> bool:
        """True when at least one fault is on."""
        return self != Faults()

    def names(self) -> tuple[str, ...]:
        """The active fault names (for logs)."""
        active = [
            ("echo", self.echo),
            ("urc", self.urc),
            ("cmee-text", self.cmee_text),
            ("slow", self.slow > 0),
            ("noanswer", self.noanswer is not None),
            ("mute", self.mute is not None),
            ("garbage", self.garbage_every > 0),
            ("reboot", self.reboot is not None),
            ("cfun-apply", self.cfun_apply),
        ]
        return tuple(name for name, on in active if on)


# Marker meaning "the dialect's credential write command".
DEFAULT_TARGET = "<auth>"


def parse_faults(text: str | None) -> Faults:
    """Parse a fault list; unknown names are a usage error."""
    faults = Faults()
    if not text:
        return faults
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, value = item.partition(":")
        name = name.strip().lower()
        value = value.strip()
        try:
            if name == "echo":
                faults = replace(faults, echo=True)
            elif name == "urc":
                faults = replace(faults, urc=True)
            elif name == "cmee-text":
                faults = replace(faults, cmee_text=True)
            elif name == "slow":
                faults = replace(faults, slow=float(value) if value else 0.5)
            elif name == "noanswer":
                faults = replace(faults, noanswer=value.upper() or DEFAULT_TARGET)
            elif name == "mute":
                faults = replace(faults, mute=value.upper() or DEFAULT_TARGET)
            elif name == "garbage":
                faults = replace(faults, garbage_every=int(value) if value else 3)
            elif name == "reboot":
                faults = replace(faults, reboot=value.upper() or DEFAULT_TARGET)
            elif name == "cfun-apply":
                faults = replace(faults, cfun_apply=True)
            else:
                raise UsageError(
                    f"unknown simulator fault {name!r}; known: {', '.join(FAULT_NAMES)}"
                )
        except ValueError:
            raise UsageError(f"simulator fault {item!r}: bad value {value!r}") from None
    if faults.slow < 0 or faults.garbage_every < 0:
        raise UsageError("simulator fault values must not be negative")
    return faults
