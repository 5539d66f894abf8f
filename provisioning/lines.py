"""Lines to provision: adding them one by one or from a file, and updating their facts.

A line is what the customer contracted: service code, phone number, network
type, function class. It is created ``pending`` and gets its first card from
:func:`provisioning.workflows.provision`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from apdu.errors import ParseError, UsageError
from provisioning.audit import Actor, append_event
from provisioning.database import Database
from provisioning.errors import (
    InputFileError,
    LifecycleError,
    NotFoundError,
    RowProblem,
)
from provisioning.identifiers import parse_customer_id, parse_msisdn, parse_service_code
from provisioning.lifecycle import (
    ActivationTrigger,
    ContractType,
    FormFactor,
    FunctionClass,
    LineState,
    NetworkType,
    check_combination,
    check_line_offered,
    check_type_i_contract,
)
from provisioning.models import Line

_TRUE = {"1", "yes", "y", "true", "verified"}
_FALSE = {"", "0", "no", "n", "false"}


@dataclass(frozen=True)
class LineSpec:
    """A line as ordered: what ``line add`` and each row of ``line import`` give."""

    service_code: str
    msisdn: str | None
    customer: str
    network_type: NetworkType
    function_class: FunctionClass
    identity_verified: bool = False
    contract_type: ContractType | None = None
    activation_trigger: ActivationTrigger | None = None
    activation_date: date | None = None
    delivered_on: date | None = None
    form_factor: FormFactor | None = None

    @classmethod
    def parse(
        cls,
        *,
        service_code: str,
        msisdn: str | None,
        customer: str,
        network_type: str,
        function_class: str,
        identity_verified: bool = False,
        contract_type: str | None = None,
        activation_trigger: str | None = None,
        activation_date: date | None = None,
        delivered_on: date | None = None,
        form_factor: str | None = None,
    ) -> LineSpec:
        """Check every field and the line-level rules; raises ParseError or LifecycleError."""
        spec = cls(
            service_code=parse_service_code(service_code),
            msisdn=parse_msisdn(msisdn) if msisdn else None,
            customer=parse_customer_id(customer),
            network_type=_choice(NetworkType, network_type.upper(), "network type"),
            function_class=_choice(FunctionClass, function_class.lower(), "function class"),
            identity_verified=identity_verified,
            contract_type=(
                _choice(ContractType, contract_type.lower(), "contract type")
                if contract_type
                else None
            ),
            activation_trigger=(
                _choice(ActivationTrigger, activation_trigger.lower(), "activation trigger")
                if activation_trigger
                else None
            ),
            activation_date=activation_date,
            delivered_on=delivered_on,
            form_factor=(
                _choice(FormFactor, form_factor.lower(), "form factor") if form_factor else None
            ),
        )
        spec.check_rules()
        return spec

    def check_rules(self) -> None:
        """The line-level rules: the type offers the function (in the size ordered, when
        the order names one); type I has its contract."""
        check_line_offered(self.network_type, self.function_class)
        if self.form_factor is not None:
            check_combination(self.network_type, self.function_class, self.form_factor)
        check_type_i_contract(self.network_type, self.contract_type, self.activation_trigger)

    def as_columns(self) -> dict[str, Any]:
        """The spec's fields, as the ``lines`` table names them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


E = TypeVar("E", NetworkType, FunctionClass, ContractType, ActivationTrigger, FormFactor)


def _choice(enum_type: type[E], value: str, what: str) -> E:
    try:
        return enum_type(value.strip())
    except ValueError:
        allowed = ", ".join(member.value for member in enum_type)
        raise ParseError(f"{what} must be one of {allowed}, got {value!r}", data=value) from None


@dataclass(frozen=True)
class LineAdded:
    """A line now in the database, pending its first card."""

    service_code: str
    msisdn: str | None
    customer: str
    state: LineState
    audit_seq: int


def add_line(database: Database, actor: Actor, spec: LineSpec) -> LineAdded:
    """Add one line; refused when its service code or phone number is taken."""
    with database.write() as session:
        _refuse_taken(session, spec)
        now = datetime.now(UTC)
        session.add(
            Line(**spec.as_columns(), state=LineState.PENDING, state_changed_at=now, created_at=now)
        )
        event = append_event(
            session,
            actor,
            "line-add",
            service_code=spec.service_code,
            details=_spec_details(spec),
            at=now,
        )
    return LineAdded(
        service_code=spec.service_code,
        msisdn=spec.msisdn,
        customer=spec.customer,
        state=LineState.PENDING,
        audit_seq=event.seq,
    )


def _spec_details(spec: LineSpec) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, date) else value
        for key, value in spec.as_columns().items()
        if key != "service_code"
    }


