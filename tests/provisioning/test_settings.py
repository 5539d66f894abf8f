"""Station settings (simtool/config.py): flags, then environment, then config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from apdu.errors import UsageError
from simtool.config import default_database_path, default_key_file, load_settings


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'db = "/srv/file.db"\noperator = "file-op"\nstation = "file-st"\n'
        'key_file = "/srv/file.key"\n'
    )
    env = {
        "SIMTOOL_CONFIG": str(config),
        "SIMTOOL_OPERATOR": "env-op",
        "SIMTOOL_KEY_FILE": "/srv/env.key",
    }
    settings = load_settings(operator="flag-op", environ=env)
    assert settings.operator == "flag-op"  # flag beats environment
    assert settings.key_file == Path("/srv/env.key")  # environment beats file
    assert (settings.db, settings.station) == ("/srv/file.db", "file-st")  # file
    assert settings.config_file == config
    bare = load_settings(environ={"SIMTOOL_CONFIG": str(tmp_path / "missing.toml")})
    assert bare.db == str(default_database_path()) and bare.key_file == default_key_file()
    assert bare.operator and bare.station and bare.config_file is None


def test_key_only_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"SIMTOOL_CONFIG": str(tmp_path / "none.toml"), "SIMTOOL_KEY": "ab" * 32}
    )
    assert settings.key == "ab" * 32 and "abab" not in repr(settings)
    assert settings.keyring().env_key == "ab" * 32
    config = tmp_path / "config.toml"
    config.write_text('key = "abab"\n')
    with pytest.raises(UsageError, match="does not belong"):
        load_settings(environ={"SIMTOOL_CONFIG": str(config)})


def test_bad_config_files(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    for text, message in (
        ('dbx = "a"\n', "unknown settings dbx"),
        ("db = [", "config file"),
        ("operator = 3\n", "non-empty string"),
    ):
        config.write_text(text)
        with pytest.raises(UsageError, match=message):
            load_settings(environ={"SIMTOOL_CONFIG": str(config)})


def test_actor_comes_from_settings(tmp_path: Path) -> None:
    settings = load_settings(
        operator="sato", station="bench-9", environ={"SIMTOOL_CONFIG": str(tmp_path / "none.toml")}
    )
    assert (settings.actor().operator, settings.actor().station) == ("sato", "bench-9")
