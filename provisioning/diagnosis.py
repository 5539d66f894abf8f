"""A technician's verdict on a returned card: evidence first, then one decision.

:func:`diagnose_card` is the whole job for one card in a reader (the CLI's
``simtool diagnose`` and the bench's ``--mode diagnose`` call it). It works in
three steps kept apart so the decision can be tested as pure logic:

1. **Evidence from the card** (:func:`read_card_evidence`): the ATR and its
   findings, whether the card answers within the per-APDU deadline, the ICCID,
   the mandatory files of the USIM (or of DF.GSM on a classic SIM), IMSI and
   MSISDN, and the four counters, read with empty VERIFY/UNBLOCK (or from
   DF.GSM's SELECT response), which spend nothing. Nothing is written.
2. **Evidence from the line database** (:func:`look_up_record`): is the card
   ours, its state, its line and the line's state, IMSI and MSISDN on record.
3. **The authentication test** (:func:`run_authentication_test`), when the
   database holds the card's Ki/OPc: AUTHENTICATE with a fresh random RAND and
   an AUTN built here (RUN GSM ALGORITHM on a classic SIM); RES/CK/IK (SRES/Kc)
   are compared with Milenage computed here. A sequence-number failure (AUTS)
   is verified with MAC-S, SQN_MS recovered with f5*, and the test retried
   once. The keys are opened in memory for this test only and never leave it.

:func:`decide` turns the evidence into a :class:`Verdict`, the recorded
:class:`Cause` and a list of :class:`Finding` (codes and data: the simtool
layer turns them into words). Every diagnosis is one audit event holding its
report id, verdict, cause and finding codes (never a secret), so that
``reissue --reason faulty --evidence REPORT_ID`` can name it.

PIN policy: no PUK is ever sent. AUTHENTICATE needs PIN1 when PIN1 is enabled;
the test then presents the PIN the station knows (0000 once the card was
provisioned, the vendor's PIN1 while in stock), and only on a full counter
(3 of 3), the rule the station uses for the default PIN. A correct PIN spends
nothing. ``present_pin=False`` never presents any PIN (the test is then
skipped on a card whose PIN1 is enabled).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import re
import secrets as stdlib_secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from apdu import files
from apdu.atr import parse_atr
from apdu.card import Card, PinStatus, read_uicc_pins
from apdu.command import CommandApdu, ResponseApdu
from apdu.errors import (
    CardError,
    DeadlineError,
    FileNotFoundOnCardError,
    ParseError,
    SecurityStatusError,
    StatusWordError,
)
from apdu.milenage import SQN_LENGTH, Milenage, c3
from apdu.pin import DEFAULT_PIN, FULL_PIN_RETRIES, PinAttemptError, PinPolicy
from apdu.status import (
    GSM_SW_ACCESS_CONDITION,
    GSM_SW_FILE_NOT_FOUND,
    NOT_A_UICC,
    SW_AUTH_MAC_FAILURE,
    SW_FILE_NOT_FOUND,
)
from apdu.transport.base import CardTransport
from provisioning.audit import Actor, append_event
from provisioning.database import Database
from provisioning.errors import NotFoundError, SecretsKeyError
from provisioning.identifiers import parse_iccid
from provisioning.keys import box_for
from provisioning.lifecycle import CardState, LineState
from provisioning.models import AuditEvent, Binding, Line, StockBatch
from provisioning.models import Card as CardRow
from provisioning.secrets import CardSecrets, Keyring

if TYPE_CHECKING:  # the modem layer is imported only when a modem is read
    from modem.modem import Modem

AUDIT_ACTION = "diagnose"
REPORT_ID_PREFIX = "DX"
_REPORT_ID_RE = re.compile(rf"{REPORT_ID_PREFIX}-[0-9]{{8}}-[0-9A-F]{{8}}")

Severity = Literal["ok", "info", "warning", "fault"]
Area = Literal["electrical", "identity", "counters", "files", "authentication", "modem"]
FileStatus = Literal["ok", "missing", "garbled", "unreadable", "protected"]

# AMF with the "separation bit" set, as an E-UTRAN network sends it (TS 33.401 §6.1.1).
_AMF = bytes.fromhex("8000")
# SQN = SEQ || IND with a 5-bit IND (TS 33.102 Annex C.3.2): a step of one SEQ.
_SEQ_STEP = 1 << 5
_SQN_LIMIT = 1 << (8 * SQN_LENGTH)
_TAG_SUCCESS = 0xDB
_TAG_SYNC_FAILURE = 0xDC
_COUNTERS = ("pin1", "pin2", "puk1", "puk2")
# "No such file" in the UICC (6A82) and the classic SIM (9404) dialects.
_SW_NO_FILE = (SW_FILE_NOT_FOUND, GSM_SW_FILE_NOT_FOUND)

# The files TS 31.102 §4.2 makes mandatory in ADF.USIM (EF.IMSI and EF.AD are
# read and decoded; the others must at least be present).
_USIM_MANDATORY = (
    files.EF_LI,
    files.EF_IMSI,
    files.EF_KEYS,
    files.EF_KEYSPS,
    files.EF_HPPLMN,
    files.EF_UST,
    files.EF_ACC,
    files.EF_FPLMN,
    files.EF_LOCI,
    files.EF_AD,
    files.EF_START_HFN,
    files.EF_THRESHOLD,
    files.EF_PSLOCI,
    files.EF_ECC,
    files.EF_NETPAR,
)
# TS 51.011 §10.3: the mandatory EFs of DF.GSM.
_GSM_MANDATORY = (
    files.EF_GSM_LP,
    files.EF_IMSI,
    files.EF_GSM_KC,
    files.EF_GSM_PLMNSEL,
    files.EF_GSM_HPLMN,
    files.EF_GSM_SST,
    files.EF_ACC,
    files.EF_FPLMN,
    files.EF_LOCI,
    files.EF_AD,
)


class Verdict(enum.StrEnum):
    """The technician's verdict (issue table): what is wrong, and so what happens next."""

    OK = "ok"
    RECOVERABLE = "recoverable"
    BLOCKED = "blocked"
    FAULTY = "faulty"
    NOT_OURS = "not-ours"


