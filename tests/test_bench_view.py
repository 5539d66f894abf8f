"""What the bench operator sees: the screen in Japanese and English, plain event lines,
the JSON event format, and the scanner's order slips and labels (pure logic)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from apdu.errors import SimtoolError
from provisioning.audit import Actor
from provisioning.database import Database
from simtool.bench.station import BenchConfig, BenchEvent, BenchStation, ScanQueue
from simtool.bench.view import event_line, render_bench
from simtool.i18n import translator

READERS = ["Simtool Lab 0 00 00", "Simtool Lab 0 00 01", "Simtool Lab 1 00 00"]
AT = datetime(2026, 12, 2, 11, 0, 5, tzinfo=UTC)  # 20:00:05 in Tokyo


def bench(tmp_path: Path) -> BenchStation:
    config = BenchConfig(
        database=Database(str(tmp_path / "lines.db")),
        actor=Actor(operator="tanaka", station="bench-3"),
        assign="scan",
    )
    labels = {name: f"lab:{n}" for n, name in enumerate(READERS)}
    station = BenchStation(config, READERS, [], labels=labels)
    passed, failed, waiting = (station.status[r] for r in READERS)
    passed.state, passed.iccid, passed.service_code = "pass", "8981090000000000004", "hdd1000001"
    passed.seconds, passed.changed_at = 0.42, AT
    failed.state, failed.iccid, failed.rule = "fail", "8981090000000000012", "form-factor-match"
    failed.seconds, failed.changed_at = 0.31, AT
    waiting.changed_at = AT
    station.totals.passed, station.totals.failed = 1, 1
    station.scans.put_text("hdd1000009")
    return station


def screen(lang: str, station: BenchStation) -> str:
    console = Console(record=True, width=160, force_terminal=False, color_system=None)
    console.print(render_bench(translator(lang), station, "Asia/Tokyo"))
    return console.export_text()


def test_screen_in_japanese(tmp_path: Path) -> None:
    text = screen("ja", bench(tmp_path))
    for expected in ("合格", "不合格", "サイズ違い", "カード待ち", "注文 hdd1000001", "枚/分"):
        assert expected in text, expected
    assert "ステーション bench-3" in text and "作業者 tanaka" in text
    assert "20:00:05" in text and "lab:0" in text and "lab:2" in text
    assert "hdd1000009" in text  # a scanned order waiting for its card
    for english in ("PASS", "FAIL", "wrong form factor", "waiting for a card"):
        assert english not in text


def test_screen_in_english(tmp_path: Path) -> None:
    text = screen("en", bench(tmp_path))
    for expected in ("PASS", "FAIL", "wrong form factor", "waiting for a card", "order hdd1000001"):
        assert expected in text, expected
    assert "cards per minute" in text and "JST" in text
    assert "合格" not in text


def test_plain_lines_and_json_events() -> None:
    event = BenchEvent(
        "card",
        AT,
        reader="lab:1",
        iccid="8981090000000000012",
        result="fail",
        rule="pin1-default",
        seconds=0.5123,
        message="PIN1 is blocked",
    )
    assert json.loads(json.dumps(event.to_json())) == {
        "event": "card",
        "at": "2026-12-02T11:00:05+00:00",
        "reader": "lab:1",
        "iccid": "8981090000000000012",
        "result": "fail",
        "service_code": None,
        "rule": "pin1-default",
        "seconds": 0.512,
        "message": "PIN1 is blocked",
    }
    assert event_line(translator("ja"), event, "Asia/Tokyo") == (
        "20:00:05  lab:1  不合格  8981090000000000012  PINが初期値でない、またはロック  0.51 s"
    )
    assert event_line(translator("en"), event, "Asia/Tokyo") == (
        "20:00:05  lab:1  FAIL  8981090000000000012  PIN not default or blocked  0.51 s"
    )
    started = BenchEvent("start", AT, message="4 readers, provision")
    assert started.to_json() == {
        "event": "start",
        "at": "2026-12-02T11:00:05+00:00",
        "message": "4 readers, provision",
    }


def test_scans_pair_order_slips_with_labels() -> None:
    scans = ScanQueue()
    assert scans.put_text(" hdd1000001\n") == "order"
    assert scans.put_text("8981 0900 0000 0000 004") == "label"
    assert scans.put_text("hdd1000002") == "order"
    first = scans.take(0)
    assert first is not None
    assert (first.service_code, first.label_iccid) == ("hdd1000001", "8981090000000000004")
    assert scans.pending() == ["hdd1000002"]
    second = scans.take(0)
    assert second is not None and second.label_iccid is None
    assert scans.take(0) is None
    with pytest.raises(SimtoolError):
        scans.put_text("8981090000000000005")  # bad Luhn digit: a misread label
    with pytest.raises(SimtoolError):
        scans.put_text("not a barcode")
