"""The declarative table of modem dialects.

Real modems disagree on how credentials are written and read back, on the
ICCID and PIN-counter commands, and on what makes a new setting take effect.
Each :class:`Dialect` below is data only; :mod:`modem.modem` interprets it and
the simulator (:mod:`modem.simulator`) serves the same data, so a new vendor is
one entry here.

Facts used (public vendor manuals and field logs; no code or prose copied):

- 3GPP TS 27.007 clause 10.1.1 ``+CGDCONT=<cid>,<PDP_type>,<APN>``; clause
  10.1.31 ``+CGAUTH=<cid>,<auth_prot>,<userid>,<password>`` with auth_prot 0
  none, 1 PAP, 2 CHAP, and 3 meaning EAP in recent releases (so "PAP or CHAP"
  has no standard value); the read form ``+CGAUTH: <cid>,<auth_prot>[,<userid>,
  <password>]``. Field logs show both ``+CGAUTH: 5,1,"eesecure"`` (password
  left out, Sierra RC76) and ``+CGAUTH: 1,2,"sora","sora"``.
- 3GPP TS 27.007 clause 8.65 ``+CPINR=<sel_code>`` answers
  ``+CPINR: <code>,<retries>[,<default_retries>]``.
- Quectel TCP/IP AT manuals (EC2x/BG96/EC200U): ``AT+QICSGP=<contextID>,
  <context_type>,<APN>,<username>,<password>,<authentication>`` with context type
  1 IPv4, 2 IPv6, 3 IPv4v6 and authentication 0 none, 1 PAP, 2 CHAP, 3 PAP or
  CHAP; read with ``AT+QICSGP=<contextID>`` answering ``+QICSGP: <context_type>,
  <APN>,<username>,<password>,<authentication>`` (the password is read back).
  ``AT+QPINC="SC"`` answers ``+QPINC: "SC",<pin_counter>,<puk_counter>``;
  ``AT+QCCID`` answers ``+QCCID: <iccid>``; the boot URC is ``RDY``.
  Community notes for Quectel modules apply a new ``+CGDCONT`` with
  ``AT+CFUN=0`` then ``AT+CFUN=1``.
- Sierra Wireless / Qualcomm: ``AT$QCPDPP=<cid>,<auth>,"<password>","<user>"``
  (password first); the read form lists ``$QCPDPP: <cid>,<auth>[,"<user>"]``
  without the password (field logs, e.g. ``$QCPDPP: 1,1,"...@bigpond.com"``,
  and ``$QCPDPP: 1,3,"user_id"`` where 3 is PAP-or-CHAP). ``AT!ICCID?`` answers
  ``ICCID: <iccid>`` and pads a 19-digit ICCID to 20 characters.
- SIMCom SIM7500/SIM7600: ``AT+CGAUTH=<cid>,<auth>,"<password>","<user>"``
  (password first, despite the standard name), ``AT+CICCID`` answering
  ``+ICCID: <iccid>``, ``AT+SPIC`` answering ``+SPIC: <pin1>,<puk1>,<pin2>,
  <puk2>``, boot URC ``RDY``.
- u-blox SARA-R4 AT manual (UBX-17003787): ``AT+UAUTHREQ=<cid>,<auth_type>,
  <username>,<password>``, auth_type 0 none, 1 PAP, 2 CHAP, 3 automatic;
  username at most 64 characters; the command fails while ``<cid>`` is active;
  u-blox has no ``+CGAUTH``. ``AT+UPINCNT`` answers ``+UPINCNT: <pin>,<pin2>,
  <puk>,<puk2>``; ``AT+CCID`` answers ``+CCID: <iccid>``.
- Telit (ofono and OpenWrt scripts for LE910/LN940): ``AT#PDPAUTH=<cid>,
  <auth_type>,"<user>","<password>"`` with 0 none, 1 PAP, 2 CHAP; ``AT#CCID``;
  ``AT#PCT`` answers ``#PCT: <n>``, the attempts left for the code the SIM is
  asking for now.
- Huawei (HiSilicon AT interface): ``AT^AUTHDATA=<cid>,<auth_type>,<PLMN>,
  <passwd>,<username>`` with 0 none, 1 PAP, 2 CHAP; read ``^AUTHDATA: <cid>,
  <auth_type>,<passwd>,<username>,<PLMN>``; ``AT^ICCID?`` answers
  ``^ICCID: <iccid>``; ``AT^CPIN?`` answers ``^CPIN: <code>,[<times>],
  <puk_times>,<pin_times>,<puk2_times>,<pin2_times>``.
- Fibocom L8xx (Intel XMM): ``AT+XGAUTH=<cid>,<auth>,"<name>","<pwd>"`` with
  0 none, 1 PAP, 2 CHAP, and ``<name>``/``<pwd>`` at most 50 characters (the
  limit documented for ``+XGAUTH`` in a Neoway manual, kept as the conservative
  bound); ``AT+XPINCNT`` answers ``+XPINCNT: <pin1>,<pin2>,<puk1>,<puk2>``.
- Apply: the LTE default bearer takes its APN at attach (3GPP TS 23.401 /
  24.301), so a changed context takes effect on the next attach: detach/attach
  (``+CGATT=0``/``+CGATT=1``) or a CFUN cycle.

Where a vendor documents no read form (``AT+UAUTHREQ?``, ``AT#PDPAUTH?``,
``AT+XGAUTH?``, SIMCom ``AT+CGAUTH?``), the entry assumes the 27.007 layout
without the password and says so in ``read_note``; a modem that answers the
read form with ``ERROR`` makes those fields "not readable", never a match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from modem.errors import UnknownDialectError


class Auth(StrEnum):
    """PDP authentication as the station names it."""

    NONE = "none"
    PAP = "pap"
    CHAP = "chap"
    PAP_OR_CHAP = "pap-or-chap"


ApplyMode = Literal["none", "cfun", "detach-attach"]

# Fields a credential command can carry, by name. Strings are quoted on the
# wire; the others are integers.
STRING_FIELDS = frozenset({"apn", "user", "password", "plmn"})

# TS 23.003 clause 9.1: an APN is at most 100 octets.
APN_MAX = 100

# PDP types (TS 27.007 +CGDCONT) and Quectel's <context_type> numbers.
PDP_TYPES = ("IP", "IPV6", "IPV4V6")
QUECTEL_CONTEXT_TYPES: Mapping[str, int] = MappingProxyType({"IP": 1, "IPV6": 2, "IPV4V6": 3})


@dataclass(frozen=True, slots=True)
class AuthSpec:
    """How one dialect writes and reads back PDP credentials.

    ``write_order``/``read_order`` list the fields of the set command (after
    the ``=``) and of one read-back line (after the prefix). A ``{cid}`` in
    ``read_command`` makes it a per-context query; otherwise the answer lists
    every context and ``read_order`` starts with ``cid``. ``codes`` maps each
    authentication the dialect can carry to its number; ``PAP_OR_CHAP`` missing
    means it is sent as CHAP (no "either" value exists there).
    """

    command: str
    write_order: tuple[str, ...]
    read_command: str
    read_prefix: str
    read_order: tuple[str, ...]
    codes: Mapping[Auth, int]
    max_user: int
    max_password: int
    read_note: str = ""

    @property
    def carries_apn(self) -> bool:
        """True when the credential command also sets the APN (Quectel)."""
        return "apn" in self.write_order

    @property
    def password_readable(self) -> bool:
        """True when the read form is documented to include the password."""
        return "password" in self.read_order

    def code_for(self, auth: Auth) -> int:
        """The number to send for ``auth`` (PAP-or-CHAP falls back to CHAP)."""
        if auth in self.codes:
            return self.codes[auth]
        if auth is Auth.PAP_OR_CHAP:
            return self.codes[Auth.CHAP]
        raise KeyError(auth)

    def auth_for(self, code: int) -> Auth | None:
        """The authentication a read-back number means, ``None`` if unknown."""
        for auth, number in self.codes.items():
            if number == code:
                return auth
        return None


@dataclass(frozen=True, slots=True)
class IccidSpec:
    """The vendor command that reads the SIM's ICCID and its answer prefix."""

    command: str
    prefix: str


