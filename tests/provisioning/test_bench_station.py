"""``simtool bench run`` against lab cards through real pcscd + vpcd (headless, events).

The issue's "done when" runs on a private lab of four cards (the bench watches
``lab:all``, and its pcscd is restarted by one test); the refusals run on
fresh cards of the session lab. The bench always runs as the operator runs
it: a ``simtool`` process, its events read back from the JSON lines file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import URL

from apdu.lab import Lab
from apdu.lab.layout import LABDIR_ENV, PCSC_SOCKET_ENV
from apdu.virtual import CardProfile, lab_profile, load_profile
from provisioning.audit import Actor, verify_audit
from provisioning.database import Database
from provisioning.labstock import write_stock_file
from provisioning.lifecycle import CardState, LineState
from provisioning.lines import LineSpec, add_line
from provisioning.models import AuditEvent, Binding, Card, Device, Line
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from tests.conftest import FreshCard
from tests.provisioning.conftest import reset_postgres
from tests.provisioning.helpers import snapshot

pytestmark = pytest.mark.lab

ACTOR = Actor(operator="sato", station="bench-7")


class BenchSite:
    """A station's database, key and environment; runs ``simtool bench run``."""

    def __init__(self, tmp_path: Path, env: dict[str, str], db_url: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.db_url = db_url or str(tmp_path / "lines.db")
        self.database = Database(self.db_url)
        self.database.init()
        self.keyring = Keyring(key_file=tmp_path / "secrets.key")
        self.env = {
            **env,
            "SIMTOOL_DB": self.db_url,
            "SIMTOOL_KEY_FILE": str(tmp_path / "secrets.key"),
            "SIMTOOL_OPERATOR": ACTOR.operator,
            "SIMTOOL_STATION": ACTOR.station,
            "SIMTOOL_CONFIG": str(tmp_path / "no-config.toml"),
        }
        self.runs = 0
        self.orders = 0

    def stock(self, profiles: list[CardProfile]) -> None:
        path = self.tmp_path / f"stock-{len(list(self.tmp_path.glob('stock-*')))}.csv"
        write_stock_file(path, profiles)
        import_stock(self.database, self.keyring, ACTOR, path)

    def order(self, form_factor: str | None, *, function: str = "data") -> str:
        self.orders += 1
        code = f"hdd{6100000 + self.orders}"
        add_line(
            self.database,
            ACTOR,
            LineSpec.parse(
                service_code=code,
                msisdn=None,
                customer="MA600",
                network_type="D",
                function_class=function,
                form_factor=form_factor,
            ),
        )
        return code

    def command(self, *args: str) -> list[str]:
        # No --headless: without a terminal the bench prints plain lines anyway.
        return [sys.executable, "-m", "simtool", "bench", "run", *args]

    def run(
        self, *args: str, timeout: float = 90, input: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        """Run a bench to its exit (``input``: what the scanner types); events, plain output."""
        self.runs += 1
        events = self.tmp_path / f"events-{self.runs}.jsonl"
        done = subprocess.run(
            self.command("--events", str(events), *args),
            env={**os.environ, **self.env},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return read_events(events), done.stdout

    def bindings(self) -> dict[str, str]:
        """ICCID -> service code of every binding ever made."""
        with self.database.read() as session:
            rows = session.execute(
                select(Card.iccid, Line.service_code)
                .join(Binding, Binding.card_id == Card.id)
                .join(Line, Line.id == Binding.line_id)
            ).all()
        return {iccid: code for iccid, code in rows}


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def outcomes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "card"]


@pytest.fixture(scope="module")
def private_lab() -> Iterator[Lab]:
    """A lab of its own (4 cards): this module watches lab:all and restarts its pcscd."""
    labdir = Path(tempfile.mkdtemp(prefix="h6-bench-", dir="/tmp"))
    lab = Lab.up(cards=4, labdir=labdir, fresh=True)
    try:
        yield lab
    finally:
        lab.down()
        shutil.rmtree(labdir, ignore_errors=True)


def lab_env(lab: Lab) -> dict[str, str]:
    return {LABDIR_ENV: str(lab.labdir), PCSC_SOCKET_ENV: str(lab.pcsc_socket)}


@pytest.fixture
def lab_site(private_lab: Lab, tmp_path: Path) -> BenchSite:
    """The private lab's cards in stock, one pending order per card (in its size)."""
    site = BenchSite(tmp_path, lab_env(private_lab))
    profiles = private_lab.card_profiles()
    site.stock(profiles)
    for profile in profiles:
        site.order(profile.form_factor)
    return site


def test_done_when_fifo_provisions_every_card_once(lab_site: BenchSite, private_lab: Lab) -> None:
    events, _ = lab_site.run("--reader", "lab:all", "--assign", "fifo", "--exit-after", "4")
    cards = outcomes(events)
    assert [c["result"] for c in cards] == ["pass"] * 4, cards
    sizes = {p.iccid: p.form_factor for p in private_lab.card_profiles()}
    orders = {f"hdd{6100001 + i}": p.form_factor for i, p in enumerate(private_lab.card_profiles())}
    assert {c["iccid"] for c in cards} == set(sizes)
    for card in cards:
        assert set(card) >= {
            "event",
            "reader",
            "iccid",
            "result",
            "service_code",
            "rule",
            "seconds",
        }
        assert card["reader"].startswith("lab:") and card["rule"] is None
        assert orders[card["service_code"]] == sizes[card["iccid"]]
    assert lab_site.bindings() == {c["iccid"]: c["service_code"] for c in cards}

    again, _ = lab_site.run("--reader", "lab:all", "--assign", "fifo", "--exit-after", "4")
    repeat = outcomes(again)
    assert len(repeat) == 4 and not [c for c in repeat if c["result"] == "pass"]
    assert {c["result"] for c in repeat} == {"skip"}
    assert lab_site.bindings() == {c["iccid"]: c["service_code"] for c in cards}

    _, japanese = lab_site.run(
        "--reader", "lab:all", "--assign", "fifo", "--exit-after", "4", "--lang", "ja"
    )
    assert "処理済み" in japanese and "ベンチ開始" in japanese
    assert "already done" not in japanese
    assert verify_audit(lab_site.database).ok


def test_pcscd_restart_mid_run_repeats_and_loses_nothing(
    lab_site: BenchSite, private_lab: Lab
) -> None:
    events_path = lab_site.tmp_path / "restart.jsonl"
    bench = subprocess.Popen(
        lab_site.command("--reader", "lab:all", "--assign", "fifo", "--events", str(events_path)),
        env={**os.environ, **lab_site.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(outcomes(read_events(events_path))) == 4, bench)
        private_lab.restart_pcscd()
        wait_for(
            lambda: (
                any(e["event"] == "service-back" for e in read_events(events_path))
                and len([e for e in read_events(events_path) if e["event"] == "resumed"]) == 4
            ),
            bench,
        )
        # A card pulled and put back after the outage is a new cycle (skip: done).
        private_lab.remove(0)
        private_lab.insert(0)
        wait_for(lambda: len(outcomes(read_events(events_path))) == 5, bench)
    finally:
        bench.send_signal(signal.SIGINT)
        bench.wait(30)
    cards = outcomes(read_events(events_path))
    assert [c["result"] for c in cards[:4]] == ["pass"] * 4
    assert cards[4]["result"] == "skip" and cards[4]["reader"] == "lab:0"
    assert len(lab_site.bindings()) == 4


def test_killed_and_restarted_bench_loses_and_repeats_nothing(
    lab_site: BenchSite, private_lab: Lab
) -> None:
    """Killed (SIGKILL) at random moments mid-pass, at real cards' speed, then run
    again: every card bound once, every order once, no PIN attempt spent."""
    private_lab.set_latency(10.0)
    moments = random.Random(7)
    first: list[dict[str, Any]] = []
    try:
        for attempt in range(3):
            events_path = lab_site.tmp_path / f"killed-{attempt}.jsonl"
            bench = subprocess.Popen(
                lab_site.command(
                    "--reader", "lab:all", "--assign", "fifo", "--events", str(events_path)
                ),
                env={**os.environ, **lab_site.env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_for(
                    lambda path=events_path: any(
                        e["event"] == "inserted" for e in read_events(path)
                    ),
                    bench,
                )
                # The moment itself is what this test varies: within the passes.
                time.sleep(moments.uniform(0.0, 0.3))
            finally:
                bench.kill()
                bench.wait(30)
            first += outcomes(read_events(events_path))
        events, _ = lab_site.run("--reader", "lab:all", "--assign", "fifo", "--exit-after", "4")
    finally:
        private_lab.set_latency(0.0)
    second = outcomes(events)
    passed = [c["iccid"] for c in first + second if c["result"] == "pass"]
    assert len(passed) == len(set(passed)), "a card passed twice"
    assert {c["result"] for c in first + second} <= {"pass", "skip"}, first + second
    bound = lab_site.bindings()
    assert len(bound) == 4 and len(set(bound.values())) == 4
    with lab_site.database.read() as session:
        assert set(session.execute(select(Line.state)).scalars()) == {LineState.ACTIVE}
    assert verify_audit(lab_site.database).ok
    for slot in range(4):
        status = subprocess.run(
            [sys.executable, "-m", "simtool", "pin", "status", "--json", "-r", f"lab:{slot}"],
            env={**os.environ, **lab_site.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        counters = json.loads(status.stdout)
        assert counters["pin1"]["retries"] == 3 and counters["puk1"]["retries"] == 10


def wait_for(condition: Any, process: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Poll ``condition`` (it reads a file the bench writes) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the bench ended early"
        assert time.monotonic() < deadline, "timed out waiting for the bench"
        time.sleep(0.05)


def test_refusals_fail_with_the_rule_and_write_nothing(
    fresh_card: FreshCard, tmp_path: Path
) -> None:
    site = BenchSite(tmp_path, {})
    wrong_size = dataclasses.replace(lab_profile(7101), form_factor="standard")
    unknown = lab_profile(7102)
    lost = dataclasses.replace(lab_profile(7103), form_factor="micro")
    blocked = load_profile("blocked-pin")
    assert blocked.form_factor == "nano"
    site.stock([wrong_size, lost, blocked])
    micro_order = site.order("micro")
    nano_order = site.order("nano")
    with site.database.write() as session:
        session.execute(
            update(Card).where(Card.iccid == lost.iccid).values(state=CardState.LOST_FOUND)
        )
    readers = [fresh_card(p)[0] for p in (wrong_size, unknown, lost, blocked)]
    before = snapshot(site.database)
    with site.database.read() as session:
        audit_before = session.execute(select(func.max(AuditEvent.seq))).scalar_one()

    args = [a for reader in readers for a in ("--reader", reader)]
    events, _ = site.run(*args, "--assign", "fifo", "--exit-after", "4")
    expected = {
        wrong_size.iccid: "form-factor-match",
        unknown.iccid: "stock-only",
        lost.iccid: "lost-never-reused",
        blocked.iccid: "pin1-default",
    }
    rules = {c["iccid"]: (c["result"], c["rule"]) for c in outcomes(events)}
    assert rules == {iccid: ("fail", rule) for iccid, rule in expected.items()}
    assert snapshot(site.database) == before
    with site.database.read() as session:
        recorded = session.execute(
            select(AuditEvent.iccid, AuditEvent.result, AuditEvent.details).where(
                AuditEvent.seq > audit_before
            )
        ).all()
    # Each refusal once on the record, with its rule (the workflow's or the bench's).
    assert sorted(str(iccid) for iccid, _, _ in recorded) == sorted(expected)
    for iccid, result, details in recorded:
        assert result == "refused" and json.loads(details)["rule"] == expected[str(iccid)]
    report = subprocess.run(
        [sys.executable, "-m", "simtool", "report", "shift", "--json"],
        env={**os.environ, **site.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    shown = {r["iccid"] for r in json.loads(report.stdout)["refusals"]}
    assert shown == set(expected), "the shift report shows every refusal"
    with site.database.read() as session:
        pending = set(
            session.execute(
                select(Line.service_code).where(Line.state == LineState.PENDING)
            ).scalars()
        )
    assert {micro_order, nano_order} <= pending


@pytest.mark.postgres
def test_two_benches_on_postgresql_share_one_order_queue(
    private_lab: Lab, tmp_path: Path, pg_session_url: URL
) -> None:
    reset_postgres(pg_session_url)
    url = pg_session_url.render_as_string(hide_password=False)
    site = BenchSite(tmp_path, lab_env(private_lab), db_url=url)
    site.stock(private_lab.card_profiles())
    # Orders that name no size: every card could go to any of them, and both
    # benches reach for the oldest ones at the same moment.
    codes = [site.order(None) for _ in range(4)]
    benches = []
    for name, readers in (("a", ("lab:0", "lab:1")), ("b", ("lab:2", "lab:3"))):
        events = tmp_path / f"bench-{name}.jsonl"
        env = {**os.environ, **site.env, "SIMTOOL_STATION": f"bench-{name}"}
        args = [a for r in readers for a in ("--reader", r)]
        args += ["--assign", "fifo", "--exit-after", "2"]
        benches.append(
            (
                events,
                subprocess.Popen(
                    site.command("--events", str(events), *args),
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    passed: list[str] = []
    try:
        for _events, process in benches:
            _, err = process.communicate(timeout=90)
            assert process.returncode == 0, err
    finally:
        site.database.dispose()
    for events, _process in benches:
        cards = outcomes(read_events(events))
        assert [c["result"] for c in cards] == ["pass", "pass"], cards
        passed += [c["iccid"] for c in cards]
    assert sorted(passed) == sorted(p.iccid for p in private_lab.card_profiles())
    bound = site.bindings()
    assert len(bound) == 4 and len(set(bound.values())) == 4
    assert set(bound.values()) == set(codes)
    assert verify_audit(site.database).ok
    site.database.dispose()


def test_cards_pulled_at_random_moments(lab_site: BenchSite, private_lab: Lab) -> None:
    """With real cards' speed (10 ms per APDU), pull cards mid-pass: a pull before the
    database transaction leaves nothing written; a reinsertion starts a new cycle."""
    private_lab.set_latency(10.0)
    events_path = lab_site.tmp_path / "pulled.jsonl"
    bench = subprocess.Popen(
        lab_site.command("--reader", "lab:all", "--assign", "fifo", "--events", str(events_path)),
        env={**os.environ, **lab_site.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    moments = random.Random(12)
    profiles = private_lab.card_profiles()
    try:
        wait_for(lambda: len(outcomes(read_events(events_path))) == 4, bench)
        # Every card is bound now; fresh orders and fresh stock are not needed:
        # what is checked is that a pulled pass writes nothing. So unbind by
        # running on new cards: put new lab cards in, in stock, with orders.
        fresh = [dataclasses.replace(lab_profile(7200 + n), form_factor="nano") for n in range(6)]
        lab_site.stock(fresh)
        for _ in fresh:
            lab_site.order("nano")
        for round_number, card in enumerate(fresh):
            slot = round_number % 4
            seen = len(outcomes(read_events(events_path)))
            private_lab.remove(slot)
            private_lab.insert(slot, card)
            wait_for(
                lambda iccid=card.iccid: any(
                    e["event"] == "inserted" and e.get("iccid") == iccid
                    for e in read_events(events_path)
                ),
                bench,
            )
            # The random moment itself is what this test varies (0 to ~2 passes long).
            time.sleep(moments.uniform(0.0, 0.8))
            private_lab.remove(slot)
            wait_for(lambda n=seen: len(outcomes(read_events(events_path))) > n, bench)
            result = outcomes(read_events(events_path))[seen]
            bound = lab_site.bindings()
            if result["result"] == "pass":
                assert bound[card.iccid] == result["service_code"]
            else:
                assert result["rule"] == "card-removed", result
                assert card.iccid not in bound, "a pulled pass wrote its binding"
            private_lab.insert(slot)
            wait_for(lambda n=seen: len(outcomes(read_events(events_path))) > n + 1, bench)
            again = outcomes(read_events(events_path))[seen + 1]
            assert again["iccid"] == card.iccid
            assert again["result"] == ("skip" if result["result"] == "pass" else "pass"), again
    finally:
        bench.send_signal(signal.SIGINT)
        bench.wait(30)
        private_lab.set_latency(0.0)
        for slot, profile in enumerate(profiles):
            info = private_lab.slot(slot)
            if info.iccid != profile.iccid or not info.present:
                if info.present:
                    private_lab.remove(slot)
                private_lab.insert(slot, profile)
    pulled = [c for c in outcomes(read_events(events_path)) if c["rule"] == "card-removed"]
    print(f"{len(pulled)} of {len(fresh)} passes pulled mid-way")
    with lab_site.database.read() as session:
        recorded = session.execute(
            select(AuditEvent.iccid).where(
                AuditEvent.result == "failed", AuditEvent.iccid.in_([f.iccid for f in fresh])
            )
        ).all()
    assert len(recorded) == len(pulled)
    bound = lab_site.bindings()
    assert len(set(bound.values())) == len(bound) == 10
    assert verify_audit(lab_site.database).ok


def test_scanned_order_slip_and_label(fresh_card: FreshCard, tmp_path: Path) -> None:
    """--assign scan: the slip scanned picks the order; the label must be the chip's."""
    site = BenchSite(tmp_path, {})
    good = dataclasses.replace(lab_profile(7301), form_factor="multi")
    mislabelled = dataclasses.replace(lab_profile(7302), form_factor="micro")
    site.stock([good, mislabelled])
    older = site.order("nano")  # fifo would take this one; the slip names the other
    slip = site.order("micro")
    other = site.order("micro")
    reader, _ = fresh_card(good)
    scanned = f"{older}\n{good.iccid[:4]} {good.iccid[4:]}\n"
    events, _ = site.run("--reader", reader, "--exit-after", "1", input=scanned)
    [card] = outcomes(events)
    assert (card["result"], card["service_code"]) == ("pass", older)
    assert any(e["event"] == "scan" and "label" in e["message"] for e in events)

    reader, _ = fresh_card(mislabelled)
    before = snapshot(site.database)
    events, _ = site.run("--reader", reader, "--exit-after", "1", input=f"{slip}\n{good.iccid}\n")
    [card] = outcomes(events)
    assert (card["result"], card["rule"], card["service_code"]) == ("fail", "label-match", slip)
    after = snapshot(site.database)
    assert all(after[t] == before[t] for t in ("cards", "lines", "bindings"))
    assert site.bindings() == {good.iccid: older}
    assert other != slip


def test_diagnose_mode_gives_the_verdict_per_card(fresh_card: FreshCard, tmp_path: Path) -> None:
    site = BenchSite(tmp_path, {})
    healthy = lab_profile(7401)
    blocked = load_profile("blocked-pin")
    stranger = lab_profile(7402)
    site.stock([healthy, blocked])
    readers = [fresh_card(p)[0] for p in (healthy, blocked, stranger)]
    args = [a for reader in readers for a in ("--reader", reader)]
    events, _ = site.run(*args, "--mode", "diagnose", "--exit-after", "3")
    verdicts = {c["iccid"]: (c["result"], c["rule"]) for c in outcomes(events)}
    assert verdicts[healthy.iccid] == ("pass", None)
    assert verdicts[blocked.iccid] == ("fail", "recoverable")
    assert verdicts[stranger.iccid] == ("fail", "not-ours")
    with site.database.read() as session:
        reports = session.execute(
            select(AuditEvent.iccid).where(AuditEvent.action == "diagnose")
        ).scalars()
        assert sorted(str(i) for i in reports) == sorted(verdicts)


def test_return_mode_takes_cards_in_once(fresh_card: FreshCard, tmp_path: Path) -> None:
    site = BenchSite(tmp_path, {})
    lost = lab_profile(7501)
    site.stock([lost])
    with site.database.write() as session:
        session.execute(update(Card).where(Card.iccid == lost.iccid).values(state=CardState.LOST))
    reader, _ = fresh_card(lost)
    events, _ = site.run("--reader", reader, "--mode", "return", "--exit-after", "1")
    [card] = outcomes(events)
    assert card["result"] == "pass" and "lost-found" in card["message"]
    again, _ = site.run("--reader", reader, "--mode", "return", "--exit-after", "1")
    assert [c["result"] for c in outcomes(again)] == ["skip"]
    with site.database.read() as session:
        state = session.execute(select(Card.state).where(Card.iccid == lost.iccid)).scalar_one()
    assert state is CardState.LOST_FOUND


def test_bundled_router_configured_and_registered(
    fresh_card: FreshCard, tmp_path: Path, sim_modem: Any
) -> None:
    site = BenchSite(tmp_path, {})
    card = lab_profile(7601)
    site.stock([card])
    code = site.order(card.form_factor)
    reader, _ = fresh_card(card)
    events, _ = site.run(
        "--reader", reader, "--assign", "fifo", "--modem", sim_modem.port, "--exit-after", "1"
    )
    [outcome] = outcomes(events)
    assert (outcome["result"], outcome["service_code"]) == ("pass", code)
    with site.database.read() as session:
        devices = session.execute(select(Device.imei, Device.verified, Device.line_id)).all()
        line_id = session.execute(select(Line.id).where(Line.service_code == code)).scalar_one()
    assert [(verified, owner) for _, verified, owner in devices] == [(True, line_id)]


def test_serial_scanner(fresh_card: FreshCard, tmp_path: Path) -> None:
    """--scanner PORT: a barcode scanner on a serial line (here a real pty)."""
    site = BenchSite(tmp_path, {})
    card = lab_profile(7701)
    site.stock([card])
    site.order(None)
    wanted = site.order(card.form_factor)
    reader, _ = fresh_card(card)
    master, slave = os.openpty()
    events_path = tmp_path / "scanner.jsonl"
    bench = subprocess.Popen(
        site.command(
            *("--reader", reader, "--scanner", os.ttyname(slave)),
            *("--events", str(events_path), "--exit-after", "1"),
        ),
        env={**os.environ, **site.env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: any(e["event"] == "waiting-scan" for e in read_events(events_path)), bench)
        os.write(master, f"{wanted}\r\n".encode())
        _, err = bench.communicate(timeout=60)
        assert bench.returncode == 0, err
    finally:
        if bench.poll() is None:
            bench.kill()
        os.close(master)
        os.close(slave)
    [outcome] = outcomes(read_events(events_path))
    assert (outcome["result"], outcome["service_code"]) == ("pass", wanted)


def test_idle_exit_with_no_card(fresh_card: FreshCard, tmp_path: Path) -> None:
    site = BenchSite(tmp_path, {})
    reader, _ = fresh_card()
    lab = Lab.find()
    assert lab is not None
    lab.remove(lab.slot_of(reader))  # an empty reader: the bench sees no card at all
    events, plain = site.run("--reader", reader, "--idle-exit", "0.5", "--lang", "en", "--headless")
    assert [e["event"] for e in events] == ["start", "stop"]
    assert "bench started" in plain and "bench stopped" in plain
