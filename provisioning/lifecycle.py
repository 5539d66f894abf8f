"""The lifecycle of cards and lines: which state may follow which, and the rules.

This is the one place that says what the warehouse may do (``docs/domain.md``). Every
workflow asks it before writing; an illegal step raises
:class:`~provisioning.errors.LifecycleError` naming the :class:`Rule` it breaks.

Card states::

    in-stock --provision--> active --report lost--> lost --return--> lost-found
                              |  --reissue (faulty)--> faulty ----return--> returned
                              |  --form-factor change--> replaced --return--> returned
                              '--line cancelled--> awaiting-return (D, K) --return--> returned
                                                   retired (I: need not be returned)

No state leads back to ``in-stock``: cards are lent, not sold, and a card that
came back is closed. A card reported lost is never used again, even when found.

Line states: ``pending`` (waiting for its first card) -> ``active`` <->
``suspended``; any of them -> ``cancelled``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from provisioning.errors import LifecycleError


class CardState(enum.StrEnum):
    """Where a card is in its life."""

    IN_STOCK = "in-stock"
    ACTIVE = "active"
    LOST = "lost"
    FAULTY = "faulty"
    REPLACED = "replaced"
    AWAITING_RETURN = "awaiting-return"
    RETIRED = "retired"
    RETURNED = "returned"
    LOST_FOUND = "lost-found"


class LineState(enum.StrEnum):
    """Where a line (回線) is in its life."""

    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


class NetworkType(enum.StrEnum):
    """D: docomo, operator-spec SIM; K: KDDI; I: docomo network, operator's own SIM (§1)."""

    D = "D"
    K = "K"
    I = "I"  # noqa: E741 - the operator's own name for the type


class FunctionClass(enum.StrEnum):
    """What a line carries."""

    DATA = "data"
    SMS = "sms"
    VOICE = "voice"


class FormFactor(enum.StrEnum):
    """The plastic: the chip does not know it; the vendor's stock record does."""

    STANDARD = "standard"
    MICRO = "micro"
    NANO = "nano"
    MULTI = "multi"


class ContractType(enum.StrEnum):
    """Contract of a type I card (§4)."""

    MONTHLY = "monthly"
    PREPAID = "prepaid"


class ActivationTrigger(enum.StrEnum):
    """When a type I card starts: at first attach, or on a chosen date (§4)."""

    ATTACH = "attach"
    MANUAL = "manual"


class ReissueReason(enum.StrEnum):
    """Why a line gets a new card with the same phone number."""

    FAULTY = "faulty"
    LOST = "lost"


class Rule(enum.StrEnum):
    """The rules of ``docs/domain.md``, by code; :data:`RULE_TEXT` says each in words."""

    STOCK_ONLY = "stock-only"
    LOST_NEVER_REUSED = "lost-never-reused"
    RETURNED_CLOSED = "returned-closed"
    ALLOWED_COMBINATION = "allowed-combination"
    NETWORK_TYPE_MATCH = "network-type-match"
    VOICE_IDENTITY = "voice-identity-verified"
    FORM_FACTOR_MATCH = "form-factor-match"
    CHIP_ICCID = "chip-iccid"
    LABEL_MATCH = "label-match"
    IMSI_MATCH = "imsi-match"
    PIN_DEFAULT = "pin1-default"
    LINE_STATE = "line-state"
    CARD_STATE = "card-state"
    RETURN_NEEDS_CANCELLED_LINE = "return-after-cancel"
    LOST_NEEDS_REISSUE = "lost-reissue-before-resume"
    TYPE_I_CONTRACT = "type-i-contract"
    TYPE_I_PREPAID_4_YEARS = "type-i-prepaid-4-years"
    FORM_FACTOR_CHANGE = "form-factor-change"
    DEVICE_CONFIGURED = "device-configured"
    DEVICE_ONCE = "device-once"
    DEVICE_RETURN = "device-return-after-cancel"
    DEVICE_SIM_MATCH = "device-sim-match"