class Cause(enum.StrEnum):
    """Who caused it, recorded so that billing can apply the tariff (terms §14)."""

    NONE = "none"
    USE = "use"
    CARD = "card"
    NOT_APPLICABLE = "n/a"


class NextStep(enum.StrEnum):
    """What the technician does with the card."""

    LOOK_ELSEWHERE = "look-elsewhere"
    UNBLOCK_WITH_PUK = "unblock-with-puk"
    REISSUE_BLOCKED = "reissue-blocked-by-use"
    REISSUE_FAULTY = "reissue-faulty"
    RETURN_TO_SENDER = "return-to-sender"


VERDICT_TABLE: dict[Verdict, tuple[Cause, NextStep]] = {
    Verdict.OK: (Cause.NONE, NextStep.LOOK_ELSEWHERE),
    Verdict.RECOVERABLE: (Cause.USE, NextStep.UNBLOCK_WITH_PUK),
    Verdict.BLOCKED: (Cause.USE, NextStep.REISSUE_BLOCKED),
    Verdict.FAULTY: (Cause.CARD, NextStep.REISSUE_FAULTY),
    Verdict.NOT_OURS: (Cause.NOT_APPLICABLE, NextStep.RETURN_TO_SENDER),
}


@dataclass(frozen=True)
class Finding:
    """One observation: a stable ``code``, where it was made, how bad, and its evidence."""

    code: str
    area: Area
    severity: Severity
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Counter:
    """One PIN/PUK counter as read (``retries`` None: the card did not reveal it)."""

    retries: int | None
    enabled: bool | None
    blocked: bool
    verified: bool | None = None

    @classmethod
    def of(cls, status: PinStatus) -> Counter:
        """From the card layer's reading."""
        return cls(status.retries, status.enabled, status.blocked, status.verified)


@dataclass(frozen=True)
class FileCheck:
    """A mandatory (or compared) file: present and decoding, or what is wrong."""

    name: str
    status: FileStatus
    detail: str | None = None


@dataclass
class AuthResult:
    """The authentication test: how it went, never the values exchanged.

    ``outcome``: ``match``; ``mismatch`` (values differ: ``mismatched`` names
    them); ``mac-failure`` (the card rejected our AUTN: its key is not the
    record's); ``auts-invalid`` (a resynchronisation whose MAC-S does not
    verify with the record's key); ``resync-failed`` (still out of sequence
    after one resynchronisation); ``error`` (an unexpected status word);
    ``not-run`` (``reason`` says why).
    """

    outcome: Literal[
        "match", "mismatch", "mac-failure", "auts-invalid", "resync-failed", "error", "not-run"
    ]
    method: Literal["authenticate", "run-gsm-algorithm"] | None = None
    reason: str | None = None
    resynchronised: bool = False
    compared: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    sw: str | None = None
    pin1_presented: bool = False


@dataclass
class CardEvidence:
    """What the card itself showed (pure data, no secrets)."""

    atr: bytes | None = None
    atr_findings: list[tuple[str, str]] = field(default_factory=list)
    no_atr: str | None = None
    mute: bool = False
    stopped_at: str | None = None
    deadline: float | None = None
    card_type: Literal["uicc", "sim"] | None = None
    iccid: str | None = None
    iccid_problem: str | None = None
    files: list[FileCheck] = field(default_factory=list)
    imsi: str | None = None
    imsi_protected: bool = False
    msisdn: str | None = None
    counters: dict[str, Counter] = field(default_factory=dict)
    counters_after: dict[str, Counter] = field(default_factory=dict)
    auth: AuthResult | None = None

    @property
    def responsive(self) -> bool:
        """True when the card answered everything asked within the deadline."""
        return self.no_atr is None and not self.mute and self.stopped_at is None


@dataclass(frozen=True)
class RecordEvidence:
    """What the line database says about the ICCID (no secrets)."""

    iccid: str
    known: bool
    card_state: CardState | None = None
    imsi: str | None = None
    form_factor: str | None = None
    batch: str | None = None
    has_keys: bool = False
    service_code: str | None = None
    line_state: LineState | None = None
    msisdn: str | None = None
    customer: str | None = None

    @property
    def never_reuse(self) -> bool:
        """A card once reported lost is never used again (docs/domain.md)."""
        return self.card_state in (CardState.LOST, CardState.LOST_FOUND)


@dataclass(frozen=True)
class ModemEvidence:
    """The card in a modem: registration, reject cause and signal (``--modem``).

    ``registration`` is the 3GPP TS 27.007 ``<stat>`` code (1 home, 5
    roaming, 3 denied...), ``registered`` whether that is service; ``error`` says why
    the modem could not be asked.
    """

    port: str
    registration: int | None = None
    registered: bool | None = None
    reject_cause: int | None = None
    signal_dbm: int | None = None
    error: str | None = None


def read_modem_evidence(port: str, *, dialect: str | None = None) -> ModemEvidence:
    """Registration and signal of the modem on ``port``; a modem fault is evidence too."""
    from modem.errors import ModemError
    from modem.modem import Modem

    try:
        device = Modem.open(port, dialect=dialect)
    except ModemError as error:
        return ModemEvidence(port, error=type(error).__name__)
    try:
        reports = device.registrations()
        # EPS first: the station's lines are LTE data lines.
        order = {"+CEREG": 0, "+C5GREG": 1, "+CGREG": 2, "+CREG": 3}
        report = min(reports, key=lambda r: order.get(r.kind, 9)) if reports else None
        signal = device.signal()
        dbm = signal.rsrp_dbm if signal.rsrp_dbm is not None else signal.rssi_dbm
        return ModemEvidence(
            port,
            registration=report.stat if report is not None else None,
            registered=report.registered if report is not None else None,
            reject_cause=_reject_cause(device) if report is not None and report.stat == 3 else None,
            signal_dbm=dbm,
        )
    except ModemError as error:
        return ModemEvidence(port, error=type(error).__name__)
    finally:
        device.close()


