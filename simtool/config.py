"""Station settings: flags, then the environment, then the config file, then defaults.

- database: ``--db``, ``SIMTOOL_DB``, ``db``; default a SQLite file in the
  user data dir;
- operator: ``--operator``, ``SIMTOOL_OPERATOR``, ``operator``; default the login;
- station: ``--station``, ``SIMTOOL_STATION``, ``station``; default the host name;
- key file: ``--key-file``, ``SIMTOOL_KEY_FILE``, ``key_file``; default
  ``secrets.key`` in the user data dir;
- the key itself: ``SIMTOOL_KEY`` only (a config file holding it is refused);
- time zone for display: ``SIMTOOL_TZ``, ``timezone``; default Asia/Tokyo (stored UTC).

The config file is ``config.toml`` in the user config dir (platformdirs), or
the file named by ``SIMTOOL_CONFIG``.
"""

from __future__ import annotations

import functools
import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from apdu.errors import UsageError

APP_NAME = "simtool"
ENV_DB = "SIMTOOL_DB"
ENV_OPERATOR = "SIMTOOL_OPERATOR"
ENV_STATION = "SIMTOOL_STATION"
ENV_KEY_FILE = "SIMTOOL_KEY_FILE"
ENV_KEY = "SIMTOOL_KEY"
ENV_CONFIG = "SIMTOOL_CONFIG"
CONFIG_KEYS = ("db", "operator", "station", "key_file", "timezone")
#: The zone times are shown in (stored in UTC): ``SIMTOOL_TZ``, else ``timezone``.
ENV_TIMEZONE = "SIMTOOL_TZ"

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:  # the CLI imports SQLAlchemy only when a command needs it
    from provisioning.audit import Actor
    from provisioning.database import Database
    from provisioning.secrets import Keyring


OTHER_SECTIONS = frozenset({"modem"})


def _user_dir(kind: str) -> Path:
    """The user's config or data directory for simtool.

    The XDG rule on Linux, written out (every command resolves its settings at
    start, and platformdirs costs more to import than this); platformdirs
    elsewhere.
    """
    if sys.platform.startswith("linux"):
        variable, fallback = ("XDG_CONFIG_HOME", ".config")
        if kind != "config":
            variable, fallback = ("XDG_DATA_HOME", ".local/share")
        base = os.environ.get(variable, "").strip()
        root = Path(base) if base.startswith("/") else Path.home() / fallback
        return root / APP_NAME
    import platformdirs

    if kind == "config":
        return platformdirs.user_config_path(APP_NAME)
    return platformdirs.user_data_path(APP_NAME)


def default_config_path() -> Path:
    """``config.toml`` in the user's config directory."""
    return _user_dir("config") / "config.toml"


def default_database_path() -> Path:
    """The embedded SQLite database in the user's data directory."""
    return _user_dir("data") / "simtool.db"


def default_key_file() -> Path:
    """The secrets key file in the user's data directory."""
    return _user_dir("data") / "secrets.key"


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one command run; ``key`` never shows in a repr."""

    db: str
    operator: str
    station: str
    key_file: Path
    key: str | None = field(default=None, repr=False)
    config_file: Path | None = None
    #: The operator's time zone from the config file (None: SIMTOOL_TZ or Asia/Tokyo).
    timezone: str | None = None

    def database(self, *, create: bool = False) -> Database:
        """The line database, ready for use; it must exist unless ``create`` (the demo)."""
        from provisioning.database import open_station_database

        return open_station_database(self.db, create=create)

    def actor(self) -> Actor:
        """Who acts, and where, for the audit trail."""
        from provisioning.audit import Actor

        return Actor(operator=self.operator, station=self.station)

    def keyring(self) -> Keyring:
        """Where the secrets key comes from."""
        from provisioning.secrets import Keyring

        return Keyring(key_file=self.key_file, env_key=self.key)


def read_config_file(path: Path) -> dict[str, str]:
    """The settings in a TOML config file (missing file: none)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"config file {path}: {error}") from error
    if "key" in data:
        raise UsageError(
            f"config file {path}: the secrets key does not belong in a config "
            f"file; use key_file or {ENV_KEY}"
        )
    # Tables of other parts of the station (the modem's APN profiles) share
    # the file; they are read by their own loaders.
    data = {name: value for name, value in data.items() if name not in OTHER_SECTIONS}
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError(
            f"config file {path}: unknown settings {', '.join(unknown)} "
            f"(known: {', '.join(CONFIG_KEYS)})"
        )
    values: dict[str, str] = {}
    for name, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"config file {path}: {name} must be a non-empty string")
        values[name] = value.strip()
    return values


def load_settings(
    *,
    db: str | None = None,
    operator: str | None = None,
    station: str | None = None,
    key_file: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting: flag, else environment, else config file, else default."""
    env = os.environ if environ is None else environ
    config_path = Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else default_config_path()
    config = read_config_file(config_path)

    def pick(flag: str | Path | None, env_name: str, config_name: str) -> str | None:
        if flag is not None and str(flag).strip():
            return str(flag).strip()
        if env.get(env_name, "").strip():
            return env[env_name].strip()
        return config.get(config_name)

    return Settings(
        db=pick(db, ENV_DB, "db") or str(default_database_path()),
        operator=pick(operator, ENV_OPERATOR, "operator") or _login_name(),
        station=pick(station, ENV_STATION, "station") or os.uname().nodename,
        key_file=Path(pick(key_file, ENV_KEY_FILE, "key_file") or default_key_file()).expanduser(),
        key=env.get(ENV_KEY) or None,
        config_file=config_path if config else None,
        timezone=config.get("timezone"),
    )


def _login_name() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def station_options(func: F) -> F:
    """``--db``, ``--operator``, ``--station``, ``--key-file``; the command gets ``settings``."""

    @click.option(
        "--db",
        "db_url",
        default=None,
        metavar="URL|PATH",
        help=f"Line database: a SQLite file or postgresql://... [env {ENV_DB}]",
    )
    @click.option(
        "--operator",
        default=None,
        help=f"Who is working (audit trail) [env {ENV_OPERATOR}; default: login]",
    )
    @click.option(
        "--station",
        default=None,
        help=f"This station's id (audit trail) [env {ENV_STATION}; default: host]",
    )
    @click.option(
        "--key-file",
        default=None,
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"Secrets key file [env {ENV_KEY_FILE}; or the key in {ENV_KEY}]",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        db_url: str | None,
        operator: str | None,
        station: str | None,
        key_file: Path | None,
        **kwargs: Any,
    ) -> Any:
        settings = load_settings(db=db_url, operator=operator, station=station, key_file=key_file)
        if settings.timezone and not os.environ.get(ENV_TIMEZONE):
            # The display helpers (simtool.i18n) read the zone from the environment.
            os.environ[ENV_TIMEZONE] = settings.timezone
        return func(*args, settings=settings, **kwargs)

    return cast(F, wrapper)
