"""APN profiles: what a bundled modem must hold, and the checks before writing it.

The operator's profile ``ijmio`` is built in (docs/domain.md: APN ``ijmio.jp``, user
``mio@ij``, password ``ij``, PAP or CHAP). More profiles come from the station's
configuration file, a TOML table per profile::

    [modem.profiles.office]
    apn = "office.example"
    user = "u"
    password = "p"
    auth = "chap"          # none | pap | chap | pap-or-chap
    pdp_type = "IP"        # IP | IPV6 | IPV4V6

Credentials are checked twice before anything reaches a modem: once for what
no modem carries safely (quotes and backslashes are escaped inconsistently by
modem firmware, control characters end the command line), and once against the
chosen dialect's limits.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modem.dialects import APN_MAX, PDP_TYPES, Auth, Dialect
from modem.errors import ConfigFileError, UnknownProfileError, UnsupportedCredentialsError

CONFIG_ENV = "SIMTOOL_CONFIG"


@dataclass(frozen=True, slots=True)
class ApnProfile:
    """One set of connection settings. ``repr`` never shows the password."""

    name: str
    apn: str
    user: str = ""
    password: str = ""
    auth: Auth = Auth.NONE
    pdp_type: str = "IP"

    def __repr__(self) -> str:
        return (
            f"ApnProfile(name={self.name!r}, apn={self.apn!r}, user={self.user!r}, "
            f"password={'***' if self.password else ''!r}, auth={self.auth.value!r}, "
            f"pdp_type={self.pdp_type!r})"
        )

    def with_overrides(
        self,
        *,
        apn: str | None = None,
        user: str | None = None,
        password: str | None = None,
        auth: Auth | None = None,
        pdp_type: str | None = None,
    ) -> ApnProfile:
        """A copy with the given fields replaced (``None`` keeps a field)."""
        changes: dict[str, Any] = {
            k: v
            for k, v in (
                ("apn", apn),
                ("user", user),
                ("password", password),
                ("auth", auth),
                ("pdp_type", pdp_type.upper() if pdp_type else None),
            )
            if v is not None
        }
        return replace(self, **changes) if changes else self


IJMIO = ApnProfile(
    name="ijmio", apn="ijmio.jp", user="mio@ij", password="ij", auth=Auth.PAP_OR_CHAP, pdp_type="IP"
)

BUILTIN_PROFILES: Mapping[str, ApnProfile] = {IJMIO.name: IJMIO}

# TS 23.003 clause 9.1: APN labels are letters, digits and hyphens.
_APN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Printable ASCII without the two characters modems escape inconsistently.
_SAFE_TEXT = re.compile(r"[\x20-\x21\x23-\x5B\x5D-\x7E]*")


def check_profile(profile: ApnProfile) -> None:
    """Refuse what no modem carries safely; nothing has been sent yet.

    Raises :class:`UnsupportedCredentialsError` naming the field (the password
    value is never part of the message).
    """
    apn = profile.apn
    if not apn or len(apn) > APN_MAX:
        raise UnsupportedCredentialsError(
            f"APN must be 1 to {APN_MAX} characters (got {len(apn)})", field="apn", dialect=None
        )
    labels = apn.split(".")
    if not all(_APN_LABEL.fullmatch(label) for label in labels):
        raise UnsupportedCredentialsError(
            f"APN {apn!r} is not dot-separated labels of letters, digits and hyphens "
            "(TS 23.003 clause 9.1)",
            field="apn",
            dialect=None,
        )
    if apn.lower().endswith(".gprs"):
        raise UnsupportedCredentialsError(
            f"APN {apn!r} ends in .gprs: give the network identifier only",
            field="apn",
            dialect=None,
        )
    if profile.pdp_type not in PDP_TYPES:
        raise UnsupportedCredentialsError(
            f"PDP type {profile.pdp_type!r} is not one of {', '.join(PDP_TYPES)}",
            field="pdp_type",
            dialect=None,
        )
    for field, value in (("user", profile.user), ("password", profile.password)):
        if not _SAFE_TEXT.fullmatch(value):
            shown = "the password" if field == "password" else repr(value)
            raise UnsupportedCredentialsError(
                f"{field}: {shown} contains a quote, a backslash, a control or a non-ASCII "
                "character, which modems do not escape consistently",
                field=field,
                dialect=None,
            )
    if profile.auth is Auth.NONE and (profile.user or profile.password):
        raise UnsupportedCredentialsError(
            "a user or password is given with authentication 'none' (TS 27.007 drops them)",
            field="auth",
            dialect=None,
        )
    if profile.auth is not Auth.NONE and not profile.user and not profile.password:
        raise UnsupportedCredentialsError(
            f"authentication {profile.auth.value} needs a user or a password",
            field="auth",
            dialect=None,
        )


def check_profile_for(profile: ApnProfile, dialect: Dialect) -> None:
    """Refuse what ``dialect`` cannot carry (length limits, APN size)."""
    check_profile(profile)
    spec = dialect.auth
    if len(profile.apn) > dialect.apn_max:
        raise UnsupportedCredentialsError(
            f"APN of {len(profile.apn)} characters exceeds {dialect.name}'s {dialect.apn_max}",
            field="apn",
            dialect=dialect.name,
        )
    if len(profile.user) > spec.max_user:
        raise UnsupportedCredentialsError(
            f"user of {len(profile.user)} characters exceeds {dialect.name}'s limit of "
            f"{spec.max_user} for {spec.command}",
            field="user",
            dialect=dialect.name,
        )
    if len(profile.password) > spec.max_password:
        raise UnsupportedCredentialsError(
            f"password of {len(profile.password)} characters exceeds {dialect.name}'s limit "
            f"of {spec.max_password} for {spec.command}",
            field="password",
            dialect=dialect.name,
        )


def default_config_path() -> Path:
    """``$SIMTOOL_CONFIG``, else the per-user config file of simtool."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("simtool")) / "config.toml"


