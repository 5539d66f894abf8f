"""The diagnosis in words: the technician's screen and the printable HTML report.

:mod:`provisioning.diagnosis` returns codes and data; this module turns them
into sentences through the message catalogs (``simtool/locale/<lang>/
diagnose.po``), in Japanese or English, with times in the operator's zone.

The HTML report is one self-contained file (inline CSS, no script, no external
resource), laid out for A4 paper, naming the card, the line, the findings with
their evidence, the verdict and its cause, the technician and the time.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from rich.console import Console

from modem.codes import EMM_CAUSES
from provisioning.diagnosis import Diagnosis, Finding
from provisioning.identifiers import format_msisdn
from simtool.i18n import N_, Translate, format_local_time, resolve_language, translator
from simtool.output import to_jsonable

VERDICT_TEXT: Mapping[str, str] = {
    "ok": N_("OK: no fault found in the card"),
    "recoverable": N_("Recoverable: PIN blocked, PUK alive"),
    "blocked": N_("Blocked: PUK1 blocked, the card is unusable"),
    "faulty": N_("Faulty: card defect"),
    "not-ours": N_("Not ours: the card is not in the line database"),
}
CAUSE_TEXT: Mapping[str, str] = {
    "none": N_("none"),
    "use": N_("use (by the customer)"),
    "card": N_("card defect"),
    "n/a": N_("not applicable"),
}
NEXT_STEP_TEXT: Mapping[str, str] = {
    "look-elsewhere": N_("Look at the device, its settings (APN) or the line"),
    "unblock-with-puk": N_("Unblock the PIN with the PUK from the database"),
    "reissue-blocked-by-use": N_("Reissue (reason: blocked by use)"),
    "reissue-faulty": N_("Reissue (reason: faulty), citing this report"),
    "return-to-sender": N_("Return to sender"),
}
SEVERITY_TEXT: Mapping[str, str] = {
    "ok": N_("OK"),
    "info": N_("info"),
    "warning": N_("warning"),
    "fault": N_("fault"),
}
AREA_TEXT: Mapping[str, str] = {
    "electrical": N_("Electrical / protocol"),
    "identity": N_("Identity"),
    "counters": N_("Counters"),
    "files": N_("File system"),
    "authentication": N_("Authentication"),
    "modem": N_("Modem"),
}
FINDING_TEXT: Mapping[str, str] = {
    "atr-ok": N_("ATR well-formed: {atr}"),
    "atr-malformed": N_("ATR malformed ({codes}): {atr}"),
    "no-atr": N_("No answer to reset within {deadline_s} s"),
    "card-mute": N_("The card gave its ATR, then did not answer {command} within {deadline_s} s"),
    "card-stopped-answering": N_(
        "The card stopped answering at {command} (deadline {deadline_s} s)"
    ),
    "answers-in-time": N_("Every command answered within the {deadline_s} s deadline"),
    "iccid-ok": N_("ICCID {iccid}, Luhn check digit valid"),
    "iccid-luhn": N_("ICCID {iccid}: the Luhn check digit is wrong"),
    "iccid-unreadable": N_("The ICCID cannot be read ({problem})"),
    "label-only": N_("The chip cannot tell its ICCID; the label says {label}"),
    "label-match": N_("The label {label} matches the chip"),
    "label-mismatch": N_("The label {label} does not match the chip's ICCID {chip}"),
    "not-in-database": N_("ICCID {iccid} is not in the line database"),
    "card-known": N_("Card on record: state {state}, batch {batch}, form factor {form_factor}"),
    "never-reuse": N_("The card was reported lost ({state}): it is never to be reused"),
    "card-closed": N_("The card is closed in the database ({state})"),
    "no-line": N_("The card is bound to no line (state {state})"),
    "line": N_("Line {service_code}: {state}"),
    "imsi-match": N_("IMSI {imsi} matches the vendor's record"),
    "imsi-mismatch": N_("IMSI on the chip {chip} differs from the record {record}"),
    "msisdn-match": N_("MSISDN {msisdn} matches the line"),
    "msisdn-mismatch": N_("MSISDN on the chip {chip} differs from the line's {record}"),
    "counters": N_("Retries left: PIN1 {pin1}, PIN2 {pin2}, PUK1 {puk1}, PUK2 {puk2}"),
    "pin1-blocked": N_("PIN1 is blocked (0 retries)"),
    "pin2-blocked": N_("PIN2 is blocked (0 retries)"),
    "puk1-blocked": N_("PUK1 is blocked (0 retries): the card can never be unblocked"),
    "puk2-blocked": N_("PUK2 is blocked (0 retries)"),
    "counters-unchanged": N_("No counter changed during the diagnosis"),
    "counters-changed": N_("Counters changed during the diagnosis: {before} -> {after}"),
    "files-ok": N_("Mandatory files present and decoding ({present} checked)"),
    "file-missing": N_("Mandatory file {file} is missing"),
    "file-garbled": N_("File {file} does not decode"),
    "file-unreadable": N_("File {file} cannot be read ({detail})"),
    "file-protected": N_("File {file} is protected by PIN1 (not read)"),
    "auth-match": N_(
        "Authentication test passed: {compared} equal Milenage with the record's keys"
    ),
    "auth-mismatch": N_("Authentication test failed: {mismatched} differ from Milenage"),
    "auth-mac-failure": N_(
        "The card rejected the challenge (MAC failure, SW 9862): its key is not the record's"
    ),
    "auth-auts-invalid": N_(
        "The card's resynchronisation token does not verify with the record's key"
    ),
    "auth-resync-failed": N_("The card stayed out of sequence after one resynchronisation"),
    "auth-error": N_("The authentication test failed with an unexpected answer (SW {sw})"),
    "auth-not-run": N_("Authentication test not run: {reason}"),
    "modem-unavailable": N_("The modem on {port} did not answer"),
    "modem-registration": N_("In the modem: {registration}, signal {signal_dbm} dBm"),
    "modem-rejected": N_("The network denied registration: EMM cause #{cause} ({reason})"),
}
AUTH_REASON_TEXT: Mapping[str, str] = {
    "no-keys": N_("no Ki/OPc on record"),
    "not-run": N_("the card could not be tested"),
    "pin1-blocked": N_("PIN1 is blocked"),
    "pin1-counter-not-full": N_("the PIN1 counter is not full, so no PIN was presented"),
    "pin1-unknown": N_("the station does not know PIN1"),
    "pin-not-presented": N_("no PIN may be presented (--no-pin)"),
    "pin1-rejected": N_("PIN1 is not the station's value (changed by the customer)"),
    "secrets-key": N_("the secrets key is unavailable"),
    "counters-unknown": N_("the counters could not be read"),
}
REGISTRATION_TEXT: Mapping[int, str] = {
    0: N_("not registered, not searching"),
    1: N_("registered, home network"),
    2: N_("not registered, searching"),
    3: N_("registration denied"),
    4: N_("registration state unknown"),
    5: N_("registered, roaming"),
}
# The states of cards and lines, as the database names them (card and line
# states share "active").
STATE_TEXT: Mapping[str, str] = {
    "in-stock": N_("in-stock"),
    "active": N_("active"),
    "lost": N_("lost"),
    "faulty": N_("faulty"),
    "replaced": N_("replaced"),
    "awaiting-return": N_("awaiting-return"),
    "retired": N_("retired"),
    "returned": N_("returned"),
    "lost-found": N_("lost-found"),
    "pending": N_("pending"),
    "suspended": N_("suspended"),
    "cancelled": N_("cancelled"),
}


def state_text(state: object, _: Translate) -> str:
    """A card's or line's state in the chosen language (an unknown code as it is)."""
    code = str(to_jsonable(state))
    return _(STATE_TEXT[code]) if code in STATE_TEXT else code


# A note added to a passed authentication test.
RESYNC_NOTE = N_("after one sequence resynchronisation (AUTS)")
# Labels used inside f-strings below, where the extractor cannot see them.
LABELS = (
    N_("Verdict"),
    N_("Cause"),
    N_("Next step"),
    N_("Report ID"),
    N_("Time"),
    N_("Technician"),
    N_("Diagnosis report"),
    N_("Card"),
    N_("Line"),
    N_("Findings"),
    N_("Result"),
    N_("Area"),
    N_("Evidence"),
    N_("Station"),
    N_("Reader"),
    N_("Audit event"),
    N_("APDUs"),
    N_("unknown"),
    N_("none"),
    N_("not recorded"),
    N_("Technician's signature"),
)


def _value(value: Any, _: Translate) -> str:
    if value is None:
        return _("unknown")
    if isinstance(value, list):
        return ", ".join(_value(v, _) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k.upper()} {_value(v, _)}" for k, v in value.items())
    return str(to_jsonable(value))


def describe(finding: Finding, _: Translate) -> str:
    """One finding as a sentence in the chosen language."""
    evidence: dict[str, Any] = dict(finding.evidence)
    if finding.code == "counters":
        evidence.update(evidence.pop("retries", {}))
    if finding.code == "auth-not-run":
        reason = str(evidence.get("reason"))
        evidence["reason"] = _(AUTH_REASON_TEXT.get(reason, reason))
    if finding.code == "modem-registration":
        stat = evidence.get("registration")
        evidence["registration"] = (
            _(REGISTRATION_TEXT[stat])
            if isinstance(stat, int) and stat in REGISTRATION_TEXT
            else stat
        )
    if "state" in evidence and evidence["state"] is not None:
        evidence["state"] = state_text(evidence["state"], _)
    if finding.code == "modem-rejected":
        # The cause's words are TS 24.301's, kept in modem.codes; the catalog
        # has them in Japanese (a test checks every one).
        cause = evidence.get("cause")
        words = EMM_CAUSES.get(cause) if isinstance(cause, int) else None
        evidence["reason"] = _(words) if words else _("unknown")
    template = FINDING_TEXT.get(finding.code)
    if template is None:
        return finding.code
    shown = {name: _value(value, _) for name, value in evidence.items()}
    try:
        text = _(template).format(**shown)
    except (KeyError, IndexError):
        text = template.format_map(_Missing(shown))
    if finding.code == "auth-match" and finding.evidence.get("resynchronised"):
        text += " " + _(RESYNC_NOTE)
    return text


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "-"


def _card_rows(diagnosis: Diagnosis, _: Translate) -> list[tuple[str, str]]:
    record = diagnosis.record
    source = {"chip": _("chip"), "label": _("label")}.get(diagnosis.iccid_source or "", "")
    rows = [
        (_("ICCID"), f"{diagnosis.iccid or _('unknown')}" + (f" ({source})" if source else "")),
        (_("IMSI"), diagnosis.card.imsi or (record.imsi if record else None) or _("unknown")),
        (
            _("Card type"),
            {"uicc": "UICC (USIM)", "sim": "SIM (GSM 11.11)"}.get(
                diagnosis.card.card_type or "", _("unknown")
            ),
        ),
        (_("ATR"), diagnosis.card.atr.hex().upper() if diagnosis.card.atr else _("none")),
    ]
    if record is not None and record.known:
        rows.append((_("Card state"), state_text(record.card_state, _)))
        rows.append((_("Form factor"), record.form_factor or _("unknown")))
    return rows


def _line_rows(diagnosis: Diagnosis, _: Translate) -> list[tuple[str, str]]:
    record = diagnosis.record
    if record is None or not record.known or record.service_code is None:
        return [(_("Line"), _("none"))]
    return [
        (_("Service code"), record.service_code),
        (_("Phone number"), format_msisdn(record.msisdn) if record.msisdn else _("unknown")),
        (_("Customer"), record.customer or _("unknown")),
        (_("Line state"), state_text(record.line_state, _)),
    ]


def print_diagnosis(diagnosis: Diagnosis, out: Console, lang: str | None = None) -> None:
    """The technician's screen: verdict, cause, next step, then every finding."""
    _ = translator(lang)
    # Plain text (no rich markup): values such as a customer id are data.
    out.print(f"{_('Verdict')}: {_(VERDICT_TEXT[diagnosis.verdict.value])}", markup=False)
    out.print(f"{_('Cause')}: {_(CAUSE_TEXT[diagnosis.cause.value])}", markup=False)
    out.print(f"{_('Next step')}: {_(NEXT_STEP_TEXT[diagnosis.next_step.value])}", markup=False)
    for label, value in _card_rows(diagnosis, _)[:1] + _line_rows(diagnosis, _)[:1]:
        out.print(f"{label}: {value}", markup=False)
    for finding in diagnosis.findings:
        mark = _(SEVERITY_TEXT[finding.severity])
        out.print(f"  [{mark}] {_(AREA_TEXT[finding.area])}: {describe(finding, _)}", markup=False)
    out.print(
        f"{_('Report ID')}: {diagnosis.report_id}  "
        f"{_('Time')}: {format_local_time(diagnosis.at)}  "
        f"{_('Technician')}: {diagnosis.operator}",
        markup=False,
    )