RULE_TEXT: Mapping[Rule, str] = {
    Rule.STOCK_ONLY: "only a card in stock can be bound to a line",
    Rule.LOST_NEVER_REUSED: "a card once reported lost is never used again, even when found",
    Rule.RETURNED_CLOSED: "a returned card is closed and never reused",
    Rule.ALLOWED_COMBINATION: "network type x function x form factor must be offered (別紙1-3)",
    Rule.NETWORK_TYPE_MATCH: "a card's network type must be the line's network type",
    Rule.VOICE_IDENTITY: "a voice line needs the customer's identity verified first (§9-8)",
    Rule.FORM_FACTOR_MATCH: "the card's form factor must be the one the order asks for",
    Rule.CHIP_ICCID: "the chip's ICCID must be a valid E.118 number (8981..., Luhn)",
    Rule.LABEL_MATCH: "the chip's ICCID must be the one on the scanned label",
    Rule.IMSI_MATCH: "the chip's IMSI must be the vendor's record",
    Rule.PIN_DEFAULT: "a card leaves with PIN1 = 0000, not blocked",
    Rule.LINE_STATE: "the line is not in a state that allows this",
    Rule.CARD_STATE: "the card is not in a state that allows this",
    Rule.RETURN_NEEDS_CANCELLED_LINE: "a card in use on a line is returned only after the "
    "line is cancelled",
    Rule.LOST_NEEDS_REISSUE: "a line whose card is lost resumes only with a new card",
    Rule.TYPE_I_CONTRACT: "a type I line has a contract type and an activation trigger (§4)",
    Rule.TYPE_I_PREPAID_4_YEARS: "a prepaid type I card not activated within 4 years of "
    "arrival is invalid (§10-2)",
    Rule.FORM_FACTOR_CHANGE: "a form-factor change needs a different form factor",
    Rule.DEVICE_CONFIGURED: "a bundled device ships with the connection settings set and read back",
    Rule.DEVICE_ONCE: "a device is bound to one line at a time",
    Rule.DEVICE_RETURN: "a lent device comes back, and may ship again, once its line is "
    "cancelled (§13-2)",
    Rule.DEVICE_SIM_MATCH: "a router is registered with the line whose card is in it",
}


def refuse(
    rule: Rule,
    message: str,
    *,
    state: str | None = None,
    iccid: str | None = None,
    service_code: str | None = None,
) -> LifecycleError:
    """A :class:`LifecycleError` whose message ends with the rule in words."""
    return LifecycleError(
        f"{message} (rule {rule.value}: {RULE_TEXT[rule]})",
        rule=rule.value,
        state=state,
        iccid=iccid,
        service_code=service_code,
    )


# The form factors offered per network type and function class (別紙1-3).
# A missing function class means the type does not offer it at all.
_ALL_FORM_FACTORS = frozenset(FormFactor)
OFFERED: Mapping[NetworkType, Mapping[FunctionClass, frozenset[FormFactor]]] = {
    NetworkType.D: {
        FunctionClass.DATA: _ALL_FORM_FACTORS,
        FunctionClass.SMS: _ALL_FORM_FACTORS,
        FunctionClass.VOICE: _ALL_FORM_FACTORS,
    },
    NetworkType.K: {
        FunctionClass.SMS: frozenset({FormFactor.MULTI}),
        FunctionClass.VOICE: frozenset({FormFactor.MULTI}),
    },
    NetworkType.I: {
        FunctionClass.DATA: frozenset({FormFactor.MULTI, FormFactor.NANO}),
    },
}


def _names(form_factors: frozenset[FormFactor]) -> str:
    return ", ".join(sorted(form_factors))


def check_line_offered(network_type: NetworkType, function: FunctionClass) -> None:
    """Refuse a line whose type does not offer its function class at all."""
    if function not in OFFERED[network_type]:
        offered = ", ".join(sorted(OFFERED[network_type]))
        raise refuse(
            Rule.ALLOWED_COMBINATION,
            f"type {network_type} offers no {function} lines (only {offered})",
        )


def check_combination(
    network_type: NetworkType, function: FunctionClass, form_factor: FormFactor
) -> None:
    """Refuse a type x function x form factor the operator does not offer."""
    check_line_offered(network_type, function)
    allowed = OFFERED[network_type][function]
    if form_factor not in allowed:
        raise refuse(
            Rule.ALLOWED_COMBINATION,
            f"type {network_type} {function} lines take {_names(allowed)} SIMs, not {form_factor}",
        )


def card_serves(
    card_form_factor: FormFactor,
    wanted: FormFactor,
    network_type: NetworkType,
    function: FunctionClass,
) -> bool:
    """Whether a card of ``card_form_factor`` can ship for an order of ``wanted``.

    A card serves its own size; a multi-cut card also breaks out to any size
    its network type offers for the function (a type D multi SIM serves a
    nano order; a type K one serves only multi, the one size K offers).
    """
    if card_form_factor is wanted:
        return True
    offered = OFFERED[network_type].get(function, frozenset())
    return card_form_factor is FormFactor.MULTI and wanted in offered


def orders_served(
    network_type: NetworkType, card_form_factor: FormFactor
) -> Mapping[FunctionClass, frozenset[FormFactor]]:
    """Per function class, the ordered sizes a card of this type and size can ship for."""
    served: dict[FunctionClass, frozenset[FormFactor]] = {}
    for function, offered in OFFERED[network_type].items():
        sizes = frozenset(
            size for size in offered if card_serves(card_form_factor, size, network_type, function)
        )
        if sizes:
            served[function] = sizes
    return served