def _reject_cause(device: Modem) -> int | None:
    """Why the network denied registration: the cause ``AT+CEER`` names (None: none said).

    An attach reject's EMM cause (TS 24.301 clause 9.9.3.9) tells a SIM or
    subscription the network refuses (#2, #3, #7, #8) from a network that is
    not this one's (#11-#15). A modem that cannot say is not a fault.
    """
    from modem.channel import at
    from modem.errors import ModemError
    from modem.parsers import parse_ceer

    try:
        return parse_ceer(device.query(at("AT+CEER", prefix="+CEER:")).lines).cause
    except ModemError:
        return None


@dataclass
class Diagnosis:
    """The verdict on one card with everything it rests on."""

    report_id: str
    at: datetime
    operator: str
    station: str
    reader: str
    verdict: Verdict
    cause: Cause
    next_step: NextStep
    iccid: str | None
    iccid_source: Literal["chip", "label"] | None
    scanned_iccid: str | None
    findings: list[Finding]
    card: CardEvidence
    record: RecordEvidence | None
    modem: ModemEvidence | None
    apdus: int
    seconds: float
    audit_seq: int | None = None

    @property
    def faults(self) -> list[Finding]:
        """The findings that make a card faulty."""
        return [f for f in self.findings if f.severity == "fault"]


# --- 1. evidence from the card ---------------------------------------------


class _StoppedError(Exception):
    """The card stopped answering: what was collected so far is the evidence."""


def read_card_evidence(transport: CardTransport) -> tuple[CardEvidence, Card | None]:
    """Read everything the card shows without a PIN; no attempt spent, nothing written.

    Returns the evidence and the :class:`Card` (None when the card gave no
    ATR) for the authentication test that may follow on the same connection.
    A deadline is evidence (``mute`` / ``stopped_at``), never an exception.
    """
    evidence = CardEvidence(deadline=transport.timeout)
    try:
        evidence.atr = transport.connect()
    except DeadlineError:
        evidence.no_atr = "deadline"
        return evidence, None
    atr = parse_atr(evidence.atr)
    evidence.atr_findings = [(f.severity, f.code) for f in atr.findings]
    card = Card(transport)
    # One PC/SC transaction: another program's SELECT between ours would make
    # us read the wrong file on a shared reader.
    with contextlib.suppress(_StoppedError), transport.transaction():
        _read_identity(card, evidence)
    return evidence, card


def _step(evidence: CardEvidence, name: str, action: Callable[[], Any]) -> Any:
    """Run one card step; a deadline ends the reading and is recorded where it struck."""
    try:
        return action()
    except DeadlineError:
        if evidence.iccid is None and evidence.card_type is None:
            evidence.mute = True
        evidence.stopped_at = name
        raise _StoppedError from None


def _read_identity(card: Card, evidence: CardEvidence) -> None:
    select_iccid = CommandApdu(0x00, 0xA4, 0x08, 0x0C, files.EF_ICCID.fid.to_bytes(2, "big"))
    first: ResponseApdu = _step(evidence, "SELECT EF.ICCID", lambda: card.send(select_iccid))
    if first.sw in NOT_A_UICC:
        card.card_type = evidence.card_type = "sim"
        _step(evidence, "SELECT EF.ICCID", lambda: (card.select(0x3F00), card.select(0x2FE2)))
        iccid_ok = True
    else:
        card.card_type = evidence.card_type = "uicc"
        iccid_ok = first.ok
        if not iccid_ok:
            evidence.iccid_problem = f"SW {first.sw:04X}"
    if iccid_ok:
        raw = _file_read(card, evidence, "EF.ICCID", lambda: card.read_binary(10))
        if raw is not None:
            try:
                evidence.iccid = files.decode_iccid(raw)
            except ParseError as error:
                evidence.iccid_problem = str(error)
                evidence.files.append(FileCheck("EF.ICCID", "garbled", str(error)))
    if evidence.card_type == "sim":
        _read_sim(card, evidence)
    else:
        _read_usim(card, evidence)


def _file_read(
    card: Card, evidence: CardEvidence, name: str, action: Callable[[], bytes]
) -> bytes | None:
    """Read one file; a missing or unreadable file is recorded, not raised."""
    try:
        return _step(evidence, f"READ {name}", action)  # type: ignore[no-any-return]
    except FileNotFoundOnCardError:
        evidence.files.append(FileCheck(name, "missing"))
    except SecurityStatusError:
        evidence.files.append(FileCheck(name, "protected"))
    except StatusWordError as error:
        status: FileStatus = "missing" if error.sw in _SW_NO_FILE else "unreadable"
        if error.sw == GSM_SW_ACCESS_CONDITION:
            status = "protected"
        evidence.files.append(FileCheck(name, status, f"SW {error.sw:04X}"))
    return None


def _present(card: Card, evidence: CardEvidence, ref: files.FileRef) -> None:
    try:
        _step(evidence, f"SELECT {ref.name}", lambda: card.select(ref.fid))
    except StatusWordError as error:
        missing = error.sw in _SW_NO_FILE
        evidence.files.append(
            FileCheck(ref.name, "missing" if missing else "unreadable", f"SW {error.sw:04X}")
        )
    else:
        evidence.files.append(FileCheck(ref.name, "ok"))


