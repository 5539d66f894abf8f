"""Card profiles: the named JSON profiles, the lab's stock, and secrecy of secrets."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import ParseError, UsageError
from apdu.files import decode_iccid, encode_iccid, luhn_valid
from apdu.virtual import CardProfile, lab_profile, load_profile
from apdu.virtual.profile import DEFAULT_ATR, PROFILE_NAMES, save_profile

SECRET_FIELDS = ("pin1", "pin2", "puk1", "puk2", "adm1", "ki", "opc")


def tck_ok(atr: bytes) -> bool:
    check = 0
    for byte in atr[1:]:
        check ^= byte
    return check == 0


def test_default_atr_offers_t0_and_t15_with_tck() -> None:
    expected = bytes.fromhex("3B9F95801FC78031E073FE21135753494D544F4F4CA4")
    assert expected == DEFAULT_ATR
    t0 = DEFAULT_ATR[1]
    assert t0 & 0x0F == 15  # 15 historical bytes
    assert DEFAULT_ATR[3] == 0x80  # TD1: T=0, TD2 follows
    assert DEFAULT_ATR[4] == 0x1F  # TD2: T=15, TA3 follows
    assert len(DEFAULT_ATR) == 2 + 3 + 1 + 15 + 1
    assert tck_ok(DEFAULT_ATR)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_named_profiles_load(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert luhn_valid(profile.iccid)
    assert decode_iccid(encode_iccid(profile.iccid)) == profile.iccid


def test_named_profile_specifics() -> None:
    assert load_profile("classic-sim").classic_only
    assert load_profile("pin-protected-imsi").imsi_protected
    assert len(load_profile("iccid-20-digits").iccid) == 20
    blocked = load_profile("blocked-pin")
    assert (blocked.pin1_retries, blocked.puk1_retries) == (0, 10)
    default = load_profile("default")
    assert (default.pin1, default.pin1_enabled, default.pin1_retries) == ("0000", True, 3)


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match="default"):
        load_profile("no-such-card")


def test_repr_never_shows_secrets() -> None:
    profile = lab_profile(3, seed=7)
    text = repr(profile)
    for name in SECRET_FIELDS:
        value = getattr(profile, name)
        shown = value.hex() if isinstance(value, bytes) else value
        assert f"{name}=" not in text
        if len(shown) >= 8:  # short PINs like 0000 occur inside ICCIDs by chance
            assert shown not in text


def test_lab_profile_is_new_stock() -> None:
    profile = lab_profile(5)
    assert (profile.pin1, profile.pin1_enabled, profile.pin1_retries, profile.puk1_retries) == (
        "0000",
        True,
        3,
        10,
    )
    assert profile.iccid.startswith("8981") and len(profile.iccid) == 19
    assert luhn_valid(profile.iccid)
    assert profile.imsi.startswith("44010") and len(profile.imsi) == 15
    assert profile.msisdn[:3] in ("070", "080", "090") and len(profile.msisdn) == 11
    assert [lab_profile(i).form_factor for i in range(5)] == [
        "standard",
        "micro",
        "nano",
        "multi",
        "standard",
    ]


def test_lab_profiles_are_deterministic_and_distinct() -> None:
    assert lab_profile(2, seed=1) == lab_profile(2, seed=1)
    cards = [lab_profile(i, seed=1) for i in range(40)]
    for name in ("iccid", "imsi", "msisdn", "puk1", "puk2", "adm1", "ki", "opc"):
        values = [getattr(c, name) for c in cards]
        assert len(set(values)) == len(values), name
    assert lab_profile(2, seed=1).ki != lab_profile(2, seed=2).ki


def test_lab_profile_rejects_bad_index() -> None:
    with pytest.raises(UsageError):
        lab_profile(-1)


def test_save_and_load_round_trip_private(tmp_path: Path) -> None:
    profile = lab_profile(9, seed=3)
    path = tmp_path / "card.json"
    save_profile(profile, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_profile(path) == profile
    assert list(tmp_path.iterdir()) == [path], "no temporary file may remain"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iccid": "12"}, "ICCID"),
        ({"pin1": "12"}, "pin1"),
        ({"ki": "00"}, "ki"),
        ({"form_factor": "mini"}, "form factor"),
        ({"pin1_retries": True}, "pin1_retries"),
        ({"pin1_retries": 4}, "pin1_retries"),
        ({"colour": "red"}, "unknown"),
        ({"opc": "zz"}, "hex"),
    ],
)
def test_bad_profile_files_raise_parse_error(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    data = load_profile("default").to_json_dict() | change
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ParseError, match=message) as info:
        load_profile(path)
    assert "0000" not in str(info.value) or message == "pin1"


def test_missing_field_and_broken_json(tmp_path: Path) -> None:
    data = load_profile("default").to_json_dict()
    del data["imsi"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ParseError):
        load_profile(path)
    path.write_text("{")
    with pytest.raises(ParseError):
        load_profile(path)
    with pytest.raises(UsageError):
        load_profile(tmp_path / "absent.json")


def test_profile_is_a_plain_dataclass() -> None:
    profile = dataclasses.replace(load_profile("default"), classic_view=False)
    assert isinstance(profile, CardProfile) and not profile.classic_view


def test_incomplete_profile_names_the_file_and_every_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({"name": "half", "iccid": "8981100000000000001", "colour": "red", "size": 3})
    )
    with pytest.raises(ParseError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(f"card profile {path} is not valid: ")
    assert (
        "missing fields imsi, msisdn, spn, form_factor, network_type, pin1, pin2, puk1, "
        "puk2, adm1, ki, opc"
    ) in message
    assert "unknown fields colour, size" in message
    assert "__init__" not in message and "positional" not in message


def test_mistyped_fields_are_named_in_plain_words_without_their_values(tmp_path: Path) -> None:
    data = load_profile("default").to_json_dict() | {
        "pin1": 87654321,
        "ki": "c0ffee-secret",
        "opc": 5,
        "pin1_retries": "3",
        "classic_only": 1,
        "spn": None,
    }
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ParseError) as info:
        load_profile(path)
    message = str(info.value)
    for expected in (
        "pin1 must be text in quotes, not a number",
        "ki is not hex digits",
        "opc must be hex digits in quotes, not a number",
        "pin1_retries must be a whole number, not text",
        "classic_only must be true or false, not a number",
        "spn must be text in quotes, not null",
    ):
        assert expected in message
    assert "87654321" not in message and "c0ffee" not in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"name": ', "is not valid JSON: Expecting value at line 1, column 10"),
        (b"[1, 2]", "a profile must be a JSON object, not a list"),
        (b'"default"', "a profile must be a JSON object, not text"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
    ],
)
def test_malformed_profile_files_name_the_file(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(ParseError) as info:
        load_profile(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 20)
    | st.text(max_size=12)
    | st.sampled_from(["00" * 16, "3B00", "0000", "8981100000000000001", "nano"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(
    st.dictionaries(
        st.sampled_from([f.name for f in dataclasses.fields(CardProfile)] + ["extra"]),
        _JSON_VALUES,
        max_size=8,
    ),
    st.booleans(),
)
def test_any_json_object_gives_a_profile_or_a_parse_error(
    changes: dict[str, object], from_default: bool
) -> None:
    base = load_profile("default").to_json_dict() if from_default else {}
    try:
        profile = CardProfile.from_json_dict(base | changes)
    except ParseError:
        return
    assert isinstance(profile, CardProfile)