def _refuse_taken(session: Session, spec: LineSpec) -> None:
    taken = session.execute(
        select(Line.service_code).where(Line.service_code == spec.service_code)
    ).first()
    if taken:
        raise UsageError(f"line {spec.service_code} already exists")
    if (
        spec.msisdn
        and session.execute(select(Line.service_code).where(Line.msisdn == spec.msisdn)).first()
    ):
        raise UsageError(f"phone number {spec.msisdn} already belongs to another line")


@dataclass(frozen=True)
class LineImportResult:
    """What ``line import`` did: lines added, lines already there unchanged."""

    added: int
    unchanged: int
    audit_seq: int | None


LINE_COLUMNS = ("SERVICE_CODE", "MSISDN", "CUSTOMER", "TYPE", "FUNCTION")


def import_lines(database: Database, actor: Actor, path: Path) -> LineImportResult:
    """Add the lines of a CSV file, all or none.

    Columns: SERVICE_CODE, MSISDN, CUSTOMER, TYPE (D/K/I), FUNCTION
    (data/sms/voice), optionally IDENTITY_VERIFIED (yes/no), CONTRACT,
    ACTIVATION, ACTIVATION_DATE, DELIVERED_ON (YYYY-MM-DD), FORM_FACTOR
    (standard/micro/nano/multi: the size the order asks for). A line already in the
    database with the same facts is left alone, so importing a file twice is
    harmless; one with other facts is a bad row.
    """
    specs, problems = _read_line_file(path)
    with database.write() as session:
        existing = _existing_lines(session, specs)
        new: list[tuple[int, LineSpec]] = []
        unchanged = 0
        for line_no, spec in specs:
            current = existing.get(spec.service_code)
            if current is None:
                new.append((line_no, spec))
            elif current == spec:
                unchanged += 1
            else:
                problems.append(
                    RowProblem(
                        line_no,
                        "SERVICE_CODE",
                        f"{spec.service_code} is already in the database with other facts",
                    )
                )
        problems.extend(_msisdns_taken(session, new, existing))
        if problems:
            problems.sort(key=lambda p: (p.line, p.field))
            raise InputFileError(
                f"{path}: {len({p.line for p in problems})} bad rows; nothing was imported",
                path=str(path),
                problems=problems,
            )
        now = datetime.now(UTC)
        session.add_all(
            Line(**spec.as_columns(), state=LineState.PENDING, state_changed_at=now, created_at=now)
            for _, spec in new
        )
        seq = None
        if new:
            seq = append_event(
                session,
                actor,
                "line-import",
                at=now,
                details={"file": path.name, "added": len(new), "unchanged": unchanged},
                also_lines=[spec.service_code for _, spec in new],
            ).seq
    return LineImportResult(added=len(new), unchanged=unchanged, audit_seq=seq)


def _read_line_file(path: Path) -> tuple[list[tuple[int, LineSpec]], list[RowProblem]]:
    problems: list[RowProblem] = []
    specs: list[tuple[int, LineSpec]] = []
    seen_codes: dict[str, int] = {}
    seen_numbers: dict[str, int] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            reader = csv.DictReader(stream)
            header = [name.strip().upper() for name in reader.fieldnames or []]
            missing = [c for c in LINE_COLUMNS if c not in header]
            if missing:
                raise InputFileError(
                    f"{path}: the header lacks what a line file needs",
                    path=str(path),
                    problems=[RowProblem(1, c, "column missing") for c in missing],
                )
            reader.fieldnames = header
            for row in reader:
                line_no = reader.line_num
                spec = _line_spec(line_no, row, problems)
                if spec is None:
                    continue
                first = seen_codes.setdefault(spec.service_code, line_no)
                if first != line_no:
                    problems.append(
                        RowProblem(
                            line_no, "SERVICE_CODE", f"{spec.service_code} duplicates line {first}"
                        )
                    )
                    continue
                if spec.msisdn:
                    first = seen_numbers.setdefault(spec.msisdn, line_no)
                    if first != line_no:
                        problems.append(
                            RowProblem(line_no, "MSISDN", f"{spec.msisdn} duplicates line {first}")
                        )
                        continue
                specs.append((line_no, spec))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputFileError(
            f"{path}: unreadable", path=str(path), problems=[RowProblem(1, "file", str(error))]
        ) from error
    return specs, problems


def _line_spec(
    line_no: int, row: Mapping[str, str | None], problems: list[RowProblem]
) -> LineSpec | None:
    parsed: dict[str, Any] = {}
    for name, column, parse in _LINE_FIELDS:
        try:
            parsed[name] = parse((row.get(column) or "").strip())
        except ParseError as error:
            problems.append(RowProblem(line_no, column, str(error)))
    if len(parsed) != len(_LINE_FIELDS):
        return None
    spec = LineSpec(**parsed)
    try:
        spec.check_rules()
    except LifecycleError as error:
        problems.append(RowProblem(line_no, "TYPE", str(error)))
        return None
    return spec