def check_stock_form_factor(network_type: NetworkType, form_factor: FormFactor) -> None:
    """Refuse stock of a form factor no line of its network type could ever take."""
    usable = frozenset().union(*OFFERED[network_type].values())
    if form_factor not in usable:
        raise refuse(
            Rule.ALLOWED_COMBINATION,
            f"type {network_type} cards come as {_names(usable)}, not {form_factor}",
        )


def check_network_type(card_type: NetworkType, line_type: NetworkType, *, iccid: str) -> None:
    """Refuse a type K card for a type D line and the like."""
    if card_type != line_type:
        raise refuse(
            Rule.NETWORK_TYPE_MATCH,
            f"card {iccid} is a type {card_type} card, the line is type {line_type}",
            iccid=iccid,
        )


def check_identity(function: FunctionClass, identity_verified: bool, *, service_code: str) -> None:
    """Refuse a voice card for a line whose customer identity check is not recorded."""
    if function is FunctionClass.VOICE and not identity_verified:
        raise refuse(
            Rule.VOICE_IDENTITY,
            f"voice line {service_code} has no identity verification recorded",
            service_code=service_code,
        )


def check_type_i_contract(
    network_type: NetworkType, contract: ContractType | None, trigger: ActivationTrigger | None
) -> None:
    """Refuse a type I line without its contract type and activation trigger."""
    if network_type is NetworkType.I and (contract is None or trigger is None):
        raise refuse(Rule.TYPE_I_CONTRACT, "a type I line needs --contract and --activation")


def return_required(network_type: NetworkType) -> bool:
    """Whether a card must come back after its line is cancelled (type I need not, §13-2)."""
    return network_type is not NetworkType.I


