"""APN profiles: the built-in operator profile, configured ones, refusals before sending."""

from __future__ import annotations

from pathlib import Path

import pytest

from modem.dialects import DIALECTS, Auth
from modem.errors import ConfigFileError, UnknownProfileError, UnsupportedCredentialsError
from modem.profiles import (
    IJMIO,
    ApnProfile,
    check_profile,
    check_profile_for,
    get_profile,
    load_profiles,
    resolve_profile,
)
from tests.support.cli import simtool


def test_builtin_operator_profile() -> None:
    # docs/domain.md: APN ijmio.jp, user mio@ij, password ij, PAP or CHAP.
    assert (IJMIO.apn, IJMIO.user, IJMIO.password, IJMIO.auth) == (
        "ijmio.jp",
        "mio@ij",
        "ij",
        Auth.PAP_OR_CHAP,
    )
    assert "'ij'" not in repr(IJMIO) and "***" in repr(IJMIO)
    for dialect in DIALECTS.values():
        check_profile_for(IJMIO, dialect)


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        (ApnProfile("x", "a.example", 'us"er', "p", Auth.PAP), "user"),
        (ApnProfile("x", "a.example", "user", "pa\\ss", Auth.PAP), "password"),
        (ApnProfile("x", "a.example", "user", "pässword", Auth.PAP), "password"),
        (ApnProfile("x", "a.example", "user", "p\rAT+CFUN=0", Auth.PAP), "password"),
        (ApnProfile("x", "bad apn", "", "", Auth.NONE), "apn"),
        (ApnProfile("x", "", "", "", Auth.NONE), "apn"),
        (ApnProfile("x", "a" * 101, "", "", Auth.NONE), "apn"),
        (ApnProfile("x", "ijmio.jp.mnc010.mcc440.gprs", "", "", Auth.NONE), "apn"),
        (ApnProfile("x", "a.example", "u", "p", Auth.NONE), "auth"),
        (ApnProfile("x", "a.example", "", "", Auth.CHAP), "auth"),
        (ApnProfile("x", "a.example", pdp_type="X25"), "pdp_type"),
    ],
)
def test_refused_before_anything_is_sent(profile: ApnProfile, field: str) -> None:
    with pytest.raises(UnsupportedCredentialsError) as caught:
        check_profile(profile)
    assert caught.value.field == field and caught.value.exit_code == 64
    if field == "password":
        assert profile.password not in str(caught.value)


def test_dialect_length_limits() -> None:
    fifty = ApnProfile("x", "a.example", "u" * 50, "p" * 50, Auth.CHAP)
    check_profile_for(fifty, DIALECTS["fibocom"])
    longer = ApnProfile("x", "a.example", "u", "p" * 51, Auth.CHAP)
    check_profile_for(longer, DIALECTS["quectel"])
    with pytest.raises(UnsupportedCredentialsError) as caught:
        check_profile_for(longer, DIALECTS["fibocom"])
    assert caught.value.field == "password" and caught.value.dialect == "fibocom"


def test_profiles_from_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[modem.profiles.office]\napn = "office.example"\nuser = "u"\n'
        'password = "p"\nauth = "chap"\npdp_type = "ipv4v6"\n'
    )
    profiles = load_profiles(config)
    assert set(profiles) == {"ijmio", "office"}
    office = profiles["office"]
    assert (office.apn, office.auth, office.pdp_type) == ("office.example", Auth.CHAP, "IPV4V6")
    assert get_profile("office", config) == office
    with pytest.raises(UnknownProfileError):
        get_profile("nosuch", config)


@pytest.mark.parametrize(
    "text",
    [
        '[modem.profiles.ijmio]\napn = "evil.example"\n',  # no silent override
        '[modem.profiles.bad]\napn = "a.example"\nauth = "mschap"\n',
        '[modem.profiles.bad]\nuser = "no apn"\n',
        "not toml [",
    ],
)
def test_bad_configuration(tmp_path: Path, text: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(UnsupportedCredentialsError):
        load_profiles(config)


def test_resolve_profile_from_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default configuration file is optional: none there, the built-in profiles.
    monkeypatch.setenv("SIMTOOL_CONFIG", str(tmp_path / "none.toml"))
    assert resolve_profile(None) == IJMIO
    custom = resolve_profile(None, apn="x.example", user="u", password="p")
    assert custom.name == "custom" and custom.auth is Auth.PAP_OR_CHAP
    assert resolve_profile(None, apn="x.example").auth is Auth.NONE
    overridden = resolve_profile("ijmio", auth="pap")
    assert overridden.auth is Auth.PAP and overridden.apn == "ijmio.jp"
    with pytest.raises(UnsupportedCredentialsError):
        resolve_profile(None, user="u")


@pytest.mark.parametrize("options", [{}, {"apn": "x.example"}, {"name": "ijmio"}])
def test_missing_configuration_file_given_explicitly(
    tmp_path: Path, options: dict[str, str]
) -> None:
    missing = tmp_path / "none.toml"
    with pytest.raises(ConfigFileError) as caught:
        resolve_profile(options.get("name"), apn=options.get("apn"), config_path=missing)
    assert caught.value.path == str(missing) and str(missing) in str(caught.value)
    assert caught.value.exit_code == 64


def test_unreadable_configuration_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_profiles(tmp_path)  # a directory: it exists but cannot be read as a file
    assert str(tmp_path) in str(caught.value) and caught.value.exit_code == 64


def test_missing_configuration_file_through_the_cli(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.toml"
    for extra in ([], ["--apn", "x.example"]):
        run = simtool(
            "modem", "configure", "--port", "simmodem://generic", "--config", str(missing), *extra
        )
        assert run.code == 64, run.output
        assert str(missing) in run.stderr and "Traceback" not in run.output
