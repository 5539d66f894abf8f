"""Lines: added one by one or from a file (all or nothing, idempotent), updated."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from apdu.errors import ParseError, UsageError
from provisioning.audit import Actor
from provisioning.database import Database
from provisioning.errors import InputFileError, LifecycleError, NotFoundError
from provisioning.lifecycle import LineState, NetworkType, Rule
from provisioning.lines import LineSpec, add_line, import_lines, update_line
from provisioning.records import show_line
from tests.provisioning.helpers import snapshot


def spec(
    code: str = "hdd1000001", msisdn: str | None = "070-1111-2222", **extra: object
) -> LineSpec:
    values: dict[str, object] = {
        "service_code": code,
        "msisdn": msisdn,
        "customer": "MA42",
        "network_type": "D",
        "function_class": "data",
    }
    values.update(extra)
    return LineSpec.parse(**values)  # type: ignore[arg-type]


def test_line_spec_checks_fields_and_rules() -> None:
    line = spec(network_type="d", function_class="VOICE", identity_verified=True)
    assert (line.network_type, line.msisdn, line.identity_verified) == (
        NetworkType.D,
        "07011112222",
        True,
    )
    with pytest.raises(ParseError, match="service code"):
        spec(code="abc")
    with pytest.raises(ParseError, match="network type"):
        spec(network_type="X")
    with pytest.raises(LifecycleError) as refused:
        spec(network_type="K", function_class="data")
    assert refused.value.rule == Rule.ALLOWED_COMBINATION
    with pytest.raises(LifecycleError) as refused:
        spec(network_type="I", function_class="data")
    assert refused.value.rule == Rule.TYPE_I_CONTRACT


def test_add_and_update(database: Database, actor: Actor) -> None:
    added = add_line(database, actor, spec())
    assert added.state is LineState.PENDING
    with pytest.raises(UsageError, match="already exists"):
        add_line(database, actor, spec())
    with pytest.raises(UsageError, match="phone number"):
        add_line(database, actor, spec(code="hdd1000002"))
    updated = update_line(
        database, actor, "hdd1000001", identity_verified=True, delivered_on=date(2026, 5, 1)
    )
    assert updated.changed == {"identity_verified": "yes", "delivered_on": "2026-05-01"}
    assert update_line(database, actor, "hdd1000001", identity_verified=True).changed == {}
    record = show_line(database, "hdd1000001")
    assert record.identity_verified and record.delivered_on == date(2026, 5, 1)
    assert [e.action for e in record.history] == ["line-add", "line-update"]
    with pytest.raises(UsageError, match="withdrawn"):
        update_line(database, actor, "hdd1000001", identity_verified=False)
    with pytest.raises(NotFoundError):
        update_line(database, actor, "hdd404", identity_verified=True)


LINE_FILE = """SERVICE_CODE,MSISDN,CUSTOMER,TYPE,FUNCTION,IDENTITY_VERIFIED,CONTRACT,ACTIVATION
hdd2000001,070-2000-0001,MA1,D,data,,,
hdd2000002,080-2000-0002,MA1,D,voice,yes,,
hdd2000003,,MA2,I,data,no,prepaid,manual
hdd2000004,090-2000-0004,MA2,K,sms,,,
"""


def test_import_file_all_or_nothing_and_idempotent(
    database: Database, actor: Actor, tmp_path: Path
) -> None:
    path = tmp_path / "lines.csv"
    path.write_text(LINE_FILE)
    first = import_lines(database, actor, path)
    assert (first.added, first.unchanged) == (4, 0)
    again = import_lines(database, actor, path)
    assert (again.added, again.unchanged, again.audit_seq) == (0, 4, None)
    assert show_line(database, "hdd2000002").identity_verified
    assert show_line(database, "hdd2000003").contract_type == "prepaid"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        LINE_FILE.replace(
            "hdd2000004,090-2000-0004,MA2,K,sms", "hdd2000004,090-2000-0004,MA2,K,voice"
        )
        + "hdd2000005,070-2000-0001,MA3,D,data,,,\n"
        + "hdd2000006,070-3000-0006,MA3,K,data,,,\n"
        + "hdd2000007,070-3000-0007,MA3,D,data,,,\n"
        + "hdd2000007,070-3000-0008,MA3,D,data,,,\n"
        + "hdd2000008,070-3000-0009,XX,D,data,maybe,,\n"
    )
    before = snapshot(database)
    with pytest.raises(InputFileError) as failed:
        import_lines(database, actor, bad)
    problems = {(p.line, p.field) for p in failed.value.problems}
    assert problems == {
        (5, "SERVICE_CODE"),  # hdd2000004 exists with other facts
        (6, "MSISDN"),  # number of hdd2000001
        (7, "TYPE"),  # type K offers no data lines
        (9, "SERVICE_CODE"),  # hdd2000007 twice in the file
        (10, "CUSTOMER"),
        (10, "IDENTITY_VERIFIED"),
    }
    assert snapshot(database) == before


def test_line_file_needs_its_columns(database: Database, actor: Actor, tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("SERVICE_CODE,CUSTOMER\nhdd1,MA1\n")
    with pytest.raises(InputFileError) as failed:
        import_lines(database, actor, path)
    assert {p.field for p in failed.value.problems} == {"MSISDN", "TYPE", "FUNCTION"}