def profiles_from_mapping(
    data: Mapping[str, Any], *, source: str = "config"
) -> dict[str, ApnProfile]:
    """Profiles from the parsed TOML (``[modem.profiles.<name>]`` tables)."""
    modem_section = data.get("modem", {})
    table = modem_section.get("profiles", {}) if isinstance(modem_section, Mapping) else {}
    if not isinstance(table, Mapping):
        raise UnsupportedCredentialsError(
            f"{source}: [modem.profiles] is not a table", field="profile", dialect=None
        )
    profiles: dict[str, ApnProfile] = {}
    for name, entry in table.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("apn"), str):
            raise UnsupportedCredentialsError(
                f'{source}: profile {name!r} needs at least apn = "..."', field="apn", dialect=None
            )
        try:
            auth = Auth(str(entry.get("auth", "none")))
        except ValueError:
            raise UnsupportedCredentialsError(
                f"{source}: profile {name!r} has auth {entry.get('auth')!r}; use one of "
                f"{', '.join(a.value for a in Auth)}",
                field="auth",
                dialect=None,
            ) from None
        profile = ApnProfile(
            name=str(name),
            apn=entry["apn"],
            user=str(entry.get("user", "")),
            password=str(entry.get("password", "")),
            auth=auth,
            pdp_type=str(entry.get("pdp_type", "IP")).upper(),
        )
        check_profile(profile)
        profiles[profile.name] = profile
    return profiles


def load_profiles(path: Path | None = None) -> dict[str, ApnProfile]:
    """Built-in profiles plus those of the configuration file.

    ``path`` given is a file the caller asked for: missing or unreadable, it
    is a :class:`ConfigFileError` naming it. Without ``path`` the default file
    (``$SIMTOOL_CONFIG`` or the per-user one) is optional, as for the rest of
    the station's settings. A configured profile may not silently replace a
    built-in one of the same name: the operator's settings stay what
    docs/domain.md says.
    """
    profiles = dict(BUILTIN_PROFILES)
    config = path if path is not None else default_config_path()
    if path is None and not config.exists():
        return profiles
    try:
        text = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(
            f"configuration file {config} does not exist", path=str(config)
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ConfigFileError(
            f"cannot read configuration file {config}: {reason}", path=str(config)
        ) from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UnsupportedCredentialsError(
            f"{config}: not valid TOML: {error}", field="profile", dialect=None
        ) from error
    for name, profile in profiles_from_mapping(data, source=str(config)).items():
        if name in BUILTIN_PROFILES:
            raise UnsupportedCredentialsError(
                f"{config}: profile {name!r} would replace the built-in one",
                field="profile",
                dialect=None,
            )
        profiles[name] = profile
    return profiles


def get_profile(name: str, path: Path | None = None) -> ApnProfile:
    """The profile called ``name`` (built in or configured)."""
    profiles = load_profiles(path)
    try:
        return profiles[name]
    except KeyError:
        raise UnknownProfileError(name, sorted(profiles)) from None


def resolve_profile(
    name: str | None,
    *,
    apn: str | None = None,
    user: str | None = None,
    password: str | None = None,
    auth: str | None = None,
    pdp_type: str | None = None,
    config_path: Path | None = None,
) -> ApnProfile:
    """The profile the command-line options describe.

    ``name`` picks a profile (``ijmio`` when neither a name nor an APN is
    given) and the other options override its fields; an APN without a name
    makes a "custom" profile whose authentication defaults to PAP-or-CHAP when
    credentials are given.
    """
    if name is None and apn is None and any(v is not None for v in (user, password, auth)):
        raise UnsupportedCredentialsError(
            "give --profile, or --apn with the credentials", field="apn", dialect=None
        )
    try:
        chosen_auth = Auth(auth) if auth else None
    except ValueError:
        raise UnsupportedCredentialsError(
            f"authentication {auth!r} is not one of {', '.join(a.value for a in Auth)}",
            field="auth",
            dialect=None,
        ) from None
    if name is None and apn is not None:
        if config_path is not None:
            load_profiles(config_path)  # a file asked for is checked even when unused
        default_auth = Auth.PAP_OR_CHAP if (user or password) else Auth.NONE
        return ApnProfile(
            name="custom",
            apn=apn,
            user=user or "",
            password=password or "",
            auth=chosen_auth or default_auth,
            pdp_type=(pdp_type or "IP").upper(),
        )
    base = get_profile(name or IJMIO.name, config_path)
    return base.with_overrides(
        apn=apn, user=user, password=password, auth=chosen_auth, pdp_type=pdp_type
    )