_CSS = """
@page { size: A4; margin: 16mm 14mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "Hiragino Sans",
       "Yu Gothic", sans-serif; font-size: 10.5pt; color: #111; margin: 0; }
h1 { font-size: 17pt; margin: 0 0 2mm 0; }
h2 { font-size: 12pt; margin: 6mm 0 2mm 0; border-bottom: 0.4mm solid #444; }
.meta { color: #444; font-size: 9pt; }
.verdict { border: 0.6mm solid #333; padding: 3mm 4mm; margin: 4mm 0; }
.verdict .big { font-size: 15pt; font-weight: bold; }
.v-ok { background: #e6f4ea; } .v-recoverable { background: #fff4d6; }
.v-blocked, .v-faulty { background: #fde7e7; } .v-not-ours { background: #eceff1; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 0.3mm solid #999; padding: 1.2mm 2mm; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.facts th { width: 32%; }
td.sev { white-space: nowrap; }
.s-fault { color: #a00; font-weight: bold; } .s-warning { color: #8a5a00; }
.s-ok { color: #136c2e; } .s-info { color: #333; }
.facts { display: flex; gap: 4mm; } .facts > div { flex: 1; }
footer { margin-top: 8mm; font-size: 9pt; color: #333; }
.sign { margin-top: 10mm; width: 80mm; border-bottom: 0.3mm solid #333; padding-bottom: 6mm; }
tr { page-break-inside: avoid; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def render_html(diagnosis: Diagnosis, lang: str | None = None) -> str:
    """The printable report: one self-contained HTML document (A4)."""
    _ = translator(lang)
    language = resolve_language(lang)
    verdict = diagnosis.verdict.value
    findings = "".join(
        f'<tr><td class="sev s-{_esc(f.severity)}">{_esc(_(SEVERITY_TEXT[f.severity]))}</td>'
        f"<td>{_esc(_(AREA_TEXT[f.area]))}</td><td>{_esc(describe(f, _))}</td></tr>"
        for f in diagnosis.findings
    )
    when = format_local_time(diagnosis.at)
    audit = str(diagnosis.audit_seq) if diagnosis.audit_seq is not None else _("not recorded")
    return f"""<!DOCTYPE html>