RetryKind = Literal["cpinr", "qpinc", "spic", "upincnt", "pct", "hcpin", "xpincnt"]


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """Vendor command(s) reading the PIN/PUK counters without spending any."""

    commands: tuple[str, ...]
    prefix: str
    kind: RetryKind


@dataclass(frozen=True, slots=True)
class Dialect:
    """Everything that differs between modem families, as data."""

    name: str
    vendor: str
    match: tuple[str, ...]
    auth: AuthSpec
    iccid: IccidSpec | None
    retries: RetrySpec | None
    apply: ApplyMode
    deactivate_before_auth: bool = False
    reboot_markers: tuple[str, ...] = ()
    urc_prefixes: tuple[str, ...] = ()
    notes: str = ""
    apn_max: int = APN_MAX

    def describe(self) -> str:
        """One line for listings."""
        return f"{self.name}: {self.vendor} ({self.auth.command}, apply: {self.apply})"


_STD_CODES = MappingProxyType({Auth.NONE: 0, Auth.PAP: 1, Auth.CHAP: 2})
_WITH_EITHER = MappingProxyType({Auth.NONE: 0, Auth.PAP: 1, Auth.CHAP: 2, Auth.PAP_OR_CHAP: 3})

_ASSUMED_READ = (
    "read form not documented in the manual consulted; assumed to follow "
    "the 27.007 +CGAUTH layout without the password"
)

