"""``simtool diagnose`` on lab cards through real pcscd + vpcd: the issue's "done when".

Cards of the profiles default (provisioned), blocked-pin, puk-blocked,
auth-fault, mute, fs-corrupt and a card missing from the stock import are
diagnosed with ``--json --report FILE.html``; each gets its verdict and a
report naming its ICCID, no counter changes, no secret reaches any output, and
the reports are rendered by a real headless Chromium to PDF (A4) and PNG, in
Japanese and in English.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from apdu.card import Card
from apdu.lab import Lab
from apdu.pin import PinPolicy
from apdu.transport.pcsc import PcscTransport
from apdu.virtual import CardProfile
from provisioning.labstock import write_stock_file
from simtool.pytest_plugin import LabCards, SimulatedModem
from tests.support.cli import CliResult, simtool

pytestmark = pytest.mark.lab

SERVICE_CODE = "hdd7000001"


class Station:
    """``simtool`` with this test's database, key and technician."""

    def __init__(self, tmp_path: Path) -> None:
        self.env = {
            "SIMTOOL_DB": str(tmp_path / "station.db"),
            "SIMTOOL_KEY_FILE": str(tmp_path / "k.key"),
            "SIMTOOL_OPERATOR": "suzuki",
            "SIMTOOL_STATION": "repair-1",
            "SIMTOOL_CONFIG": str(tmp_path / "no-config.toml"),
            "SIMTOOL_TZ": "Asia/Tokyo",
        }
        self.outputs: list[str] = []

    def __call__(self, *args: str) -> CliResult:
        result = simtool(*args, env=self.env)
        self.outputs.append(result.output)
        return result

    def ok(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.code == 0, result.output
        return result.json


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return Station(tmp_path)


def slot_of(lab: Lab, reader: str) -> int:
    return next(s.slot for s in lab.slots if s.reader == reader)


def counters(reader: str) -> dict[str, int | None]:
    """The four counters as a new power session shows them (spends nothing)."""
    with PcscTransport(reader) as transport:
        transport.reset()
        pins = PinPolicy(Card(transport)).status()
    return {name: pins[name].retries for name in ("pin1", "pin2", "puk1", "puk2")}


def leaks(texts: list[str], profiles: list[CardProfile]) -> list[str]:
    """The secrets of ``profiles`` found in ``texts``.

    The named profiles' PUKs are short digit strings that also occur inside
    their phone numbers, so the public identifiers are blanked out first.
    """
    public = [v for p in profiles for v in (p.iccid, p.imsi, p.msisdn) if v]
    found: list[str] = []
    for text in texts:
        blanked = text
        for value in public:
            blanked = blanked.replace(value, "#")
        for p in profiles:
            for secret in (p.puk1, p.puk2, p.adm1, p.ki.hex(), p.opc.hex()):
                if secret.lower() in blanked.lower():
                    found.append(f"{p.name}: a secret")
    return found


PROFILES = (
    "default",
    "blocked-pin",
    "puk-blocked",
    "auth-fault",
    "mute",
    "fs-corrupt",
    "classic-sim",
)


@pytest.fixture
def cards(sim_lab: LabCards) -> dict[str, tuple[str, CardProfile]]:
    """Lab cards of each profile and a stranger (lab stock), by name: (lab:N, profile)."""
    names = [*PROFILES, "stranger"]
    return dict(zip(names, zip(sim_lab.urls, sim_lab.profiles, strict=True), strict=True))


EXPECTED = {
    "default": ("ok", "none"),
    "blocked-pin": ("recoverable", "use"),
    "puk-blocked": ("blocked", "use"),
    "auth-fault": ("faulty", "card"),
    "mute": ("faulty", "card"),
    "fs-corrupt": ("faulty", "card"),
    "classic-sim": ("ok", "none"),
    "stranger": ("not-ours", "n/a"),
}


@pytest.mark.sim_lab(profiles=PROFILES, cards=len(PROFILES) + 1)
def test_done_when(
    station: Station, cards: dict[str, tuple[str, CardProfile]], lab: Lab, tmp_path: Path
) -> None:
    ours = [p for name, (_, p) in cards.items() if name != "stranger"]
    stock = tmp_path / "stock.csv"
    write_stock_file(stock, ours)
    station.ok("db", "init")
    station.ok("stock", "import", str(stock))
    default_reader, default = cards["default"]
    station.ok(
        "line", "add", "--service-code", SERVICE_CODE, "--customer", "MA700",
        "--type", "D", "--function", "data", "--msisdn", default.msisdn,
    )  # fmt: skip
    station.ok(
        "provision", "--reader", default_reader, "--service-code", SERVICE_CODE,
        "--form-factor", default.form_factor,
    )  # fmt: skip

    reports: dict[str, str] = {}
    for name, (reader, profile) in cards.items():
        pcsc_name = lab.reader_name(int(reader[4:]))
        before = None if name == "mute" else counters(pcsc_name)
        report = tmp_path / f"{name}.html"
        scan = ["--scan", profile.iccid] if name == "mute" else []
        lang = ["--lang", "ja" if name in ("default", "auth-fault") else "en"]
        result = station(
            "diagnose", "--reader", reader, "--json", "--report", str(report), *scan, *lang
        )
        assert result.code == 0, result.output
        document = result.json
        assert (document["verdict"], document["cause"]) == EXPECTED[name], (name, document)
        assert document["iccid"] == profile.iccid
        html = report.read_text(encoding="utf-8")
        assert profile.iccid in html
        reports[name] = html
        if before is not None:
            assert counters(pcsc_name) == before, name
        codes = {f["code"] for f in document["findings"]}
        if name == "default":
            assert {"auth-match", "imsi-match", "msisdn-match", "counters-unchanged"} <= codes
            assert document["record"]["service_code"] == SERVICE_CODE
        if name == "mute":
            assert "card-mute" in codes and document["iccid_source"] == "label"
        if name == "auth-fault":
            assert "auth-mac-failure" in codes
        if name == "fs-corrupt":
            garbled = next(f for f in document["findings"] if f["code"] == "file-garbled")
            assert garbled["evidence"]["file"] == "EF.IMSI"
        if name == "stranger":
            assert "not-in-database" in codes
        if name == "classic-sim":
            auth = next(f for f in document["findings"] if f["code"] == "auth-match")
            assert auth["evidence"]["method"] == "run-gsm-algorithm"

    assert "判定" in reports["default"] and "Verdict" in reports["blocked-pin"]
    leaked = leaks([*station.outputs, *reports.values()], ours)
    assert not leaked, "a secret reached an output"


def test_second_diagnosis_resynchronises_and_is_audited(
    station: Station, fresh_card: Any, lab: Lab, tmp_path: Path
) -> None:
    reader, profile = fresh_card("default")
    spec = f"lab:{slot_of(lab, reader)}"
    stock = tmp_path / "stock.csv"
    write_stock_file(stock, [profile])
    station.ok("db", "init")
    station.ok("stock", "import", str(stock))
    trace = tmp_path / "trace.jsonl"
    first = station.ok("diagnose", "--reader", spec, "--trace", str(trace))
    second = station.ok("diagnose", "--reader", spec)
    # The trace holds the reads but not the authentication exchanges, whose
    # answers carry session keys (CK, IK, Kc).
    commands = [json.loads(line)["command"] for line in trace.read_text().splitlines()]
    apdus = [c for c in commands if c]
    assert len(apdus) > 20 and not any(c[2:4] == "88" for c in apdus)
    auth = [
        next(f for f in d["findings"] if f["area"] == "authentication") for d in (first, second)
    ]
    assert [a["code"] for a in auth] == ["auth-match", "auth-match"]
    assert [a["evidence"]["resynchronised"] for a in auth] == [False, True]
    assert first["verdict"] == second["verdict"] == "ok"
    history = station.ok("show", "card", profile.iccid)["history"]
    diagnoses = [e for e in history if e["action"] == "diagnose"]
    assert [e["details"]["report_id"] for e in diagnoses] == [
        first["report_id"],
        second["report_id"],
    ]
    assert station.ok("audit", "verify")["ok"]


def test_no_card_and_bad_input_are_errors_not_verdicts(
    station: Station, fresh_card: Any, lab: Lab, tmp_path: Path
) -> None:
    station.ok("db", "init")
    reader, _ = fresh_card()
    spec = f"lab:{slot_of(lab, reader)}"
    bad_scan = station("diagnose", "--reader", spec, "--scan", "8981101000000000010")
    assert bad_scan.code == 65 and "Luhn" in bad_scan.stderr
    unwritable = station("diagnose", "--reader", spec, "--report", str(tmp_path / "no" / "r.html"))
    assert unwritable.code == 64 and "cannot write the report" in unwritable.stderr
    lab.remove(slot_of(lab, reader))
    empty = station("diagnose", "--reader", spec, "--json")
    assert empty.code == 3, empty.output
    assert empty.json["ok"] is False


# --- the report in a real browser --------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed (scripts/setup.sh test installs it)", pytrace=False)
    return found


def render(html: Path, out: Path, tmp_path: Path, *, pdf: bool) -> None:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]
    target = (
        [f"--print-to-pdf={out}", "--no-pdf-header-footer"]
        if pdf
        else [f"--screenshot={out}", "--window-size=800,1130"]
    )
    done = subprocess.run(
        [chromium(), *flags, *target, html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.exists() and out.stat().st_size > 0, done.stderr


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_report_renders_in_headless_chromium_on_a4(
    station: Station, fresh_card: Any, lab: Lab, tmp_path: Path, lang: str
) -> None:
    reader, profile = fresh_card("blocked-pin")
    station.ok("db", "init")
    stock = tmp_path / "stock.csv"
    write_stock_file(stock, [profile])
    station.ok("stock", "import", str(stock))
    report = tmp_path / f"report-{lang}.html"
    station.ok(
        "diagnose",
        "--reader",
        f"lab:{slot_of(lab, reader)}",
        "--report",
        str(report),
        "--lang",
        lang,
    )
    html = report.read_text(encoding="utf-8")
    # Self-contained: no script, no external resource of any kind.
    assert not re.search(r"<script|<link|src=|url\(|@import|https?://", html, re.IGNORECASE)
    assert "size: A4" in html and f'<html lang="{lang}">' in html
    assert ("判定" in html) is (lang == "ja")
    pdf, png = tmp_path / f"report-{lang}.pdf", tmp_path / f"report-{lang}.png"
    render(report, pdf, tmp_path, pdf=True)
    render(report, png, tmp_path, pdf=False)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]", pdf.read_bytes())
    assert boxes, "no page in the PDF"
    # A4 is 210 x 297 mm = 595.3 x 841.9 points; every page must be A4.
    for width, height in boxes:
        assert abs(float(width) - 595.3) < 2 and abs(float(height) - 841.9) < 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.sim_lab(profiles=["auth-fault"], cards=3)
def test_reissue_faulty_cites_the_diagnosis_report(
    station: Station, sim_lab: LabCards, tmp_path: Path
) -> None:
    (faulty_url, spare_url, other_url), (faulty, spare, other) = sim_lab.urls, sim_lab.profiles
    stock = tmp_path / "stock.csv"
    write_stock_file(stock, [faulty, spare, other])
    station.ok("db", "init")
    station.ok("stock", "import", str(stock))
    for code, card, url in (("hdd7100001", faulty, faulty_url), ("hdd7100002", other, other_url)):
        station.ok(
            "line", "add", "--service-code", code, "--customer", "MA710",
            "--type", "D", "--function", "data", "--msisdn", card.msisdn,
        )  # fmt: skip
        station.ok(
            "provision", "--reader", url, "--service-code", code,
            "--form-factor", card.form_factor,
        )  # fmt: skip
    judged = station.ok("diagnose", "--reader", faulty_url)
    healthy = station.ok("diagnose", "--reader", other_url)
    assert (judged["verdict"], healthy["verdict"]) == ("faulty", "ok")
    reissue = ["reissue", "--service-code", "hdd7100001", "--reason", "faulty"]
    reissue += ["--form-factor", spare.form_factor]
    unknown = station(*reissue, "--reader", spare_url, "--evidence", "DX-20000101-00000000")
    assert unknown.code == 11 and "no diagnosis" in unknown.stderr
    not_faulty = station(*reissue, "--reader", spare_url, "--evidence", healthy["report_id"])
    assert not_faulty.code == 10, not_faulty.output
    lost = station(
        "reissue", "--service-code", "hdd7100001", "--reason", "lost",
        "--reader", spare_url, "--evidence", judged["report_id"],
    )  # fmt: skip
    assert lost.code == 64
    done = station.ok(*reissue, "--reader", spare_url, "--evidence", judged["report_id"])
    assert done["old_iccid"] == faulty.iccid and done["iccid"] == spare.iccid
    history = station.ok("show", "line", "hdd7100001")["history"]
    event = next(e for e in history if e["action"] == "reissue" and e["result"] == "passed")
    assert event["details"]["evidence"] == judged["report_id"]


@pytest.mark.sim_lab(cards=1)
@pytest.mark.sim_modem("quectel")
def test_modem_registration_is_evidence(
    station: Station, sim_lab: LabCards, sim_modem: SimulatedModem, tmp_path: Path
) -> None:
    stock = tmp_path / "stock.csv"
    write_stock_file(stock, sim_lab.profiles)
    station.ok("db", "init")
    station.ok("stock", "import", str(stock))
    document = station.ok("diagnose", "--reader", sim_lab.urls[0], "--modem", sim_modem.port)
    modem = next(f for f in document["findings"] if f["area"] == "modem")
    # The simulated modem's own SIM waits for its PIN, so the modem is not
    # registered: a finding about the device, while the card itself is fine.
    assert modem["code"] == "modem-registration", modem
    assert (modem["evidence"]["registration"], modem["severity"]) == (2, "warning")
    assert document["modem"]["port"] == sim_modem.port
    assert document["verdict"] == "ok"
    words = station(
        "diagnose", "--reader", sim_lab.urls[0], "--modem", sim_modem.port, "--lang", "en"
    )
    assert "In the modem: not registered, searching" in words.stdout, words.output


def test_a_denied_registration_names_its_emm_cause(sim_modem_factory: Any) -> None:
    """The network refuses the attach (EMM cause #7): the evidence says why, in words."""
    from modem.modem import enter_pin_on_port
    from provisioning.diagnosis import Finding, read_modem_evidence
    from simtool.diagnose_report import describe
    from simtool.i18n import translator

    denied = sim_modem_factory("quectel", faults="reg-denied:7")
    accepted = sim_modem_factory("quectel")
    for modem in (denied, accepted):
        # The simulated modem's SIM waits for its PIN: with it, the modem attaches.
        enter_pin_on_port(modem.port, "0000")
    evidence = read_modem_evidence(denied.port)
    assert (evidence.registration, evidence.registered, evidence.reject_cause) == (3, False, 7)
    normal = read_modem_evidence(accepted.port)
    assert (normal.registered, normal.reject_cause) == (True, None)
    finding = Finding("modem-rejected", "modem", "warning", {"cause": evidence.reject_cause})
    english = describe(finding, translator("en"))
    assert english == "The network denied registration: EMM cause #7 (EPS services not allowed)"
    assert "EPS サービスが許可されていない" in describe(finding, translator("ja"))
