"""Message catalogs: the PO reader, language choice, local times, and completeness."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from apdu.errors import UsageError
from simtool import i18n

ROOT = Path(__file__).resolve().parents[1]


def test_parse_po_handles_continuations_fuzzy_and_untranslated() -> None:
    text = "\n".join(
        [
            'msgid ""',
            'msgstr ""',
            '"Language: ja\\n"',
            "",
            "#: simtool/bench.py:10",
            'msgid "PASS"',
            'msgstr "合格"',
            "",
            "#, fuzzy",
            'msgid "FAIL"',
            'msgstr "不合格"',
            "",
            'msgid "card "',
            '"removed"',
            'msgstr ""',
            '"カードが"',
            '"抜かれました"',
            "",
            'msgid "untranslated"',
            'msgstr ""',
            "",
            'msgid "quote \\" and {slot}"',
            'msgstr "引用 \\" と {slot}"',
        ]
    )
    assert i18n.parse_po(text) == {
        "PASS": "合格",
        "card removed": "カードが抜かれました",
        'quote " and {slot}': '引用 " と {slot}',
    }


def test_parse_po_names_the_bad_line() -> None:
    with pytest.raises(ValueError, match=r"x\.po:2"):
        i18n.parse_po('msgid "a"\nmsgstr nonsense', "x.po")


@pytest.mark.parametrize(
    ("option", "env", "expected"),
    [
        ("ja", {}, "ja"),
        ("EN", {"LANG": "ja_JP.UTF-8"}, "en"),
        (None, {"SIMTOOL_LANG": "ja-JP"}, "ja"),
        (None, {"LANG": "ja_JP.UTF-8"}, "ja"),
        (None, {"LC_ALL": "C.UTF-8", "LANG": "ja_JP.UTF-8"}, "en"),
        (None, {}, "en"),
    ],
)
def test_language_from_option_environment_and_locale(
    monkeypatch: pytest.MonkeyPatch, option: str | None, env: dict[str, str], expected: str
) -> None:
    for name in ("SIMTOOL_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert i18n.resolve_language(option) == expected


def test_unknown_language_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown language 'fr'"):
        i18n.resolve_language("fr")


def test_translator_falls_back_to_english() -> None:
    ja = i18n.translator("ja")
    assert ja("Operator") == "作業者"
    assert ja("no such message") == "no such message"
    assert i18n.translator("en")("Operator") == "Operator"


def test_times_are_shown_in_tokyo_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIMTOOL_TZ", raising=False)
    moment = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    assert i18n.format_local_time(moment) == "2026-12-03 08:30:00 JST"
    assert i18n.format_local_time(moment.replace(tzinfo=None), "UTC") == "2026-12-02 23:30:00 UTC"
    with pytest.raises(UsageError, match="unknown time zone"):
        i18n.operator_timezone("Mars/Olympus")


def test_every_marked_message_has_a_japanese_translation() -> None:
    """What the code marks with _() or N_() must be in the Japanese catalog."""
    japanese = i18n.catalog("ja")
    missing: list[str] = []
    for package in ("simtool", "provisioning"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / package,
            method_map=[("**.py", "python")],
            keywords={"_": None, "N_": None},
        ):
            if isinstance(message, str) and message not in japanese:
                missing.append(f"{package}/{filename}:{lineno}: {message!r}")
    assert not missing, "untranslated messages:\n" + "\n".join(missing)


def test_catalog_files_parse() -> None:
    files = list(i18n.catalog_files("ja"))
    assert files, "no Japanese catalog"
    for path in files:
        assert i18n.parse_po(path.read_text(encoding="utf-8"), path.name)


def test_every_card_and_line_state_reads_in_japanese() -> None:
    """A technician reads states as words: every state the database has is in the catalog."""
    from provisioning.diagnosis import Finding
    from provisioning.lifecycle import CardState, LineState
    from simtool.diagnose_report import STATE_TEXT, describe, state_text

    codes = {state.value for state in CardState} | {state.value for state in LineState}
    assert set(STATE_TEXT) == codes
    japanese, english = i18n.translator("ja"), i18n.translator("en")
    for code in codes:
        assert state_text(code, japanese) != code, code
        assert state_text(code, english) == code
    assert state_text(CardState.IN_STOCK, japanese) == "在庫"
    finding = Finding(
        "card-known",
        "identity",
        "ok",
        {"state": "in-stock", "batch": "B1", "form_factor": "nano"},
    )
    assert "在庫" in describe(finding, japanese)
    assert "state in-stock" in describe(finding, english)


def test_every_emm_cause_reads_in_japanese() -> None:
    """The words of a registration reject (modem.codes) are in the catalog, every one."""
    from modem.codes import EMM_CAUSES

    japanese = i18n.catalog("ja")
    missing = [words for words in EMM_CAUSES.values() if not japanese.get(words)]
    assert missing == []