def _verified(text: str) -> bool:
    lowered = text.lower()
    if lowered not in _TRUE | _FALSE:
        raise ParseError(f"must be yes or no, got {text!r}", data=text)
    return lowered in _TRUE


T = TypeVar("T")


def _optional(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    return lambda text: parse(text) if text else None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ParseError(f"must be a date YYYY-MM-DD, got {text!r}", data=text) from None


# (LineSpec field, file column, parser) for every column of a line file.
_LINE_FIELDS: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("service_code", "SERVICE_CODE", parse_service_code),
    ("msisdn", "MSISDN", _optional(parse_msisdn)),
    ("customer", "CUSTOMER", parse_customer_id),
    ("network_type", "TYPE", lambda t: _choice(NetworkType, t.upper(), "network type")),
    ("function_class", "FUNCTION", lambda t: _choice(FunctionClass, t.lower(), "function class")),
    ("identity_verified", "IDENTITY_VERIFIED", _verified),
    (
        "contract_type",
        "CONTRACT",
        _optional(lambda t: _choice(ContractType, t.lower(), "contract type")),
    ),
    (
        "activation_trigger",
        "ACTIVATION",
        _optional(lambda t: _choice(ActivationTrigger, t.lower(), "activation trigger")),
    ),
    ("activation_date", "ACTIVATION_DATE", _optional(_date)),
    ("delivered_on", "DELIVERED_ON", _optional(_date)),
    (
        "form_factor",
        "FORM_FACTOR",
        _optional(lambda t: _choice(FormFactor, t.lower(), "form factor")),
    ),
)


def _existing_lines(session: Session, specs: list[tuple[int, LineSpec]]) -> dict[str, LineSpec]:
    codes = [spec.service_code for _, spec in specs]
    found: dict[str, LineSpec] = {}
    for start in range(0, len(codes), 500):
        for line in session.execute(
            select(Line).where(Line.service_code.in_(codes[start : start + 500]))
        ).scalars():
            found[line.service_code] = LineSpec(
                **{f.name: getattr(line, f.name) for f in fields(LineSpec)}
            )
    return found


def _msisdns_taken(
    session: Session, new: list[tuple[int, LineSpec]], existing: Mapping[str, LineSpec]
) -> list[RowProblem]:
    wanted = {spec.msisdn: line_no for line_no, spec in new if spec.msisdn}
    numbers = list(wanted)
    problems = []
    for start in range(0, len(numbers), 500):
        for code, msisdn in session.execute(
            select(Line.service_code, Line.msisdn).where(
                Line.msisdn.in_(numbers[start : start + 500])
            )
        ):
            if code not in existing and msisdn is not None:
                problems.append(
                    RowProblem(wanted[msisdn], "MSISDN", f"{msisdn} already belongs to line {code}")
                )
    return problems


@dataclass(frozen=True)
class LineUpdated:
    """Which facts of a line changed."""

    service_code: str
    changed: dict[str, str]
    audit_seq: int | None


def update_line(
    database: Database,
    actor: Actor,
    service_code: str,
    *,
    identity_verified: bool | None = None,
    delivered_on: date | None = None,
    activation_date: date | None = None,
) -> LineUpdated:
    """Record a line's identity check, its card's arrival date, or its activation date.

    An identity check, once recorded, is not taken back here: that is a
    decision for the customer's contract, not the warehouse.
    """
    if identity_verified is False:
        raise UsageError("an identity verification cannot be withdrawn at the station")
    with database.write() as session:
        line = session.execute(
            select(Line).where(Line.service_code == service_code).with_for_update()
        ).scalar_one_or_none()
        if line is None:
            raise NotFoundError(f"no line {service_code}", kind="line", key=service_code)
        changed: dict[str, str] = {}
        if identity_verified and not line.identity_verified:
            line.identity_verified = True
            changed["identity_verified"] = "yes"
        if delivered_on is not None and line.delivered_on != delivered_on:
            line.delivered_on = delivered_on
            changed["delivered_on"] = delivered_on.isoformat()
        if activation_date is not None and line.activation_date != activation_date:
            line.activation_date = activation_date
            changed["activation_date"] = activation_date.isoformat()
        seq = None
        if changed:
            seq = append_event(
                session, actor, "line-update", service_code=service_code, details=changed
            ).seq
    return LineUpdated(service_code=service_code, changed=changed, audit_seq=seq)