def _decode_imsi(evidence: CardEvidence, raw: bytes | None) -> None:
    if raw is None:
        evidence.imsi_protected = any(
            f.name == "EF.IMSI" and f.status == "protected" for f in evidence.files
        )
        return
    try:
        evidence.imsi = files.decode_imsi(raw)
        evidence.files.append(FileCheck("EF.IMSI", "ok"))
    except ParseError as error:
        evidence.files.append(FileCheck("EF.IMSI", "garbled", str(error)))


def _decode_ad(evidence: CardEvidence, raw: bytes | None) -> None:
    if raw is None:
        return
    try:
        files.decode_ad(raw)
        evidence.files.append(FileCheck("EF.AD", "ok"))
    except ParseError as error:
        evidence.files.append(FileCheck("EF.AD", "garbled", str(error)))


def _decode_msisdn(evidence: CardEvidence, record: bytes | None) -> None:
    if record is None:
        return
    try:
        decoded = files.decode_msisdn(record)
    except ParseError as error:
        evidence.files.append(FileCheck("EF.MSISDN", "garbled", str(error)))
        return
    evidence.msisdn = decoded.number if decoded and decoded.number else None


def _read_usim(card: Card, evidence: CardEvidence) -> None:
    try:
        fcp = _step(evidence, "SELECT ADF.USIM", lambda: card.select_aid(files.USIM_AID_PREFIX))
    except StatusWordError as error:
        evidence.files.append(FileCheck("ADF.USIM", "missing", f"SW {error.sw:04X}"))
        return
    enabled: dict[int, bool] = {}
    if fcp is not None and fcp.pin_status is not None:
        enabled = {ref: fcp.pin_status.enabled(ref) for ref in fcp.pin_status.key_references}
    imsi_sfi, ad_sfi = files.EF_IMSI.sfi, files.EF_AD.sfi
    assert imsi_sfi is not None and ad_sfi is not None
    _decode_imsi(
        evidence, _file_read(card, evidence, "EF.IMSI", lambda: card.read_binary(9, sfi=imsi_sfi))
    )
    _decode_ad(
        evidence, _file_read(card, evidence, "EF.AD", lambda: card.read_binary(4, sfi=ad_sfi))
    )
    for ref in _USIM_MANDATORY:
        if ref not in (files.EF_IMSI, files.EF_AD):
            _present(card, evidence, ref)
    _decode_msisdn(evidence, _read_msisdn_record(card, evidence))
    pins = _step(evidence, "empty VERIFY", lambda: read_uicc_pins(card, enabled))
    evidence.counters = {name: Counter.of(pins[name]) for name in _COUNTERS}


def _read_msisdn_record(card: Card, evidence: CardEvidence) -> bytes | None:
    def read() -> bytes:
        card.select(files.EF_MSISDN.fid)
        return card.read_record(1)

    try:
        return _step(evidence, "READ EF.MSISDN", read)  # type: ignore[no-any-return]
    except StatusWordError:
        # EF.MSISDN is optional (TS 31.102 §4.2.26) and often PIN-protected:
        # its absence is no fault; the comparison with the line is then skipped.
        return None


def _read_sim(card: Card, evidence: CardEvidence) -> None:
    def gsm() -> None:
        card.select(0x3F00)
        card.select(files.DF_GSM.fid)

    try:
        _step(evidence, "SELECT DF.GSM", gsm)
    except StatusWordError as error:
        evidence.files.append(FileCheck("DF.GSM", "missing", f"SW {error.sw:04X}"))
        return

    def read_imsi() -> bytes:
        card.select(files.EF_IMSI.fid)
        return card.read_binary(9)

    _decode_imsi(evidence, _file_read(card, evidence, "EF.IMSI", read_imsi))

    def read_ad() -> bytes:
        ad = card.select(files.EF_AD.fid, fcp=True)
        return card.read_binary(ad.file_size if ad is not None and ad.file_size else 3)

    _decode_ad(evidence, _file_read(card, evidence, "EF.AD", read_ad))
    for ref in _GSM_MANDATORY:
        if ref not in (files.EF_IMSI, files.EF_AD):
            _present(card, evidence, ref)
    pins = _step(evidence, "SELECT DF.GSM (counters)", lambda: PinPolicy(card).status())
    evidence.counters = {name: Counter.of(pins[name]) for name in _COUNTERS}


# --- 2. evidence from the line database --------------------------------------


def look_up_record(database: Database, iccid: str) -> RecordEvidence:
    """The card and its current line, by ICCID; ``known`` False when not ours."""
    with database.read() as session:
        row = session.execute(
            select(CardRow, StockBatch.name).join(StockBatch).where(CardRow.iccid == iccid)
        ).first()
        if row is None:
            return RecordEvidence(iccid=iccid, known=False)
        card, batch = row
        line = session.execute(
            select(Line)
            .join(Binding, Binding.line_id == Line.id)
            .where(Binding.card_id == card.id)
            .order_by(Binding.id.desc())
        ).scalar()
        return RecordEvidence(
            iccid=iccid,
            known=True,
            card_state=card.state,
            imsi=card.imsi,
            form_factor=card.form_factor.value,
            batch=batch,
            has_keys=bool(card.secrets),
            service_code=line.service_code if line is not None else None,
            line_state=line.state if line is not None else None,
            msisdn=line.msisdn if line is not None else None,
            customer=line.customer if line is not None else None,
        )


def _open_secrets(database: Database, keyring: Keyring, iccid: str) -> CardSecrets:
    """The card's secrets, in memory only: for this test, never stored or shown."""
    with database.read() as session:
        blob = session.execute(select(CardRow.secrets).where(CardRow.iccid == iccid)).scalar()
        if blob is None:
            raise NotFoundError(f"card {iccid} is not in the database", kind="card", key=iccid)
        return box_for(session, keyring, sealing=False).open(iccid, blob)


