"""Misbehaviour the simulated modem can be asked for.

A fault list is comma-separated names, some with a ``:value``::

    echo,urc,cmee-text,slow:0.5,noanswer:+QICSGP=,mute:+CGATT,garbage:3,reboot,cfun-apply,
    nochain,spaces,cme-odd:+CIMI,refuse:+CRSM|+QCCID,net-auth:pap

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
  after a CFUN cycle;
- ``nochain``: a line with several commands (``AT+CGMI;+CGMM``) is refused
  with ``ERROR``, as a few modems do;
- ``spaces``: a blank after each comma of an answer (``+CGDCONT: 1, "IP",
  "ijmio.jp"``), as many modems answer;
- ``cme-odd[:cmd]``: every command starting ``cmd`` (default ``+CIMI``)
  fails with ``+CME ERROR: ²`` (a superscript digit);
- ``refuse[:cmd|cmd...]``: every command starting with one of the ``cmd``
  (default ``+CRSM``) fails as unsupported (``+CME ERROR: 4``);
- ``net-auth:pap|chap``: the network accepts only that authentication (by
  default PAP and CHAP both).
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
    "nochain",
    "spaces",
    "cme-odd",
    "refuse",
    "net-auth",
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
    "nochain",
    "spaces",
    "cme-odd[:cmd]",
    "refuse[:cmd|cmd]",
    "net-auth:pap|chap",
    "reg-denied[:cause]",
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
    nochain: bool = False
    spaces: bool = False
    cme_odd: str | None = None
    refuse: tuple[str, ...] = ()
    net_auth: str | None = None
    #: The network denies registration with this EMM cause (TS 24.301 9.9.3.9).
    reg_denied: int | None = None

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
            ("nochain", self.nochain),
            ("spaces", self.spaces),
            ("cme-odd", self.cme_odd is not None),
            ("refuse", bool(self.refuse)),
            ("net-auth", self.net_auth is not None),
            ("reg-denied", self.reg_denied is not None),
        ]
        return tuple(name for name, on in active if on)


# Marker meaning "the dialect's credential write command".
DEFAULT_TARGET = "<auth>"


def _command(value: str) -> str:
    """A fault's command target in upper case, with its ``AT``."""
    text = value.strip().upper()
    return text if text.startswith("AT") else "AT" + text


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
            elif name == "nochain":
                faults = replace(faults, nochain=True)
            elif name == "spaces":
                faults = replace(faults, spaces=True)
            elif name == "cme-odd":
                faults = replace(faults, cme_odd=_command(value or "+CIMI"))
            elif name == "refuse":
                targets = tuple(_command(v) for v in (value or "+CRSM").split("|") if v.strip())
                faults = replace(faults, refuse=faults.refuse + targets)
            elif name == "net-auth":
                if value.lower() not in ("pap", "chap"):
                    raise UsageError(f"simulator fault {item!r}: net-auth takes pap or chap")
                faults = replace(faults, net_auth=value.lower())
            elif name == "reg-denied":
                faults = replace(faults, reg_denied=int(value) if value else 7)
            else:
                raise UsageError(
                    f"unknown simulator fault {name!r}; known: {', '.join(FAULT_NAMES)}"
                )
        except ValueError:
            raise UsageError(f"simulator fault {item!r}: bad value {value!r}") from None
    if faults.slow < 0 or faults.garbage_every < 0:
        raise UsageError("simulator fault values must not be negative")
    return faults
