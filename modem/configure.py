"""Configure a modem's PDP context and credentials, apply, read back, prove.

The workflow of ``simtool modem configure``:

1. refuse credentials no modem carries, before the port is even opened;
2. identify the modem, pick its dialect, refuse what that dialect cannot carry
   (still before anything is written); read the SIM's state, which does not
   stop the configuration (the settings live in the modem) but is reported
   when the SIM cannot be used (PIN blocked, unusable, absent);
3. read what the modem holds (SIM state, context, credentials, activation and
   attach state in one command line); when every field, the password
   included, reads back equal, write nothing. A password the modem cannot
   read back (Sierra, SIMCom, u-blox, Telit, Fibocom) could be anything, so
   the credentials are then written again (the write sets a value: doing it
   twice is harmless), but *without* a detach or radio cycle when every
   readable field matched: a working router keeps its connection, and the
   result says so (``rewritten_in_place``). Where the modem takes new
   credentials only on an inactive context (u-blox) and the context is
   active, they are left alone and a note says why;
4. write the context and the credentials in the dialect's syntax, one command
   per line (the list of what was accepted must be exact);
5. apply them (CFUN cycle or detach/attach, as the dialect needs, both steps
   on one line);
6. read back and compare field by field: an APN read back with an operator
   identifier (``ijmio.jp.mnc010.mcc440.gprs``) is the same APN; a password
   that is not read back is "not readable", never a match, and the report
   says it was written but could not be verified;
7. report what was done. ``verified`` is true when the APN, PDP type,
   authentication and user were read back equal and nothing read back
   differs; it says nothing about a password that cannot be read back
   (:attr:`ConfigureResult.password_status` does).

Reads go chained on one line (V.250) where the modem allows; a first
configure takes 5 to 7 AT round trips, a re-run that finds everything in
place 2. A restart of the modem in the middle is waited out and the sequence starts
over once; any other failure stops with :class:`ConfigureError`, which lists
what the modem had accepted so far. The returned :class:`ConfigureResult` is
what the line database needs to register the device (IMEI, maker, model,
firmware, profile, verified fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from modem.channel import DEFAULT_TIMEOUT, AtCommand, AtResponse, at
from modem.connect import ConnectResult, connect
from modem.dialects import Auth
from modem.errors import (
    AtCommandError,
    AtParseError,
    AtTimeoutError,
    ConfigureError,
    ConnectionRejectedError,
    ModemError,
    ModemRebootedError,
)
from modem.modem import MASK, BatchResult, Modem, auth_label
from modem.parsers import (
    AuthReading,
    PdpContext,
    apn_matches,
    find_line,
    parse_auth_readback,
    parse_cgact,
    parse_cgdcont,
    parse_cpin,
    payload_of,
)
from modem.profiles import ApnProfile, check_profile, check_profile_for
from modem.trace import AtTracer

CheckStatus = Literal["match", "mismatch", "not readable"]
REQUIRED_FIELDS = ("apn", "pdp_type", "auth", "user")
CREDENTIAL_FIELDS = ("auth", "user", "password")
PASSWORD_WRITTEN_NOT_READABLE = "written, not readable back"

# +CPIN? states (TS 27.007 clause 8.3) and failures (clause 9.2.1) in which the
# modem holds the settings but cannot attach with this SIM until a person acts.
_SIM_CME_STATES = {10: "SIM NOT INSERTED", 13: "SIM FAILURE", 15: "SIM WRONG"}
_SIM_WARNINGS = {
    "SIM PUK": "PIN1 is blocked and the SIM asks for its PUK (SIM PUK)",
    "SIM FAILURE": "the SIM is unusable (SIM failure: PUK blocked, dead or faulty card)",
    "SIM NOT INSERTED": "the modem holds no SIM",
    "SIM WRONG": "the modem refuses this SIM (SIM wrong)",
}


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """One field compared after read-back. Password values are always masked."""

    field: str
    wanted: str
    read_back: str | None
    status: CheckStatus


@dataclass(frozen=True, slots=True)
class ConfigureResult:
    """What ``configure`` did and proved; the seam to the line database."""

    port: str
    dialect: str
    profile: str
    cid: int
    imei: str
    manufacturer: str
    model: str
    firmware: str
    written: tuple[str, ...]
    applied: str | None
    checks: tuple[FieldCheck, ...]
    verified: bool
    notes: tuple[str, ...]
    credentials_written: bool = False
    sim_state: str | None = None
    warnings: tuple[str, ...] = ()
    rewritten_in_place: bool = False
    connection: ConnectResult | None = None
    connection_error: ConnectionRejectedError | None = field(default=None, repr=False)

    @property
    def connection_proven(self) -> bool | None:
        """True when a connection test got an address, False when the network
        refused it, None when no test ran."""
        if self.connection is not None:
            return self.connection.connected
        return False if self.connection_error is not None else None

    @property
    def changed(self) -> bool:
        """True when anything was written."""
        return bool(self.written)

    @property
    def password_status(self) -> str | None:
        """``match``/``mismatch`` when read back, ``written, not readable back`` when the
        modem cannot show it, ``None`` when the profile carries no password check."""
        check = next((c for c in self.checks if c.field == "password"), None)
        if check is None:
            return None
        if check.status != "not readable":
            return check.status
        if self.credentials_written:
            return PASSWORD_WRITTEN_NOT_READABLE
        return "not readable, not written"

    @property
    def verified_fields(self) -> tuple[str, ...]:
        """Fields read back equal to the profile."""
        return tuple(c.field for c in self.checks if c.status == "match")

    @property
    def not_readable(self) -> tuple[str, ...]:
        """Fields the modem does not read back."""
        return tuple(c.field for c in self.checks if c.status == "not readable")

    @property
    def mismatches(self) -> tuple[FieldCheck, ...]:
        """Fields read back different from the profile."""
        return tuple(c for c in self.checks if c.status == "mismatch")


@dataclass(frozen=True, slots=True)
class ModemState:
    """Context ``cid`` as the modem holds it (password kept only for comparing)."""

    context: PdpContext | None
    reading: AuthReading | None
    auth_readable: bool
    active: bool | None
    attached: bool | None = None


def configure_port(
    port: str,
    profile: ApnProfile,
    *,
    cid: int = 1,
    dialect: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tracer: AtTracer | None = None,
    force_write: bool = False,
    connect_test: bool = False,
) -> ConfigureResult:
    """Open ``port``, configure ``profile`` on context ``cid``, close. See the module doc.

    ``connect_test`` then activates the context (:func:`modem.connect.connect`)
    when the read-back verified the settings: a refusal by the network is in
    ``connection_error``, not raised, so the caller still gets what was written.
    """
    check_profile(profile)
    with Modem.open(port, dialect=dialect, timeout=timeout, tracer=tracer) as modem:
        result = configure(modem, profile, cid=cid, force_write=force_write)
        if not connect_test:
            return result
        if not result.verified:
            modem.events.add("connection test skipped: the settings were not verified")
            return replace(result, notes=tuple(modem.events.notes))
        try:
            connection = connect(modem, cid)
        except ConnectionRejectedError as error:
            return replace(result, connection_error=error)
        return replace(result, connection=connection, notes=tuple(modem.events.notes))


def configure(
    modem: Modem, profile: ApnProfile, *, cid: int = 1, force_write: bool = False
) -> ConfigureResult:
    """Configure an open modem (see the module doc); restarts are handled once."""
    if not 1 <= cid <= 24:
        raise ConfigureError(
            f"context id {cid} is outside 1..24", written=(), cause=ModemError("bad context id")
        )
    check_profile_for(profile, modem.dialect)
    written: list[str] = []
    for attempt in (1, 2):
        try:
            return _configure_once(modem, profile, cid, force_write, written)
        except (ModemRebootedError, AtTimeoutError) as error:
            # Every write here sets a value, so running the whole sequence again
            # is safe: it re-reads the modem and writes only what is missing.
            what = (
                f"the modem restarted ({error.marker})"
                if isinstance(error, ModemRebootedError)
                else "the modem did not answer"
            )
            if attempt == 2:
                raise ConfigureError(
                    f"{what} during {error.command}, a second time", written=written, cause=error
                ) from error
            modem.events.add(
                f"{what} during {error.command}; waited for it, read it again and carried on"
            )
            try:
                modem.recover_after_reboot()
            except ModemError as recover_error:
                raise ConfigureError(
                    f"{what} during {error.command} and did not come back",
                    written=written,
                    cause=recover_error,
                ) from recover_error
        except ConfigureError:
            raise
        except ModemError as error:
            raise ConfigureError(
                f"configuration stopped: {error}", written=written, cause=error
            ) from error
    raise AssertionError("unreachable")


class _Step:
    """Runs writes, keeping the list of what the modem accepted and watching for restarts."""

    def __init__(self, modem: Modem, written: list[str]) -> None:
        self.modem = modem
        self.written = written
        self.reboots = modem.channel.reboots

    def check_restart(self, after: str) -> None:
        """Raise when a restart marker arrived since the sequence began."""
        if self.modem.channel.reboots != self.reboots:
            raise ModemRebootedError(after, "seen between commands", ())


def read_sim_state(modem: Modem) -> tuple[str | None, tuple[str, ...]]:
    """The SIM's ``+CPIN?`` state and the warnings it calls for.

    Configuration goes on whatever the SIM says (the settings are the modem's),
    but a modem leaving the bench with a blocked or unusable SIM must not look
    ready: the warning says so. A SIM waiting for PIN1 is the stock state and
    only gets a note.
    """
    try:
        return _sim_state_from(modem, modem.query("AT+CPIN?"))
    except AtCommandError as error:
        return _sim_state_from(modem, error)
    except ModemError as error:
        modem.events.add(f"SIM state unknown: {error}")
        return None, ()


def _sim_state_from(
    modem: Modem, answer: AtResponse | AtCommandError
) -> tuple[str | None, tuple[str, ...]]:
    try:
        if isinstance(answer, AtCommandError):
            raise answer
        state = parse_cpin(answer.lines)
    except AtCommandError as error:
        failure = None if error.cme_code is None else _SIM_CME_STATES.get(error.cme_code)
        if failure is None:
            modem.events.add(f"SIM state unknown: {error}")
            return None, ()
        state = failure
    except ModemError as error:
        modem.events.add(f"SIM state unknown: {error}")
        return None, ()
    if state == "READY":
        return state, ()
    if state == "SIM PIN":
        modem.events.add(
            "the SIM waits for PIN1 (SIM PIN): the modem attaches with these "
            "settings once the PIN is entered"
        )
        return state, ()
    reason = _SIM_WARNINGS.get(state, f"the SIM is in state {state}")
    return state, (
        f"{reason}: the settings are stored in the modem, but it cannot attach "
        "with this SIM until it is dealt with",
    )


def read_state(modem: Modem, cid: int) -> ModemState:
    """Read context ``cid`` and its credentials (one command line where the modem allows)."""
    answers = modem.batch(_state_commands(modem, cid))
    return _state_from(modem, cid, answers)


def _state_commands(modem: Modem, cid: int, *, attach: bool = False) -> list[AtCommand]:
    spec = modem.dialect.auth
    commands = [
        at("AT+CGDCONT?"),
        at(
            spec.read_command.format(cid=cid),
            prefix=spec.read_prefix.upper(),
            secret_answer="password" in spec.read_order,
        ),
        at("AT+CGACT?"),
    ]
    if attach:
        commands.append(at("AT+CGATT?"))
    return commands


def _state_from(modem: Modem, cid: int, answers: Sequence[BatchResult]) -> ModemState:
    """Interpret the answers to :func:`_state_commands` (in that order)."""
    contexts, auth, active = answers[0], answers[1], answers[2]
    if isinstance(contexts, AtCommandError):
        raise contexts
    context = next((c for c in parse_cgdcont(contexts.lines) if c.cid == cid), None)
    reading: AuthReading | None = None
    readable = True
    try:
        if isinstance(auth, AtCommandError):
            raise auth
        reading = parse_auth_readback(modem.dialect.auth, auth.lines, cid)
    except (AtCommandError, AtParseError) as error:
        modem.events.add(f"credentials not readable on this modem: {error}")
        readable = False
    states = {} if isinstance(active, AtCommandError) else parse_cgact(active.lines)
    attached: bool | None = None
    if len(answers) > 3 and not isinstance(answers[3], AtCommandError):
        try:
            line = find_line(answers[3].lines, "+CGATT:")
            attached = payload_of(line, "+CGATT:").strip() == "1"
        except AtParseError:
            attached = None
    return ModemState(context, reading, readable, states.get(cid), attached)


def survey(modem: Modem, cid: int) -> tuple[str | None, tuple[str, ...], ModemState]:
    """SIM state, context ``cid``, its credentials, activation and attach, in one line.

    ``AT+CPIN?;+CGDCONT?;<credential read>;+CGACT?;+CGATT?``: what
    configuration needs to decide, in one round trip.
    """
    answers = modem.batch([at("AT+CPIN?"), *_state_commands(modem, cid, attach=True)])
    sim_state, warnings = _sim_state_from(modem, answers[0])
    return sim_state, warnings, _state_from(modem, cid, answers[1:])


def compare(modem: Modem, profile: ApnProfile, state: ModemState) -> tuple[FieldCheck, ...]:
    """Field-by-field comparison of ``state`` with ``profile``."""
    spec = modem.dialect.auth
    checks: list[FieldCheck] = []
    context, reading = state.context, state.reading

    def add(field: str, wanted: str, read_back: str | None, equal: bool | None) -> None:
        status: CheckStatus = "not readable" if equal is None else "match" if equal else "mismatch"
        checks.append(FieldCheck(field, wanted, read_back, status))

    apn_read = context.apn if context else None
    apn_equal = None if context is None else apn_matches(profile.apn, context.apn)
    if apn_equal and reading is not None and reading.apn is not None:
        apn_equal = apn_matches(profile.apn, reading.apn)
        if not apn_equal:
            apn_read = f"{context.apn if context else ''} / {reading.apn} ({spec.command})"
    add(
        "apn", profile.apn, apn_read if context else "(no context)", apn_equal if context else False
    )
    add(
        "pdp_type",
        profile.pdp_type,
        context.pdp_type if context else None,
        None if context is None else context.pdp_type == profile.pdp_type,
    )
    wanted_code = spec.code_for(profile.auth)
    if not state.auth_readable:
        add("auth", auth_label(modem.dialect, profile.auth), None, None)
        if profile.auth is not Auth.NONE:
            add("user", profile.user, None, None)
            add("password", MASK if profile.password else "", None, None)
        return tuple(checks)
    code = None if reading is None else reading.auth_code
    shown = (
        None
        if reading is None or code is None
        else reading.auth.value
        if reading.auth
        else str(code)
    )
    add(
        "auth",
        auth_label(modem.dialect, profile.auth),
        shown if reading else "(not set)",
        (profile.auth is Auth.NONE)
        if reading is None
        else (None if code is None else code == wanted_code),
    )
    if profile.auth is not Auth.NONE:
        user = None if reading is None else reading.user
        add(
            "user",
            profile.user,
            user if reading else "(not set)",
            False if reading is None else (None if user is None else user == profile.user),
        )
        password = None if reading is None else reading.password
        if reading is None:
            add("password", MASK if profile.password else "", "(not set)", not profile.password)
        elif password is None:
            add("password", MASK if profile.password else "", None, None)
        else:
            same = password == profile.password
            add(
                "password",
                MASK if profile.password else "",
                MASK if same else f"{MASK} (differs)",
                same,
            )
    return tuple(checks)


def verified(checks: tuple[FieldCheck, ...]) -> bool:
    """Every required field matched, and nothing readable mismatched."""
    by_field = {c.field: c for c in checks}
    required = [f for f in REQUIRED_FIELDS if f in by_field]
    return all(by_field[f].status == "match" for f in required) and not any(
        c.status == "mismatch" for c in checks
    )


def _needs_write(checks: tuple[FieldCheck, ...]) -> tuple[bool, bool]:
    """(context write needed, credential write needed).

    Only a field read back equal is left alone: one that differs, is not set
    or cannot be read (a password on most modems) is written, since what the
    modem holds there is unknown.
    """
    status = {c.field: c.status for c in checks}
    context = status.get("apn") != "match" or status.get("pdp_type") != "match"
    credentials = any(s != "match" for f, s in status.items() if f in CREDENTIAL_FIELDS)
    return context, credentials


def _configure_once(
    modem: Modem, profile: ApnProfile, cid: int, force_write: bool, written: list[str]
) -> ConfigureResult:
    step = _Step(modem, written)
    sim_state, warnings, state = survey(modem, cid)
    step.check_restart("reading the current settings")
    checks = compare(modem, profile, state)
    write_context, write_credentials = _needs_write(checks)
    if force_write:
        write_context = write_credentials = True
    if modem.dialect.auth.carries_apn and write_context:
        write_credentials = True  # Quectel's +QICSGP carries the APN too

    def finish(result: ConfigureResult, in_place: bool = False) -> ConfigureResult:
        return replace(result, sim_state=sim_state, warnings=warnings, rewritten_in_place=in_place)

    if not write_context and not write_credentials:
        return finish(_result(modem, profile, cid, written, None, checks))
    # Every readable field matches and only a password the modem cannot show is
    # unknown: a working router must keep its connection, so the credentials
    # are written again without detaching or cycling the radio.
    in_place = not force_write and not write_context and _only_password_unknown(checks)
    if in_place and modem.dialect.deactivate_before_auth and state.active:
        modem.events.add(
            f"the password cannot be read back, and {modem.dialect.vendor} takes "
            f"{modem.dialect.auth.command} only while context {cid} is inactive: it was "
            "left as it is so as not to drop the connection (--force-write rewrites it "
            "with a deactivation)"
        )
        return finish(_result(modem, profile, cid, written, None, checks))
    writes: list[AtCommand] = []
    if write_credentials and modem.dialect.deactivate_before_auth and state.active:
        writes.append(at(f"AT+CGACT=0,{cid}", prefix=False))
    if write_context:
        writes.append(modem.context_command(cid, profile.pdp_type, profile.apn))
    if write_credentials:
        writes.append(modem.auth_command(cid, profile))
    _write_all(modem, step, writes)
    applied: str | None = None
    if in_place:
        modem.events.add(
            "only the password was unknown (this modem cannot read it back): the credentials "
            "were rewritten without detaching or cycling the radio; the connection in use "
            "is kept and the password applies at the next activation"
        )
    else:
        applied = _apply(modem, modem.dialect.apply, state.attached, step)
    checks = compare(modem, profile, read_state(modem, cid))
    step.check_restart("reading back")
    if not verified(checks) and any(c.status == "mismatch" for c in checks) and applied != "cfun":
        # Some firmware only takes a new setting at a radio restart, whatever the
        # manual says; one CFUN cycle is cheap and the read-back decides.
        modem.events.add("read-back differed after writing; cycled CFUN once and read again")
        _write_all(modem, step, _cfun_cycle(), record=False)
        applied = f"{applied}+cfun" if applied else "cfun"
        checks = compare(modem, profile, read_state(modem, cid))
        step.check_restart("reading back after a CFUN cycle")
    return finish(_result(modem, profile, cid, written, applied, checks), in_place)


def _only_password_unknown(checks: tuple[FieldCheck, ...]) -> bool:
    """Every field matches except a password that is not readable."""
    return all(
        c.status == "match" or (c.field == "password" and c.status == "not readable")
        for c in checks
    )


def _write_all(
    modem: Modem, step: _Step, commands: Sequence[AtCommand], *, record: bool = True
) -> None:
    """Run writes, listing each the modem accepted.

    Settings (``record``) go one per line: if a modem stops answering in the
    middle, the list of what it accepted must be exact, and a chained line
    that times out does not say how far it got. The apply steps (CFUN or
    CGATT off and on) set no setting and go on one line.
    """
    if not commands:
        return
    if record:
        for command in commands:
            modem.write(command)
            step.written.append(command.shown)
            step.check_restart(command.shown)
        return
    for answer in modem.batch(commands, write=True):
        if isinstance(answer, AtCommandError):
            raise answer
    step.check_restart(commands[-1].shown)


def _cfun_cycle() -> list[AtCommand]:
    return [at("AT+CFUN=0", prefix=False), at("AT+CFUN=1", prefix=False)]


def _apply(modem: Modem, mode: str, attached: bool | None, step: _Step) -> str | None:
    if mode == "cfun":
        _write_all(modem, step, _cfun_cycle(), record=False)
        return "cfun"
    if mode == "detach-attach":
        if attached is False:
            modem.events.add(
                "not attached (SIM locked or no network): the new settings "
                "take effect at the next attach"
            )
            return None
        _write_all(
            modem,
            step,
            [at("AT+CGATT=0", prefix=False), at("AT+CGATT=1", prefix=False)],
            record=False,
        )
        return "detach-attach"
    return None


def _result(
    modem: Modem,
    profile: ApnProfile,
    cid: int,
    written: list[str],
    applied: str | None,
    checks: tuple[FieldCheck, ...],
) -> ConfigureResult:
    identity = modem.identity
    credential_prefix = f"AT{modem.dialect.auth.command}="
    credentials_written = any(command.startswith(credential_prefix) for command in written)
    if credentials_written and any(
        c.field == "password" and c.status == "not readable" for c in checks
    ):
        modem.events.add(
            "the password was written but this modem cannot read it back: it is not verified"
        )
    return ConfigureResult(
        port=modem.port,
        dialect=modem.dialect.name,
        profile=profile.name,
        cid=cid,
        imei=identity.imei,
        manufacturer=identity.manufacturer,
        model=identity.model,
        firmware=identity.revision,
        written=tuple(written),
        applied=applied,
        checks=checks,
        verified=verified(checks),
        notes=tuple(modem.events.notes),
        credentials_written=credentials_written,
    )