# --- 3. the authentication test ------------------------------------------------


def run_authentication_test(
    card: Card,
    evidence: CardEvidence,
    secrets: CardSecrets,
    *,
    pin1: str | None,
    present_pin: bool = True,
    rand: Callable[[int], bytes] = os.urandom,
) -> AuthResult:
    """Challenge the card with Milenage computed here from the record's Ki/OPc.

    ``pin1`` is the value to present when PIN1 is enabled (sent only on a
    full counter). ``rand`` gives the random challenges (tests pin it to the
    TS 35.208 sets). Never raises for what the card answers; a deadline is
    recorded in ``evidence`` and the test reported as an error.
    """
    method: Literal["authenticate", "run-gsm-algorithm"] = (
        "run-gsm-algorithm" if evidence.card_type == "sim" else "authenticate"
    )
    if secrets.ki is None or secrets.opc is None:
        return AuthResult("not-run", method, reason="no-keys")
    refusal = _pin1_refusal(evidence, pin1, present_pin)
    if refusal is not None:
        return AuthResult("not-run", method, reason=refusal)
    milenage = Milenage(secrets.ki, secrets.opc)
    presented = False
    try:
        if _pin1_needed(evidence):
            assert pin1 is not None
            presented = True
            try:
                _step(evidence, "VERIFY PIN1", lambda: PinPolicy(card).verify("pin1", pin1))
            except PinAttemptError as error:
                return AuthResult(
                    "not-run",
                    method,
                    reason="pin1-rejected",
                    sw=f"{error.sw:04X}",
                    pin1_presented=True,
                )
        if method == "run-gsm-algorithm":
            result = _run_gsm_algorithm(card, evidence, milenage, rand)
        else:
            result = _authenticate(card, evidence, milenage, rand)
    except _StoppedError:
        result = AuthResult("error", method, reason="deadline")
    except CardError as error:
        result = AuthResult("error", method, reason=type(error).__name__)
    result.pin1_presented = presented
    return result


def _pin1_needed(evidence: CardEvidence) -> bool:
    pin1 = evidence.counters.get("pin1")
    # Disabled, or verified already in this power session: nothing to present.
    return (
        pin1 is not None
        and pin1.enabled is not False
        and not pin1.verified
        and pin1.retries is not None
    )


def _pin1_refusal(evidence: CardEvidence, pin1: str | None, present_pin: bool) -> str | None:
    """Why PIN1 cannot be presented for the test (None: it need not be, or may be)."""
    counter = evidence.counters.get("pin1")
    if counter is None:
        return "counters-unknown"
    if counter.blocked:
        return "pin1-blocked"
    if not _pin1_needed(evidence):
        return None
    if not present_pin:
        return "pin-not-presented"
    if pin1 is None:
        return "pin1-unknown"
    if counter.retries != FULL_PIN_RETRIES:
        return "pin1-counter-not-full"
    return None