def four_years_after(day: date) -> date:
    """The same calendar day four years later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + 4)
    except ValueError:
        return day.replace(year=day.year + 4, day=28)


@dataclass(frozen=True)
class TypeIValidity:
    """Whether a type I card is still valid under the prepaid 4-year rule (§10-2)."""

    valid: bool
    deadline: date | None


def type_i_validity(
    network_type: NetworkType,
    contract: ContractType | None,
    delivered_on: date | None,
    activation_date: date | None,
    today: date,
) -> TypeIValidity:
    """Apply §10-2: a prepaid type I card must get its activation date within 4 years.

    The clock starts when the card arrives at the customer's address; before
    that, and for every other card, the rule does not apply.
    """
    if network_type is not NetworkType.I or contract is not ContractType.PREPAID:
        return TypeIValidity(valid=True, deadline=None)
    if delivered_on is None:
        return TypeIValidity(valid=True, deadline=None)
    deadline = four_years_after(delivered_on)
    activated_in_time = activation_date is not None and activation_date <= deadline
    return TypeIValidity(valid=activated_in_time or today <= deadline, deadline=deadline)


def check_type_i_validity(
    network_type: NetworkType,
    contract: ContractType | None,
    delivered_on: date | None,
    activation_date: date | None,
    today: date,
    *,
    service_code: str,
) -> None:
    """Refuse to act on a line whose prepaid type I card has become invalid."""
    validity = type_i_validity(network_type, contract, delivered_on, activation_date, today)
    if not validity.valid:
        raise refuse(
            Rule.TYPE_I_PREPAID_4_YEARS,
            f"line {service_code}: the prepaid type I card arrived {delivered_on} and "
            f"was not activated by {validity.deadline}; it is invalid",
            service_code=service_code,
        )


class CardStep(enum.StrEnum):
    """What can happen to a card."""

    PROVISION = "provision"
    REPORT_LOST = "report-lost"
    REISSUE_FAULTY = "reissue-faulty"
    REISSUE_LOST = "reissue-lost"
    CHANGE_FORM_FACTOR = "change-form-factor"
    CANCEL_LINE = "cancel-line"
    RETURN = "return"


_RETURNABLE = (CardState.AWAITING_RETURN, CardState.FAULTY, CardState.REPLACED, CardState.RETIRED)

# step -> {state before: state after}. CANCEL_LINE depends on the network type
# and is resolved in next_card_state.
CARD_STEPS: Mapping[CardStep, Mapping[CardState, CardState]] = {
    CardStep.PROVISION: {CardState.IN_STOCK: CardState.ACTIVE},
    CardStep.REPORT_LOST: {CardState.ACTIVE: CardState.LOST},
    CardStep.REISSUE_FAULTY: {CardState.ACTIVE: CardState.FAULTY},
    # A lost card may already have been found and taken in when its line gets
    # the new card; either way it stays out of use.
    CardStep.REISSUE_LOST: {
        CardState.LOST: CardState.LOST,
        CardState.LOST_FOUND: CardState.LOST_FOUND,
    },
    CardStep.CHANGE_FORM_FACTOR: {CardState.ACTIVE: CardState.REPLACED},
    CardStep.CANCEL_LINE: {
        CardState.ACTIVE: CardState.AWAITING_RETURN,
        CardState.LOST: CardState.LOST,
        CardState.LOST_FOUND: CardState.LOST_FOUND,
    },
    CardStep.RETURN: {
        **{state: CardState.RETURNED for state in _RETURNABLE},
        CardState.LOST: CardState.LOST_FOUND,
    },
}


def next_card_state(
    state: CardState, step: CardStep, *, iccid: str, network_type: NetworkType
) -> CardState:
    """The state a card in ``state`` goes to on ``step``, or the rule that forbids it."""
    after = CARD_STEPS[step].get(state)
    if after is not None:
        if after is CardState.AWAITING_RETURN and not return_required(network_type):
            return CardState.RETIRED
        return after
    raise _card_refusal(state, step, iccid)


def _card_refusal(state: CardState, step: CardStep, iccid: str) -> LifecycleError:
    if state in (CardState.LOST, CardState.LOST_FOUND) and step is not CardStep.RETURN:
        return refuse(
            Rule.LOST_NEVER_REUSED,
            f"card {iccid} was reported lost ({state})",
            state=state,
            iccid=iccid,
        )
    if state in (CardState.RETURNED, CardState.LOST_FOUND):
        return refuse(
            Rule.RETURNED_CLOSED,
            f"card {iccid} was already taken in ({state})",
            state=state,
            iccid=iccid,
        )
    if step is CardStep.PROVISION:
        return refuse(
            Rule.STOCK_ONLY, f"card {iccid} is {state}, not in stock", state=state, iccid=iccid
        )
    if step is CardStep.RETURN and state is CardState.ACTIVE:
        return refuse(
            Rule.RETURN_NEEDS_CANCELLED_LINE,
            f"card {iccid} is still active on its line",
            state=state,
            iccid=iccid,
        )
    return refuse(
        Rule.CARD_STATE, f"card {iccid} is {state}; cannot {step}", state=state, iccid=iccid
    )


class LineStep(enum.StrEnum):
    """What can happen to a line."""

    PROVISION = "provision"
    SUSPEND = "suspend"
    RESUME = "resume"
    REPORT_LOST = "report-lost"
    REISSUE = "reissue"
    CHANGE_FORM_FACTOR = "change-form-factor"
    CANCEL = "cancel"


LINE_STEPS: Mapping[LineStep, Mapping[LineState, LineState]] = {
    LineStep.PROVISION: {LineState.PENDING: LineState.ACTIVE},
    LineStep.SUSPEND: {LineState.ACTIVE: LineState.SUSPENDED},
    LineStep.RESUME: {LineState.SUSPENDED: LineState.ACTIVE},
    LineStep.REPORT_LOST: {
        LineState.ACTIVE: LineState.SUSPENDED,
        LineState.SUSPENDED: LineState.SUSPENDED,
    },
    # A reissue keeps the line's state; the lost case resumes it (see reissue).
    LineStep.REISSUE: {
        LineState.ACTIVE: LineState.ACTIVE,
        LineState.SUSPENDED: LineState.SUSPENDED,
    },
    LineStep.CHANGE_FORM_FACTOR: {
        LineState.ACTIVE: LineState.ACTIVE,
        LineState.SUSPENDED: LineState.SUSPENDED,
    },
    LineStep.CANCEL: {
        LineState.PENDING: LineState.CANCELLED,
        LineState.ACTIVE: LineState.CANCELLED,
        LineState.SUSPENDED: LineState.CANCELLED,
    },
}


def next_line_state(state: LineState, step: LineStep, *, service_code: str) -> LineState:
    """The state a line in ``state`` goes to on ``step``, or the rule that forbids it."""
    after = LINE_STEPS[step].get(state)
    if after is None:
        raise refuse(
            Rule.LINE_STATE,
            f"line {service_code} is {state}; cannot {step}",
            state=state,
            service_code=service_code,
        )
    return after


def check_resume(card_state: CardState | None, *, service_code: str) -> None:
    """Refuse to resume a line whose card is lost: a new card must be issued first."""
    if card_state in (CardState.LOST, CardState.LOST_FOUND):
        raise refuse(
            Rule.LOST_NEEDS_REISSUE,
            f"line {service_code}'s card is lost; reissue a card (simtool reissue "
            f"--reason lost) and the line resumes with it",
            service_code=service_code,
            state=card_state,
        )