DIALECTS: Mapping[str, Dialect] = MappingProxyType(
    {
        d.name: d
        for d in (
            Dialect(
                name="generic",
                vendor="3GPP TS 27.007",
                match=(),
                auth=AuthSpec(
                    "+CGAUTH",
                    ("cid", "auth", "user", "password"),
                    "AT+CGAUTH?",
                    "+CGAUTH:",
                    ("cid", "auth", "user", "password"),
                    _STD_CODES,
                    64,
                    64,
                    "27.007 read form; many modems leave the password out",
                ),
                iccid=None,
                retries=RetrySpec(('AT+CPINR="SIM PIN"', 'AT+CPINR="SIM PUK"'), "+CPINR:", "cpinr"),
                apply="detach-attach",
            ),
            Dialect(
                name="quectel",
                vendor="Quectel",
                match=("quectel",),
                auth=AuthSpec(
                    "+QICSGP",
                    ("cid", "ctx_type", "apn", "user", "password", "auth"),
                    "AT+QICSGP={cid}",
                    "+QICSGP:",
                    ("ctx_type", "apn", "user", "password", "auth"),
                    _WITH_EITHER,
                    64,
                    64,
                ),
                iccid=IccidSpec("AT+QCCID", "+QCCID:"),
                retries=RetrySpec(('AT+QPINC="SC"',), "+QPINC:", "qpinc"),
                apply="cfun",
                reboot_markers=("RDY",),
                urc_prefixes=("+QIND:", "+QUSIM:", "+QSIMSTAT:", "POWERED DOWN", "+QNETDEVSTATUS:"),
            ),
            Dialect(
                name="sierra",
                vendor="Sierra Wireless",
                match=("sierra",),
                auth=AuthSpec(
                    "$QCPDPP",
                    ("cid", "auth", "password", "user"),
                    "AT$QCPDPP?",
                    "$QCPDPP:",
                    ("cid", "auth", "user"),
                    _WITH_EITHER,
                    64,
                    64,
                    "the read form never shows the password",
                ),
                iccid=IccidSpec("AT!ICCID?", "ICCID:"),
                retries=None,
                apply="cfun",
            ),
            Dialect(
                name="simcom",
                vendor="SIMCom",
                match=("simcom",),
                auth=AuthSpec(
                    "+CGAUTH",
                    ("cid", "auth", "password", "user"),
                    "AT+CGAUTH?",
                    "+CGAUTH:",
                    ("cid", "auth", "user"),
                    _STD_CODES,
                    64,
                    64,
                    _ASSUMED_READ,
                ),
                iccid=IccidSpec("AT+CICCID", "+ICCID:"),
                retries=RetrySpec(("AT+SPIC",), "+SPIC:", "spic"),
                apply="detach-attach",
                reboot_markers=("RDY",),
                urc_prefixes=("SMS DONE", "PB DONE", "+CGEV:", "+SIMCARD:"),
            ),
            Dialect(
                name="ublox",
                vendor="u-blox",
                match=("u-blox", "ublox"),
                auth=AuthSpec(
                    "+UAUTHREQ",
                    ("cid", "auth", "user", "password"),
                    "AT+UAUTHREQ?",
                    "+UAUTHREQ:",
                    ("cid", "auth", "user"),
                    _WITH_EITHER,
                    64,
                    64,
                    _ASSUMED_READ,
                ),
                iccid=IccidSpec("AT+CCID", "+CCID:"),
                retries=RetrySpec(("AT+UPINCNT",), "+UPINCNT:", "upincnt"),
                apply="cfun",
                deactivate_before_auth=True,
                urc_prefixes=("+UUPSDA:", "+UUPSDD:", "+UUSOCL:", "+UUSIMSTAT:"),
            ),
            Dialect(
                name="telit",
                vendor="Telit",
                match=("telit",),
                auth=AuthSpec(
                    "#PDPAUTH",
                    ("cid", "auth", "user", "password"),
                    "AT#PDPAUTH?",
                    "#PDPAUTH:",
                    ("cid", "auth", "user"),
                    _STD_CODES,
                    64,
                    64,
                    _ASSUMED_READ,
                ),
                iccid=IccidSpec("AT#CCID", "#CCID:"),
                retries=RetrySpec(("AT#PCT",), "#PCT:", "pct"),
                apply="detach-attach",
                urc_prefixes=("#QSS:", "#SYSSTART"),
            ),
            Dialect(
                name="huawei",
                vendor="Huawei",
                match=("huawei",),
                auth=AuthSpec(
                    "^AUTHDATA",
                    ("cid", "auth", "plmn", "password", "user"),
                    "AT^AUTHDATA?",
                    "^AUTHDATA:",
                    ("cid", "auth", "password", "user", "plmn"),
                    _STD_CODES,
                    64,
                    64,
                ),
                iccid=IccidSpec("AT^ICCID?", "^ICCID:"),
                retries=RetrySpec(("AT^CPIN?",), "^CPIN:", "hcpin"),
                apply="detach-attach",
                urc_prefixes=(
                    "^MODE:",
                    "^RSSI:",
                    "^HCSQ:",
                    "^SIMST:",
                    "^SRVST:",
                    "^BOOT:",
                    "^DSFLOWRPT:",
                    "^SYSSTART",
                ),
            ),
            Dialect(
                name="fibocom",
                vendor="Fibocom",
                match=("fibocom",),
                auth=AuthSpec(
                    "+XGAUTH",
                    ("cid", "auth", "user", "password"),
                    "AT+XGAUTH?",
                    "+XGAUTH:",
                    ("cid", "auth", "user"),
                    _STD_CODES,
                    50,
                    50,
                    _ASSUMED_READ,
                ),
                iccid=IccidSpec("AT+CCID", "+CCID:"),
                retries=RetrySpec(("AT+XPINCNT",), "+XPINCNT:", "xpincnt"),
                apply="cfun",
                urc_prefixes=("+XREG:", "+XNITZINFO:"),
            ),
        )
    }
)