def _sqn_after(sqn_ms: bytes) -> bytes:
    """The next sequence number the card accepts: one SEQ above SQN_MS, IND 0."""
    value = ((int.from_bytes(sqn_ms, "big") // _SEQ_STEP) + 1) * _SEQ_STEP
    return (value % _SQN_LIMIT).to_bytes(SQN_LENGTH, "big")


def _lv_fields(data: bytes) -> list[bytes]:
    out: list[bytes] = []
    position = 0
    while position < len(data):
        length = data[position]
        value = data[position + 1 : position + 1 + length]
        if len(value) != length:
            raise ParseError("AUTHENTICATE response is truncated", data=data)
        out.append(value)
        position += 1 + length
    return out


def _authenticate(
    card: Card, evidence: CardEvidence, milenage: Milenage, random: Callable[[int], bytes]
) -> AuthResult:
    # AUTHENTICATE acts in the current application: make sure it is the USIM.
    _step(evidence, "SELECT ADF.USIM", lambda: card.select_aid(files.USIM_AID_PREFIX, fcp=False))
    sqn = _SEQ_STEP.to_bytes(SQN_LENGTH, "big")
    resynchronised = False
    for _attempt in range(2):
        rand = random(16)
        autn = milenage.generate_autn(rand, sqn, _AMF)
        command = CommandApdu(0x00, 0x88, 0x00, 0x81, b"\x10" + rand + b"\x10" + autn)
        response: ResponseApdu = _step(
            evidence, "AUTHENTICATE", functools.partial(card.send, command)
        )
        if response.sw == SW_AUTH_MAC_FAILURE:
            return AuthResult("mac-failure", "authenticate", sw=f"{response.sw:04X}")
        if not response.ok or not response.data:
            return AuthResult("error", "authenticate", sw=f"{response.sw:04X}")
        tag, body = response.data[0], response.data[1:]
        try:
            fields_ = _lv_fields(body)
        except ParseError:
            return AuthResult("error", "authenticate", reason="malformed-response")
        if tag == _TAG_SYNC_FAILURE and fields_ and not resynchronised:
            sqn_ms = milenage.verify_auts(rand, fields_[0]) if len(fields_[0]) == 14 else None
            if sqn_ms is None:
                return AuthResult("auts-invalid", "authenticate", resynchronised=True)
            sqn = _sqn_after(sqn_ms)
            resynchronised = True
            continue
        if tag == _TAG_SYNC_FAILURE:
            return AuthResult("resync-failed", "authenticate", resynchronised=True)
        if tag != _TAG_SUCCESS or len(fields_) < 3:
            return AuthResult("error", "authenticate", reason="malformed-response")
        res, ck, ik, _ak = milenage.f2345(rand)
        expected = {"RES": res, "CK": ck, "IK": ik}
        got = {"RES": fields_[0], "CK": fields_[1], "IK": fields_[2]}
        if len(fields_) > 3:
            expected["Kc"], got["Kc"] = c3(ck, ik), fields_[3]
        return _compared("authenticate", expected, got, resynchronised)
    return AuthResult("resync-failed", "authenticate", resynchronised=True)


def _run_gsm_algorithm(
    card: Card, evidence: CardEvidence, milenage: Milenage, random: Callable[[int], bytes]
) -> AuthResult:
    rand = random(16)

    def run() -> ResponseApdu:
        card.select(0x3F00)
        card.select(files.DF_GSM.fid)
        return card.send(CommandApdu(0xA0, 0x88, 0x00, 0x00, rand))

    response: ResponseApdu = _step(evidence, "RUN GSM ALGORITHM", run)
    if not response.ok or len(response.data) < 12:
        return AuthResult("error", "run-gsm-algorithm", sw=f"{response.sw:04X}")
    sres, kc = milenage.gsm(rand)
    return _compared(
        "run-gsm-algorithm",
        {"SRES": sres, "Kc": kc},
        {"SRES": response.data[:4], "Kc": response.data[4:12]},
        False,
    )


def _compared(
    method: Literal["authenticate", "run-gsm-algorithm"],
    expected: dict[str, bytes],
    got: dict[str, bytes],
    resynchronised: bool,
) -> AuthResult:
    # Constant-time comparison: the values are session keys.
    mismatched = [
        name for name in expected if not stdlib_secrets.compare_digest(expected[name], got[name])
    ]
    return AuthResult(
        "mismatch" if mismatched else "match",
        method,
        resynchronised=resynchronised,
        compared=list(expected),
        mismatched=mismatched,
    )


# --- the decision (pure) ------------------------------------------------------------


def decide(
    card: CardEvidence,
    record: RecordEvidence | None,
    *,
    scanned_iccid: str | None = None,
    modem: ModemEvidence | None = None,
) -> tuple[Verdict, list[Finding]]:
    """The verdict and the findings it rests on, from the evidence alone."""
    findings = _electrical(card) + _identity(card, record, scanned_iccid)
    findings += _counters(card) + _files(card) + _authentication(card, record)
    if modem is not None:
        findings += _modem(modem)
    codes = {f.code for f in findings}
    if record is not None and not record.known:
        return Verdict.NOT_OURS, findings
    if any(f.severity == "fault" for f in findings):
        return Verdict.FAULTY, findings
    if "puk1-blocked" in codes:
        return Verdict.BLOCKED, findings
    if codes & {"pin1-blocked", "pin2-blocked"}:
        return Verdict.RECOVERABLE, findings
    return Verdict.OK, findings


def _electrical(card: CardEvidence) -> list[Finding]:
    if card.no_atr is not None:
        return [Finding("no-atr", "electrical", "fault", {"deadline_s": card.deadline})]
    errors = [code for severity, code in card.atr_findings if severity == "error"]
    warnings = [code for severity, code in card.atr_findings if severity == "warning"]
    atr_hex = card.atr.hex().upper() if card.atr else None
    out = [
        Finding("atr-malformed", "electrical", "fault", {"atr": atr_hex, "codes": errors})
        if errors
        else Finding("atr-ok", "electrical", "ok", {"atr": atr_hex, "warnings": warnings})
    ]
    if card.mute:
        out.append(
            Finding(
                "card-mute",
                "electrical",
                "fault",
                {"command": card.stopped_at, "deadline_s": card.deadline},
            )
        )
    elif card.stopped_at is not None:
        out.append(
            Finding(
                "card-stopped-answering",
                "electrical",
                "fault",
                {"command": card.stopped_at, "deadline_s": card.deadline},
            )
        )
    else:
        out.append(Finding("answers-in-time", "electrical", "ok", {"deadline_s": card.deadline}))
    return out


def _identity(
    card: CardEvidence, record: RecordEvidence | None, scanned: str | None
) -> list[Finding]:
    out: list[Finding] = []
    if card.iccid is not None:
        if files.luhn_valid(card.iccid):
            out.append(Finding("iccid-ok", "identity", "ok", {"iccid": card.iccid}))
        else:
            out.append(Finding("iccid-luhn", "identity", "fault", {"iccid": card.iccid}))
    elif card.responsive or card.iccid_problem is not None:
        out.append(
            Finding("iccid-unreadable", "identity", "fault", {"problem": card.iccid_problem})
        )
    if scanned is not None:
        if card.iccid is None:
            out.append(Finding("label-only", "identity", "info", {"label": scanned}))
        elif card.iccid == scanned:
            out.append(Finding("label-match", "identity", "ok", {"label": scanned}))
        else:
            out.append(
                Finding(
                    "label-mismatch", "identity", "fault", {"label": scanned, "chip": card.iccid}
                )
            )
    if record is None:
        return out
    if not record.known:
        out.append(Finding("not-in-database", "identity", "info", {"iccid": record.iccid}))
        return out
    out.append(
        Finding(
            "card-known",
            "identity",
            "ok",
            {"state": record.card_state, "batch": record.batch, "form_factor": record.form_factor},
        )
    )
    if record.never_reuse:
        out.append(Finding("never-reuse", "identity", "warning", {"state": record.card_state}))
    elif record.card_state in (CardState.RETURNED, CardState.FAULTY, CardState.REPLACED):
        out.append(Finding("card-closed", "identity", "warning", {"state": record.card_state}))
    if record.service_code is None:
        out.append(Finding("no-line", "identity", "info", {"state": record.card_state}))
    else:
        severity: Severity = "ok" if record.line_state is LineState.ACTIVE else "warning"
        out.append(
            Finding(
                "line",
                "identity",
                severity,
                {"service_code": record.service_code, "state": record.line_state},
            )
        )
    if card.imsi is not None and record.imsi is not None:
        if card.imsi == record.imsi:
            out.append(Finding("imsi-match", "identity", "ok", {"imsi": card.imsi}))
        else:
            out.append(
                Finding(
                    "imsi-mismatch", "identity", "fault", {"chip": card.imsi, "record": record.imsi}
                )
            )
    if card.msisdn is not None and record.msisdn is not None:
        chip = re.sub(r"[^0-9]", "", card.msisdn)
        if chip == record.msisdn:
            out.append(Finding("msisdn-match", "identity", "ok", {"msisdn": record.msisdn}))
        else:
            out.append(
                Finding(
                    "msisdn-mismatch",
                    "identity",
                    "warning",
                    {"chip": card.msisdn, "record": record.msisdn},
                )
            )
    return out


def _counters(card: CardEvidence) -> list[Finding]:
    if not card.counters:
        return []
    values = {name: c.retries for name, c in card.counters.items()}
    out = [Finding("counters", "counters", "info", {"retries": values})]
    for name in _COUNTERS:
        counter = card.counters.get(name)
        if counter is not None and counter.blocked:
            severity: Severity = "warning"
            out.append(Finding(f"{name}-blocked", "counters", severity, {"retries": 0}))
    if card.counters_after:
        after = {name: c.retries for name, c in card.counters_after.items()}
        if after != values:
            out.append(
                Finding(
                    "counters-changed", "counters", "warning", {"before": values, "after": after}
                )
            )
        else:
            out.append(Finding("counters-unchanged", "counters", "ok", {"retries": values}))
    return out


def _files(card: CardEvidence) -> list[Finding]:
    if not card.files:
        return []
    out: list[Finding] = []
    for check in card.files:
        if check.status in ("missing", "garbled", "unreadable"):
            out.append(
                Finding(
                    f"file-{check.status}",
                    "files",
                    "fault",
                    {"file": check.name, "detail": check.detail},
                )
            )
        elif check.status == "protected":
            out.append(Finding("file-protected", "files", "info", {"file": check.name}))
    if not out or all(f.severity != "fault" for f in out):
        present = sum(1 for c in card.files if c.status == "ok")
        out.insert(0, Finding("files-ok", "files", "ok", {"present": present}))
    return out


def _authentication(card: CardEvidence, record: RecordEvidence | None) -> list[Finding]:
    auth = card.auth
    if auth is None:
        if record is None or not record.known or not card.responsive:
            return []
        reason = "no-keys" if not record.has_keys else "not-run"
        return [Finding("auth-not-run", "authentication", "info", {"reason": reason})]
    evidence: dict[str, Any] = {
        "method": auth.method,
        "resynchronised": auth.resynchronised,
        "pin1_presented": auth.pin1_presented,
    }
    if auth.outcome == "match":
        return [
            Finding("auth-match", "authentication", "ok", {**evidence, "compared": auth.compared})
        ]
    if auth.outcome == "not-run":
        return [
            Finding("auth-not-run", "authentication", "info", {**evidence, "reason": auth.reason})
        ]
    if auth.outcome == "error" and auth.reason == "deadline":
        # The deadline is the electrical finding already.
        return []
    details = {**evidence, "mismatched": auth.mismatched, "sw": auth.sw, "reason": auth.reason}
    return [Finding(f"auth-{auth.outcome}", "authentication", "fault", details)]


def _modem(modem: ModemEvidence) -> list[Finding]:
    if modem.error is not None:
        return [Finding("modem-unavailable", "modem", "info", {"port": modem.port})]
    severity: Severity = "ok" if modem.registered else "warning"
    findings = [
        Finding(
            "modem-registration",
            "modem",
            severity,
            {
                "registration": modem.registration,
                "reject_cause": modem.reject_cause,
                "signal_dbm": modem.signal_dbm,
            },
        )
    ]
    if modem.reject_cause is not None:
        findings.append(
            Finding("modem-rejected", "modem", "warning", {"cause": modem.reject_cause})
        )
    return findings


# --- the whole diagnosis ------------------------------------------------------------


def new_report_id(at: datetime) -> str:
    """``DX-20261202-1A2B3C4D``: the day (UTC) and 32 random bits."""
    return f"{REPORT_ID_PREFIX}-{at.astimezone(UTC):%Y%m%d}-{stdlib_secrets.token_hex(4).upper()}"


def diagnose_card(
    transport: CardTransport,
    database: Database,
    keyring: Keyring,
    actor: Actor,
    *,
    scanned_iccid: str | None = None,
    modem: ModemEvidence | None = None,
    present_pin: bool = True,
    audit: bool = True,
) -> Diagnosis:
    """Diagnose the card behind ``transport``: evidence, verdict, one audit event.

    ``scanned_iccid`` is the label (checked against the chip, and the card's
    identity when the chip cannot tell it). Raises only for what is not a
    verdict: no card in the reader (:class:`~apdu.errors.NoCardError`), a malformed scan,
    the database unavailable.
    """
    if scanned_iccid is not None:
        scanned_iccid = parse_iccid(scanned_iccid)
    started = time.perf_counter()
    apdus_before = transport.stats.apdus
    evidence, card = read_card_evidence(transport)
    iccid = evidence.iccid or scanned_iccid
    source: Literal["chip", "label"] | None = (
        "chip" if evidence.iccid else ("label" if scanned_iccid else None)
    )
    record = look_up_record(database, iccid) if iccid is not None else None
    if (
        card is not None
        and record is not None
        and record.known
        and record.has_keys
        and evidence.responsive
        and evidence.iccid == record.iccid
    ):
        _authentication_step(card, evidence, database, keyring, record, present_pin)
    verdict, findings = decide(evidence, record, scanned_iccid=scanned_iccid, modem=modem)
    cause, next_step = VERDICT_TABLE[verdict]
    at = datetime.now(UTC)
    diagnosis = Diagnosis(
        report_id=new_report_id(at),
        at=at,
        operator=actor.operator,
        station=actor.station,
        reader=transport.name,
        verdict=verdict,
        cause=cause,
        next_step=next_step,
        iccid=iccid,
        iccid_source=source,
        scanned_iccid=scanned_iccid,
        findings=findings,
        card=evidence,
        record=record,
        modem=modem,
        apdus=transport.stats.apdus - apdus_before,
        seconds=time.perf_counter() - started,
    )
    if audit:
        diagnosis.audit_seq = _audit(database, actor, diagnosis)
    return diagnosis


def _authentication_step(
    card: Card,
    evidence: CardEvidence,
    database: Database,
    keyring: Keyring,
    record: RecordEvidence,
    present_pin: bool,
) -> None:
    try:
        secrets = _open_secrets(database, keyring, record.iccid)
    except SecretsKeyError:
        evidence.auth = AuthResult("not-run", reason="secrets-key")
        return
    # Once provisioned, a card leaves with PIN1 = 0000 (docs/domain.md); in stock
    # it still has the vendor's PIN1.
    pin1 = secrets.pin1 if record.card_state is CardState.IN_STOCK else DEFAULT_PIN
    with card.transport.transaction():
        with _untraced(card.transport):
            evidence.auth = run_authentication_test(
                card, evidence, secrets, pin1=pin1, present_pin=present_pin
            )
            del secrets
        if evidence.responsive:
            with contextlib.suppress(_StoppedError):
                _read_counters_after(card, evidence)


@contextlib.contextmanager
def _untraced(transport: CardTransport) -> Iterator[None]:
    """Keep the authentication exchanges out of an APDU trace.

    Their answers hold CK, IK and Kc: session keys, which a trace file (kept
    for debugging, shared with vendors) must not carry.
    """
    tracer, transport.tracer = transport.tracer, None
    try:
        yield
    finally:
        transport.tracer = tracer


def _read_counters_after(card: Card, evidence: CardEvidence) -> None:
    if evidence.card_type == "sim":
        pins = _step(evidence, "counters after", lambda: PinPolicy(card).status())
    else:
        enabled = {
            0x01: evidence.counters["pin1"].enabled is not False,
            0x81: evidence.counters["pin2"].enabled is not False,
        }
        pins = _step(evidence, "counters after", lambda: read_uicc_pins(card, enabled))
    after = {name: Counter.of(pins[name]) for name in _COUNTERS}
    auth = evidence.auth
    pin1 = after["pin1"]
    if auth is not None and auth.pin1_presented and pin1.retries is None and not pin1.blocked:
        # Verified by the test: the card hides a counter that the successful
        # VERIFY reset to its maximum (TS 102 221 §9.5).
        after["pin1"] = Counter(FULL_PIN_RETRIES, pin1.enabled, False)
    evidence.counters_after = after


def _audit(database: Database, actor: Actor, diagnosis: Diagnosis) -> int:
    auth = diagnosis.card.auth
    details: dict[str, Any] = {
        "report_id": diagnosis.report_id,
        "verdict": diagnosis.verdict.value,
        "cause": diagnosis.cause.value,
        "iccid_source": diagnosis.iccid_source,
        "findings": [f.code for f in diagnosis.findings if f.severity in ("fault", "warning")],
        "auth": None
        if auth is None
        else {
            "outcome": auth.outcome,
            "method": auth.method,
            "resynchronised": auth.resynchronised,
            "pin1_presented": auth.pin1_presented,
        },
        "reader": diagnosis.reader,
        "apdus": diagnosis.apdus,
    }
    record = diagnosis.record
    with database.write() as session:
        event = append_event(
            session,
            actor,
            AUDIT_ACTION,
            result=diagnosis.verdict.value,
            iccid=diagnosis.iccid,
            service_code=record.service_code if record is not None else None,
            details=details,
            at=diagnosis.at,
        )
        return event.seq


@dataclass(frozen=True)
class DiagnosisRecord:
    """A past diagnosis as the audit trail holds it (for ``reissue --evidence``)."""

    report_id: str
    seq: int
    at: datetime
    iccid: str | None
    service_code: str | None
    verdict: str
    cause: str
    operator: str


def find_diagnosis(database: Database, report_id: str) -> DiagnosisRecord:
    """The diagnosis with ``report_id``; :class:`NotFoundError` when none was recorded."""
    wanted = report_id.strip().upper()
    if not _REPORT_ID_RE.fullmatch(wanted):
        raise NotFoundError(
            f"{report_id!r} is not a diagnosis report id (DX-YYYYMMDD-XXXXXXXX)",
            kind="diagnosis",
            key=report_id,
        )
    # The details are canonical JSON (sorted keys, no blanks), so this
    # substring is exactly how the id is stored.
    needle = f'"report_id":"{wanted}"'
    with database.read() as session:
        event = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.action == AUDIT_ACTION, AuditEvent.details.contains(needle))
                .order_by(AuditEvent.seq)
            )
            .scalars()
            .first()
        )
        if event is None:
            raise NotFoundError(
                f"no diagnosis with report id {wanted} in the audit trail",
                kind="diagnosis",
                key=wanted,
            )
        details = json.loads(event.details)
        return DiagnosisRecord(
            report_id=wanted,
            seq=event.seq,
            at=event.at,
            iccid=event.iccid,
            service_code=event.service_code,
            verdict=str(details.get("verdict")),
            cause=str(details.get("cause")),
            operator=event.operator,
        )


__all__ = [
    "AuthResult",
    "CardEvidence",
    "Cause",
    "Counter",
    "Diagnosis",
    "DiagnosisRecord",
    "FileCheck",
    "Finding",
    "ModemEvidence",
    "NextStep",
    "RecordEvidence",
    "Verdict",
    "decide",
    "diagnose_card",
    "find_diagnosis",
    "look_up_record",
    "read_card_evidence",
    "read_modem_evidence",
    "run_authentication_test",
]
