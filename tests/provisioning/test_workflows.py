"""The warehouse workflows end to end on the database, with cards given as data.

Each runs on SQLite and on PostgreSQL. A refused workflow must leave every
table exactly as it was, and must not have touched the card's PIN when a
database check already failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from provisioning.audit import Actor, verify_audit
from provisioning.cardfacts import PinOutcome, PinOutcomeKind, StaticCard
from provisioning.database import Database
from provisioning.devices import DeviceFacts
from provisioning.errors import (
    CheckFailedError,
    ConcurrentChangeError,
    LifecycleError,
    NotFoundError,
    RefusedError,
)
from provisioning.exports import export_imei_list, shift_report
from provisioning.identifiers import luhn_check_digit
from provisioning.lifecycle import CardState, FormFactor, LineState, ReissueReason, Rule
from provisioning.lines import LineSpec, add_line
from provisioning.models import AuditEvent, Card
from provisioning.records import show_card, show_line
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from provisioning.stockfile import StockRow
from provisioning.workflows import (
    LineRef,
    cancel_line,
    change_form_factor,
    provision,
    reissue,
    report_lost,
    resume,
    return_card,
    suspend,
)
from tests.provisioning.helpers import Stock, chip, snapshot

NANO, MICRO, MULTI = FormFactor.NANO, FormFactor.MICRO, FormFactor.MULTI


@dataclass
class Bench:
    """A station with stock on its shelves and lines waiting for cards."""

    database: Database
    keyring: Keyring
    actor: Actor
    nano: list[StockRow]
    micro: list[StockRow]
    multi: list[StockRow]
    lines: int = 0

    def line(
        self,
        *,
        network_type: str = "D",
        function_class: str = "data",
        identity_verified: bool = False,
        customer: str = "MA100",
        **extra: Any,
    ) -> str:
        self.lines += 1
        code = f"hdd{7000000 + self.lines}"
        add_line(
            self.database,
            self.actor,
            LineSpec.parse(
                service_code=code,
                msisdn=f"070{10000000 + self.lines:08d}",
                customer=customer,
                network_type=network_type,
                function_class=function_class,
                identity_verified=identity_verified,
                **extra,
            ),
        )
        return code

    def provision(
        self, code: str, row: StockRow, form_factor: FormFactor = NANO, **kwargs: Any
    ) -> object:
        card = kwargs.pop("card", None) or chip(row)
        return provision(
            self.database,
            self.actor,
            service_code=code,
            form_factor=form_factor,
            card=card,
            keyring=self.keyring,
            **kwargs,
        )

    def state(self, row: StockRow) -> CardState:
        return show_card(self.database, row.iccid).state


@pytest.fixture
def bench(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> Iterator[Bench]:
    nano = stock(8, first_serial=100, form_factor=NANO)
    micro = stock(4, first_serial=200, form_factor=MICRO)
    multi = stock(4, first_serial=300, form_factor=MULTI)
    for file in (nano, micro, multi):
        import_stock(database, keyring, actor, file.path)
    yield Bench(database, keyring, actor, nano.rows, micro.rows, multi.rows)
    assert verify_audit(database).ok


def refused(
    bench: Bench, action: Callable[[], object], error: type[Exception] = CheckFailedError
) -> Exception:
    """Run an action that must be refused; prove that it wrote nothing."""
    before = snapshot(bench.database)
    with pytest.raises(error) as failure:
        action()
    assert snapshot(bench.database) == before
    if isinstance(failure.value, RefusedError):  # every refusal is on the record
        with bench.database.read() as session:
            last = session.execute(
                select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)
            ).scalar_one()
        assert last.result == "refused"
        assert json.loads(last.details)["rule"] == failure.value.rule
    return failure.value


# -- provision ------------------------------------------------------------


def test_provision_binds_card_and_line(bench: Bench) -> None:
    code = bench.line()
    calls: list[str] = []
    result = bench.provision(
        code,
        bench.nano[0],
        card=chip(bench.nano[0], calls=calls),
        scanned_iccid=bench.nano[0].iccid,
    )
    assert calls == ["read_facts", "ensure_default_pin"]
    assert [c.name for c in result.checks] == [  # type: ignore[attr-defined]
        "chip-iccid",
        "label",
        "in-stock",
        "network-type",
        "form-factor",
        "combination",
        "identity",
        "pin1-state",
        "imsi",
        "pin1-default",
    ]
    card = show_card(bench.database, bench.nano[0].iccid)
    assert (card.state, card.service_code) == (CardState.ACTIVE, code)
    line = show_line(bench.database, code)
    assert (line.state, line.current_iccid) == (LineState.ACTIVE, bench.nano[0].iccid)
    assert [e.action for e in line.history] == ["line-add", "provision"]
    assert line.history[-1].operator == "tanaka" and line.history[-1].station == "bench-1"


def test_vendor_pin1_is_handed_to_the_pin_policy(bench: Bench) -> None:
    seen: list[str | None] = []

    class Recording(StaticCard):
        def ensure_default_pin(self, known_pin: str | None) -> PinOutcome:
            seen.append(known_pin)
            return super().ensure_default_pin(known_pin)

    plain = chip(bench.nano[0])
    card = Recording(plain.facts, plain.pin_outcome, plain.imsi_after_pin)
    bench.provision(bench.line(), bench.nano[0], card=card)
    assert seen == [bench.nano[0].secrets.pin1]


def test_wrong_form_factor_is_refused_before_the_pin(bench: Bench) -> None:
    code = bench.line()
    calls: list[str] = []
    error = refused(
        bench,
        lambda: bench.provision(code, bench.nano[0], MICRO, card=chip(bench.nano[0], calls=calls)),
    )
    assert isinstance(error, CheckFailedError)
    assert error.rule == Rule.FORM_FACTOR_MATCH
    assert "nano SIM, the order asks for micro" in str(error)
    assert [(c.name, c.passed) for c in error.checks][-1] == ("form-factor", False)
    assert calls == ["read_facts"]
    assert bench.state(bench.nano[0]) is CardState.IN_STOCK


@pytest.mark.parametrize(
    ("case", "rule"),
    [
        ("label", Rule.LABEL_MATCH),
        ("imsi", Rule.IMSI_MATCH),
        ("unknown-card", Rule.STOCK_ONLY),
        ("pin-blocked", Rule.PIN_DEFAULT),
        ("card-dead", Rule.PIN_DEFAULT),
        ("bad-iccid", Rule.CHIP_ICCID),
    ],
)
def test_each_check_refuses_before_the_pin(bench: Bench, case: str, rule: Rule) -> None:
    code = bench.line()
    row = bench.nano[1]
    calls: list[str] = []
    unknown = "898110000000009999" + str(luhn_check_digit("898110000000009999"))
    card = {
        "label": chip(row, calls=calls),
        "imsi": chip(row, imsi="440109999999999", calls=calls),
        "unknown-card": chip(row, iccid=unknown, calls=calls),
        "pin-blocked": chip(row, pin1_blocked=True, calls=calls),
        "card-dead": chip(row, puk1_blocked=True, calls=calls),
        "bad-iccid": chip(row, iccid="8981100000000000000", calls=calls),
    }[case]
    scan = bench.nano[2].iccid if case == "label" else None
    error = refused(bench, lambda: bench.provision(code, row, card=card, scanned_iccid=scan))
    assert isinstance(error, CheckFailedError) and error.rule == rule
    assert calls == ["read_facts"]


def test_pin_that_cannot_be_proven_is_refused(bench: Bench) -> None:
    code = bench.line()
    cannot = PinOutcome(PinOutcomeKind.CANNOT_PROVE, "PIN1 counter is 2 of 3")
    error = refused(
        bench, lambda: bench.provision(code, bench.nano[0], card=chip(bench.nano[0], pin=cannot))
    )
    assert isinstance(error, CheckFailedError) and error.rule == Rule.PIN_DEFAULT
    assert "PIN1 counter is 2 of 3" in str(error)


def test_protected_imsi_is_checked_after_pin1(bench: Bench) -> None:
    row = bench.nano[0]
    calls: list[str] = []
    bench.provision(bench.line(), row, card=chip(row, imsi_protected=True, calls=calls))
    assert calls == ["read_facts", "ensure_default_pin", "read_imsi"]
    other = bench.nano[1]
    card = chip(other, imsi_protected=True)
    card.imsi_after_pin = "440109999999999"
    code = bench.line()
    error = refused(bench, lambda: bench.provision(code, other, card=card))
    assert isinstance(error, CheckFailedError) and error.rule == Rule.IMSI_MATCH


def test_combination_type_and_identity_rules(bench: Bench) -> None:
    k_voice = bench.line(network_type="K", function_class="voice", identity_verified=True)
    error = refused(bench, lambda: bench.provision(k_voice, bench.multi[0], MULTI))
    assert isinstance(error, CheckFailedError) and error.rule == Rule.NETWORK_TYPE_MATCH
    voice = bench.line(function_class="voice")
    error = refused(bench, lambda: bench.provision(voice, bench.nano[0]))
    assert isinstance(error, CheckFailedError) and error.rule == Rule.VOICE_IDENTITY
    verified = bench.line(function_class="voice", identity_verified=True)
    bench.provision(verified, bench.nano[0])
    assert bench.state(bench.nano[0]) is CardState.ACTIVE


def test_line_must_be_pending_and_card_in_stock(bench: Bench) -> None:
    code = bench.line()
    bench.provision(code, bench.nano[0])
    error = refused(bench, lambda: bench.provision(code, bench.nano[1]), LifecycleError)
    assert isinstance(error, LifecycleError) and error.rule == Rule.LINE_STATE
    other = bench.line()
    error = refused(bench, lambda: bench.provision(other, bench.nano[0]))
    assert isinstance(error, CheckFailedError) and error.rule == Rule.STOCK_ONLY
    with pytest.raises(NotFoundError):
        bench.provision("hdd999", bench.nano[1])


def test_card_taken_meanwhile_loses_cleanly(bench: Bench) -> None:
    """Another station binds the card while this one is checking its PIN."""
    first, second = bench.line(), bench.line()
    row = bench.nano[0]

    class Contested(StaticCard):
        def ensure_default_pin(self, known_pin: str | None) -> PinOutcome:
            bench.provision(first, row)  # the other station wins in the meantime
            return super().ensure_default_pin(known_pin)

    plain = chip(row)
    with pytest.raises(ConcurrentChangeError) as lost:
        bench.provision(
            second, row, card=Contested(plain.facts, plain.pin_outcome, plain.imsi_after_pin)
        )
    assert lost.value.kind == "card" and "another station" in str(lost.value)
    assert show_line(bench.database, second).state is LineState.PENDING
    assert show_card(bench.database, row.iccid).service_code == first


def test_line_taken_meanwhile_loses_cleanly(bench: Bench) -> None:
    """Another station provisions the same line with another card meanwhile."""
    code = bench.line()
    mine, theirs = bench.nano[0], bench.nano[1]

    class Contested(StaticCard):
        def ensure_default_pin(self, known_pin: str | None) -> PinOutcome:
            bench.provision(code, theirs)  # the other station wins in the meantime
            return super().ensure_default_pin(known_pin)

    plain = chip(mine)
    with pytest.raises(ConcurrentChangeError) as lost:
        bench.provision(
            code, mine, card=Contested(plain.facts, plain.pin_outcome, plain.imsi_after_pin)
        )
    assert lost.value.kind == "line" and "it is now active" in str(lost.value)
    # Nothing of this station's write stayed: the card is still in stock, unbound.
    card = show_card(bench.database, mine.iccid)
    assert (card.state, card.service_code) == (CardState.IN_STOCK, None)
    assert show_card(bench.database, theirs.iccid).service_code == code
    assert verify_audit(bench.database).ok


# -- loss, return, reissue ----------------------------------------------


def test_lost_card_is_never_reused_even_when_found(bench: Bench) -> None:
    code = bench.line()
    row = bench.nano[0]
    bench.provision(code, row)
    lost = report_lost(bench.database, bench.actor, LineRef(service_code=code))
    assert (lost.line_state, lost.card_state) == (LineState.SUSPENDED, CardState.LOST)
    error = refused(
        bench,
        lambda: resume(bench.database, bench.actor, LineRef(service_code=code)),
        LifecycleError,
    )
    assert isinstance(error, LifecycleError) and error.rule == Rule.LOST_NEEDS_REISSUE
    found = return_card(bench.database, bench.actor, iccid=row.iccid)
    assert (found.state, found.never_reuse) == (CardState.LOST_FOUND, True)
    assert "never reuse" in found.disposition
    assert show_card(bench.database, row.iccid).never_reuse
    waiting = bench.line()
    error = refused(bench, lambda: bench.provision(waiting, row))
    assert isinstance(error, CheckFailedError) and error.rule == Rule.LOST_NEVER_REUSED
    error = refused(
        bench, lambda: return_card(bench.database, bench.actor, iccid=row.iccid), LifecycleError
    )
    assert isinstance(error, LifecycleError) and error.rule == Rule.RETURNED_CLOSED


def test_reissue_after_loss_resumes_the_line(bench: Bench) -> None:
    code = bench.line()
    old, new = bench.nano[0], bench.nano[1]
    bench.provision(code, old)
    error = refused(
        bench,
        lambda: reissue(
            bench.database,
            bench.actor,
            service_code=code,
            reason=ReissueReason.LOST,
            card=chip(new),
        ),
        LifecycleError,
    )
    assert isinstance(error, LifecycleError) and error.rule == Rule.CARD_STATE
    report_lost(
        bench.database, bench.actor, LineRef(msisdn=show_line(bench.database, code).msisdn or "")
    )
    result = reissue(
        bench.database,
        bench.actor,
        service_code=code,
        reason=ReissueReason.LOST,
        card=chip(new),
        keyring=bench.keyring,
    )
    assert (result.line_state, result.old_card_state, result.fee) == (
        LineState.ACTIVE,
        CardState.LOST,
        "reissue",
    )
    line = show_line(bench.database, code)
    assert (line.current_iccid, line.state) == (new.iccid, LineState.ACTIVE)
    assert [(b.iccid, b.reason, b.fee, b.unbound_at is None) for b in line.cards] == [
        (old.iccid, "provision", None, False),
        (new.iccid, "reissue-lost", "reissue", True),
    ]
    assert line.msisdn == "070-1000-0001"  # the same phone number


def test_faulty_reissue_carries_usage_and_quota(bench: Bench) -> None:
    code = bench.line()
    old, new = bench.nano[0], bench.nano[1]
    bench.provision(code, old)
    with bench.database.write() as session:
        session.execute(
            update(Card).where(Card.iccid == old.iccid).values(usage_mb=1234, quota_mb=560)
        )
    result = reissue(
        bench.database,
        bench.actor,
        service_code=code,
        reason=ReissueReason.FAULTY,
        card=chip(new),
        scanned_iccid=new.iccid,
    )
    assert result.carried_over == {"usage_mb": 1234, "quota_mb": 560}
    assert bench.state(old) is CardState.FAULTY
    moved = show_card(bench.database, new.iccid)
    assert (moved.state, moved.usage_mb, moved.quota_mb) == (CardState.ACTIVE, 1234, 560)
    assert show_card(bench.database, old.iccid).usage_mb == 0
    assert return_card(bench.database, bench.actor, iccid=old.iccid).state is CardState.RETURNED


def test_reissue_checks_the_new_card_like_a_provision(bench: Bench) -> None:
    code = bench.line()
    bench.provision(code, bench.nano[0])
    error = refused(
        bench,
        lambda: reissue(
            bench.database,
            bench.actor,
            service_code=code,
            reason=ReissueReason.FAULTY,
            card=chip(bench.micro[0]),
        ),
    )
    assert isinstance(error, CheckFailedError) and error.rule == Rule.FORM_FACTOR_MATCH
    pending = bench.line()
    error = refused(
        bench,
        lambda: reissue(
            bench.database,
            bench.actor,
            service_code=pending,
            reason=ReissueReason.FAULTY,
            card=chip(bench.nano[1]),
        ),
        LifecycleError,
    )
    assert isinstance(error, LifecycleError) and error.rule == Rule.LINE_STATE


# -- form factor change -----------------------------------------------


def test_form_factor_change_invalidates_the_old_card(bench: Bench) -> None:
    code = bench.line()
    old, new = bench.nano[0], bench.micro[0]
    bench.provision(code, old)
    with bench.database.write() as session:
        session.execute(update(Card).where(Card.iccid == old.iccid).values(usage_mb=77, quota_mb=3))
    error = refused(
        bench,
        lambda: change_form_factor(
            bench.database,
            bench.actor,
            service_code=code,
            form_factor=NANO,
            card=chip(bench.nano[1]),
        ),
        LifecycleError,
    )
    assert isinstance(error, LifecycleError) and error.rule == Rule.FORM_FACTOR_CHANGE
    result = change_form_factor(
        bench.database,
        bench.actor,
        service_code=code,
        form_factor=MICRO,
        card=chip(new),
        keyring=bench.keyring,
    )
    assert (result.old_card_state, result.fee, result.carried_over) == (
        CardState.REPLACED,
        "form-factor-change",
        {"usage_mb": 77, "quota_mb": 3},
    )
    assert bench.state(old) is CardState.REPLACED
    line = show_line(bench.database, code)
    assert (line.current_iccid, line.state) == (new.iccid, LineState.ACTIVE)
    with pytest.raises(CheckFailedError):  # the replaced card cannot come back
        bench.provision(bench.line(), old)


# -- suspend, resume, cancel, return --------------------------------------


def test_suspend_and_resume_by_number_or_card(bench: Bench) -> None:
    code = bench.line()
    row = bench.nano[0]
    bench.provision(code, row)
    msisdn = show_line(bench.database, code).msisdn or ""
    assert (
        suspend(bench.database, bench.actor, LineRef(msisdn=msisdn)).line_state
        is LineState.SUSPENDED
    )
    refused(
        bench,
        lambda: suspend(bench.database, bench.actor, LineRef(iccid=row.iccid)),
        LifecycleError,
    )
    assert (
        resume(bench.database, bench.actor, LineRef(iccid=row.iccid)).line_state is LineState.ACTIVE
    )
    with pytest.raises(NotFoundError):
        suspend(bench.database, bench.actor, LineRef(iccid=bench.nano[5].iccid))


def test_cancel_then_return(bench: Bench) -> None:
    code = bench.line()
    row = bench.nano[0]
    bench.provision(code, row)
    error = refused(
        bench, lambda: return_card(bench.database, bench.actor, iccid=row.iccid), LifecycleError
    )
    assert isinstance(error, LifecycleError) and error.rule == Rule.RETURN_NEEDS_CANCELLED_LINE
    cancelled = cancel_line(bench.database, bench.actor, LineRef(service_code=code))
    assert (cancelled.line_state, cancelled.card_state) == (
        LineState.CANCELLED,
        CardState.AWAITING_RETURN,
    )
    assert cancelled.note == "the card must be returned"
    back = return_card(bench.database, bench.actor, card=chip(row))
    assert (back.previous_state, back.state, back.never_reuse) == (
        CardState.AWAITING_RETURN,
        CardState.RETURNED,
        False,
    )
    assert back.service_code == code
    refused(
        bench,
        lambda: return_card(bench.database, bench.actor, iccid=bench.nano[3].iccid),
        LifecycleError,
    )


def test_type_i_cards_need_not_come_back(
    bench: Bench, tmp_path: Path, stock: Callable[..., Stock]
) -> None:
    type_i = stock(2, first_serial=900, form_factor=MULTI)
    from provisioning.lifecycle import NetworkType

    import_stock(
        bench.database, bench.keyring, bench.actor, type_i.path, network_type=NetworkType.I
    )
    code = bench.line(network_type="I", contract_type="monthly", activation_trigger="attach")
    bench.provision(code, type_i.row(0), MULTI)
    cancelled = cancel_line(bench.database, bench.actor, LineRef(service_code=code))
    assert cancelled.card_state is CardState.RETIRED
    assert cancelled.note == "the card need not be returned"


def test_type_i_prepaid_four_year_rule_blocks_work_on_the_line(
    bench: Bench, stock: Callable[..., Stock]
) -> None:
    from provisioning.lifecycle import NetworkType

    type_i = stock(3, first_serial=950, form_factor=NANO)
    import_stock(
        bench.database, bench.keyring, bench.actor, type_i.path, network_type=NetworkType.I
    )
    long_ago = datetime.now(UTC).date() - timedelta(days=5 * 365)
    code = bench.line(
        network_type="I",
        contract_type="prepaid",
        activation_trigger="manual",
        delivered_on=long_ago,
    )
    bench.provision(code, type_i.row(0))
    record = show_line(bench.database, code)
    assert not record.type_i_valid and record.type_i_deadline is not None
    error = refused(
        bench,
        lambda: reissue(
            bench.database,
            bench.actor,
            service_code=code,
            reason=ReissueReason.FAULTY,
            card=chip(type_i.row(1)),
        ),
        LifecycleError,
    )
    assert isinstance(error, LifecycleError) and error.rule == Rule.TYPE_I_PREPAID_4_YEARS
    suspend(bench.database, bench.actor, LineRef(service_code=code))
    error = refused(
        bench,
        lambda: resume(bench.database, bench.actor, LineRef(service_code=code)),
        LifecycleError,
    )
    assert isinstance(error, LifecycleError) and error.rule == Rule.TYPE_I_PREPAID_4_YEARS
    activated = bench.line(
        network_type="I",
        contract_type="prepaid",
        activation_trigger="manual",
        delivered_on=long_ago,
        activation_date=long_ago + timedelta(days=30),
    )
    assert show_line(bench.database, activated, today=date.today()).type_i_valid


# -- devices, exports, reports --------------------------------------------


def test_imei_list_pairs_nothing(bench: Bench) -> None:
    devices = {"356938035643809": 0, "490154203237518": 1, "353918057234961": 2}
    codes = []
    for imei, index in sorted(devices.items(), key=lambda item: item[1], reverse=True):
        code = bench.line(customer="MA555")
        codes.append(code)
        bench.provision(
            code,
            bench.nano[index],
            device=DeviceFacts(
                imei=imei, maker="Quectel", model="EC25", apn_profile="ijmio.jp/PAP"
            ),
        )
    bench.provision(bench.line(customer="MA555"), bench.nano[4])  # no device: not listed
    bench.provision(
        bench.line(customer="MA999"), bench.nano[5], device=DeviceFacts(imei="357805023984942")
    )
    listing = export_imei_list(bench.database, bench.actor, "MA555")
    assert listing.service_codes == tuple(sorted(codes))
    assert listing.imeis == tuple(sorted(devices))
    # Sorted independently: the positions say nothing about which card went with which device.
    paired = {show_line(bench.database, code).devices[0].imei: code for code in codes}
    assert [paired[imei] for imei in listing.imeis] != list(listing.service_codes)
    code = bench.line()
    error = refused(
        bench,
        lambda: bench.provision(code, bench.nano[6], device=DeviceFacts(imei="356938035643809")),
    )
    assert isinstance(error, CheckFailedError) and "already registered" in str(error)


def test_shift_report_counts_this_stations_actions(bench: Bench) -> None:
    started = datetime.now(UTC)
    code = bench.line()
    bench.provision(code, bench.nano[0])
    other = Actor(operator="suzuki", station="bench-2")
    add_line(
        bench.database,
        other,
        LineSpec.parse(
            service_code="hdd8000001",
            msisdn=None,
            customer="MA1",
            network_type="D",
            function_class="sms",
        ),
    )
    report = shift_report(
        bench.database, "bench-1", started, datetime.now(UTC) + timedelta(seconds=1)
    )
    assert report.totals == {"line-add:ok": 1, "provision:passed": 1}
    assert [e.action for e in report.events] == ["line-add", "provision"]
    assert report.chain_head_hash == verify_audit(bench.database).head_hash


def test_secrets_absent_from_every_result(bench: Bench) -> None:
    from simtool.output import to_jsonable

    code = bench.line()
    row = bench.nano[0]
    results = [
        bench.provision(code, row),
        show_card(bench.database, row.iccid),
        show_line(bench.database, code),
        report_lost(bench.database, bench.actor, LineRef(service_code=code)),
        return_card(bench.database, bench.actor, iccid=row.iccid),
    ]
    text = repr(results) + str(to_jsonable(results))
    secrets = row.secrets
    for value in (secrets.puk1, secrets.puk2, secrets.pin2, secrets.adm1):
        assert value and value not in text
    for key in (secrets.ki, secrets.opc):
        assert key and key.hex() not in text.lower()
    with bench.database.read() as session:
        details = session.execute(select(Card.secrets)).scalars().all()
    assert all(row.secrets.puk1 and row.secrets.puk1.encode() not in blob for blob in details)


def test_bundled_modem_is_configured_and_registered(bench: Bench) -> None:
    from modem.profiles import resolve_profile
    from provisioning.devices import BundledModem

    code = bench.line(customer="MA777")
    result = bench.provision(
        code, bench.nano[0], bundled_modem=BundledModem("simmodem://quectel", resolve_profile(None))
    )
    [device] = show_line(bench.database, code).devices
    assert (device.maker, device.model, device.apn_profile) == ("Quectel", "EC25", "ijmio")
    assert result.device_imei == device.imei  # type: ignore[attr-defined]
    assert export_imei_list(bench.database, bench.actor, "MA777").imeis == (device.imei,)


@dataclass
class FakeModem:
    """A bundled device whose configuration outcome is given; records whether it was used."""

    facts: DeviceFacts
    configured: int = 0

    def configure(self) -> DeviceFacts:
        self.configured += 1
        return self.facts


def test_bundled_modem_only_after_the_card_passed_and_only_when_proven(bench: Bench) -> None:
    code = bench.line()
    modem = FakeModem(DeviceFacts(imei="356938035643809", apn_profile="ijmio", verified=True))
    refused(bench, lambda: bench.provision(code, bench.nano[0], MICRO, bundled_modem=modem))
    assert modem.configured == 0  # a refused card never gets its modem configured
    unproven = FakeModem(DeviceFacts(imei="356938035643809", apn_profile="ijmio", verified=False))
    error = refused(bench, lambda: bench.provision(code, bench.nano[0], bundled_modem=unproven))
    assert isinstance(error, CheckFailedError) and error.rule == Rule.DEVICE_CONFIGURED
    assert unproven.configured == 1


# -- devices configured on the bench (issue 5: configure --service-code) ------------


def test_register_device_records_it_with_an_audit_event(bench: Bench) -> None:
    from provisioning.workflows import register_device

    code = bench.line()
    bench.provision(code, bench.nano[0])
    device = DeviceFacts(
        imei="356938035643809",
        maker="Quectel",
        model="EC25",
        firmware="EC25EFAR06A06M4G",
        apn_profile="ijmio",
        verified=True,
    )
    first = register_device(bench.database, bench.actor, LineRef(service_code=code), device)
    assert first.created and first.verified
    again = register_device(bench.database, bench.actor, LineRef(service_code=code), device)
    assert not again.created and again.audit_seq == first.audit_seq + 1
    exported = export_imei_list(bench.database, bench.actor, customer="MA100")
    assert "356938035643809" in str(exported)
    assert verify_audit(bench.database).ok


def test_register_device_of_another_line_is_refused_and_writes_nothing(bench: Bench) -> None:
    from provisioning.workflows import register_device

    first, second = bench.line(), bench.line()
    device = DeviceFacts(imei="356938035643809", apn_profile="ijmio", verified=True)
    register_device(bench.database, bench.actor, LineRef(service_code=first), device)
    before = snapshot(bench.database)
    with pytest.raises(LifecycleError) as info:
        register_device(bench.database, bench.actor, LineRef(service_code=second), device)
    assert info.value.rule == Rule.DEVICE_ONCE.value
    assert snapshot(bench.database) == before


def test_unverified_device_is_recorded_as_such(bench: Bench) -> None:
    from provisioning.workflows import register_device

    code = bench.line()
    result = register_device(
        bench.database,
        bench.actor,
        LineRef(service_code=code),
        DeviceFacts(imei="356938035643809", verified=False),
    )
    assert result.verified is False
    with bench.database.read() as session:
        from provisioning.models import Device

        assert session.execute(select(Device.verified)).scalar_one() is False