<html lang="{language}">
<head>
<meta charset="utf-8">
<title>{_esc(_("Diagnosis report"))} {_esc(diagnosis.report_id)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_esc(_("Diagnosis report"))}</h1>
<div class="meta">{_esc(_("Report ID"))}: <b>{_esc(diagnosis.report_id)}</b> &nbsp;
{_esc(_("Time"))}: {_esc(when)}</div>
<div class="verdict v-{_esc(verdict)}">
<div class="big">{_esc(_("Verdict"))}: {_esc(_(VERDICT_TEXT[verdict]))}</div>
<div>{_esc(_("Cause"))}: {_esc(_(CAUSE_TEXT[diagnosis.cause.value]))}</div>
<div>{_esc(_("Next step"))}: {_esc(_(NEXT_STEP_TEXT[diagnosis.next_step.value]))}</div>
</div>
<div class="facts">
<div><h2>{_esc(_("Card"))}</h2>{_table(_card_rows(diagnosis, _))}</div>
<div><h2>{_esc(_("Line"))}</h2>{_table(_line_rows(diagnosis, _))}</div>
</div>
<h2>{_esc(_("Findings"))}</h2>
<table class="findings"><colgroup><col style="width:11%"><col style="width:21%"><col></colgroup>
<tr><th>{_esc(_("Result"))}</th><th>{_esc(_("Area"))}</th>
<th>{_esc(_("Evidence"))}</th></tr>{findings}</table>
<footer>
{_esc(_("Technician"))}: {_esc(diagnosis.operator)} &nbsp;
{_esc(_("Station"))}: {_esc(diagnosis.station)} &nbsp;
{_esc(_("Reader"))}: {_esc(diagnosis.reader)}<br>
{_esc(_("Audit event"))}: {_esc(audit)} &nbsp;
{_esc(_("APDUs"))}: {diagnosis.apdus} &nbsp;
{_esc(_("Time"))}: {_esc(when)}
<div class="sign">{_esc(_("Technician's signature"))}: </div>
</footer>
</body>
</html>
"""