DIALECT_NAMES: tuple[str, ...] = tuple(DIALECTS)

# URC prefixes every dialect may emit (TS 27.007 unsolicited result codes and
# the common V.250 ones), checked after the command's own answer prefix.
COMMON_URC_PREFIXES: tuple[str, ...] = (
    "RING",
    "+CRING:",
    "+CLIP:",
    "+CMTI:",
    "+CMT:",
    "+CDS:",
    "+CBM:",
    "+CDSI:",
    "+CREG:",
    "+CGREG:",
    "+CEREG:",
    "+C5GREG:",
    "+CGEV:",
    "+CPIN:",
    "+CFUN:",
    "+CTZV:",
    "+CTZE:",
    "+CTZEU:",
    "+CIEV:",
    "+CUSD:",
    "+CUSATP:",
    "+STIN:",
    "+PACSP",
    "RDY",
    "SMS DONE",
    "PB DONE",
    "+PBREADY",
)

# Every known unsolicited prefix: the channel starts with these, before the
# dialect is known (a Huawei's ^RSSI must not end up in its +CGMI answer).
ALL_URC_PREFIXES: tuple[str, ...] = COMMON_URC_PREFIXES + tuple(
    dict.fromkeys(prefix for dialect in DIALECTS.values() for prefix in dialect.urc_prefixes)
)

REBOOT_MARKERS_ALL: frozenset[str] = frozenset(
    marker for dialect in DIALECTS.values() for marker in dialect.reboot_markers
)


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name`` (case-insensitive)."""
    try:
        return DIALECTS[name.strip().lower()]
    except KeyError:
        raise UnknownDialectError(name, DIALECT_NAMES) from None


def detect_dialect(manufacturer: str, model: str = "") -> Dialect:
    """Pick the dialect from the ``+CGMI``/``+CGMM`` answers; generic if none matches.

    The manufacturer decides first: a model string may name a chipset vendor
    (a SIMCom module on a Qualcomm base still speaks SIMCom's commands).
    """
    for text in (manufacturer, model):
        lowered = text.lower()
        for dialect in DIALECTS.values():
            if any(word in lowered for word in dialect.match):
                return dialect
    return DIALECTS["generic"]


@dataclass(frozen=True, slots=True)
class DialectSummary:
    """What ``simtool modem dialects`` would show: the table in words."""

    name: str
    vendor: str
    auth_command: str
    write_order: tuple[str, ...]
    read_command: str
    password_readable: bool
    pap_or_chap: str
    iccid_command: str
    retry_command: str
    apply: ApplyMode
    notes: tuple[str, ...] = field(default_factory=tuple)


def summarize(dialect: Dialect) -> DialectSummary:
    """The dialect's rules as plain values (for JSON and tables)."""
    either = "sent as its own value" if Auth.PAP_OR_CHAP in dialect.auth.codes else "sent as CHAP"
    notes = tuple(n for n in (dialect.auth.read_note, dialect.notes) if n)
    return DialectSummary(
        name=dialect.name,
        vendor=dialect.vendor,
        auth_command=dialect.auth.command,
        write_order=dialect.auth.write_order,
        read_command=dialect.auth.read_command,
        password_readable=dialect.auth.password_readable,
        pap_or_chap=either,
        iccid_command=dialect.iccid.command if dialect.iccid else "AT+CRSM (EF.ICCID)",
        retry_command=(
            ", ".join(dialect.retries.commands) if dialect.retries else "AT+CSIM empty VERIFY"
        ),
        apply=dialect.apply,
        notes=notes,
    )
