"""The lifecycle rules of docs/domain.md, one by one, without a database."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from provisioning.errors import LifecycleError
from provisioning.lifecycle import (
    CARD_STEPS,
    ActivationTrigger,
    CardState,
    CardStep,
    ContractType,
    FormFactor,
    FunctionClass,
    LineState,
    LineStep,
    NetworkType,
    Rule,
    check_combination,
    check_identity,
    check_line_offered,
    check_network_type,
    check_resume,
    check_stock_form_factor,
    check_type_i_contract,
    check_type_i_validity,
    four_years_after,
    next_card_state,
    next_line_state,
    return_required,
    type_i_validity,
)

D, K, I = NetworkType.D, NetworkType.K, NetworkType.I  # noqa: E741 - the type's name
DATA, SMS, VOICE = FunctionClass.DATA, FunctionClass.SMS, FunctionClass.VOICE
STANDARD, MICRO, NANO, MULTI = (
    FormFactor.STANDARD,
    FormFactor.MICRO,
    FormFactor.NANO,
    FormFactor.MULTI,
)

# The table of docs/domain.md (別紙1-3), written out cell by cell.
OFFERED_TABLE = {
    (D, DATA): {STANDARD, MICRO, NANO, MULTI},
    (D, SMS): {STANDARD, MICRO, NANO, MULTI},
    (D, VOICE): {STANDARD, MICRO, NANO, MULTI},
    (K, DATA): set(),
    (K, SMS): {MULTI},
    (K, VOICE): {MULTI},
    (I, DATA): {MULTI, NANO},
    (I, SMS): set(),
    (I, VOICE): set(),
}


@pytest.mark.parametrize(
    ("network", "function", "form"), list(itertools.product(NetworkType, FunctionClass, FormFactor))
)
def test_combination_table(network: NetworkType, function: FunctionClass, form: FormFactor) -> None:
    if form in OFFERED_TABLE[(network, function)]:
        check_combination(network, function, form)
    else:
        with pytest.raises(LifecycleError) as refused:
            check_combination(network, function, form)
        assert refused.value.rule == Rule.ALLOWED_COMBINATION
        assert "別紙" in str(refused.value)


def test_line_offered_and_stock_form_factor() -> None:
    check_line_offered(K, VOICE)
    with pytest.raises(LifecycleError, match="type K offers no data"):
        check_line_offered(K, DATA)
    with pytest.raises(LifecycleError, match="type I offers no voice"):
        check_line_offered(I, VOICE)
    check_stock_form_factor(I, NANO)
    with pytest.raises(LifecycleError, match="type K cards come as multi"):
        check_stock_form_factor(K, NANO)
    with pytest.raises(LifecycleError):
        check_stock_form_factor(I, STANDARD)


def test_voice_needs_identity() -> None:
    check_identity(VOICE, True, service_code="hdd1")
    check_identity(DATA, False, service_code="hdd1")
    check_identity(SMS, False, service_code="hdd1")
    with pytest.raises(LifecycleError) as refused:
        check_identity(VOICE, False, service_code="hdd1")
    assert refused.value.rule == Rule.VOICE_IDENTITY and "§9-8" in str(refused.value)


def test_network_type_must_match() -> None:
    check_network_type(D, D, iccid="x")
    with pytest.raises(LifecycleError, match="type K card"):
        check_network_type(K, D, iccid="x")


def test_lost_card_never_returns_to_use() -> None:
    for state in (CardState.LOST, CardState.LOST_FOUND):
        for step in (
            CardStep.PROVISION,
            CardStep.REPORT_LOST,
            CardStep.REISSUE_FAULTY,
            CardStep.CHANGE_FORM_FACTOR,
        ):
            with pytest.raises(LifecycleError) as refused:
                next_card_state(state, step, iccid="8981", network_type=D)
            assert refused.value.rule == Rule.LOST_NEVER_REUSED
    assert (
        next_card_state(CardState.LOST, CardStep.RETURN, iccid="x", network_type=D)
        is CardState.LOST_FOUND
    )
    # Found before or after its line got a new card: it stays out of use either way.
    for state in (CardState.LOST, CardState.LOST_FOUND):
        assert next_card_state(state, CardStep.REISSUE_LOST, iccid="x", network_type=D) is state
        with pytest.raises(LifecycleError):
            check_resume(state, service_code="s")
    with pytest.raises(LifecycleError) as refused:
        next_card_state(CardState.LOST_FOUND, CardStep.RETURN, iccid="x", network_type=D)
    assert refused.value.rule == Rule.RETURNED_CLOSED


def test_no_state_leads_back_to_stock() -> None:
    for step, moves in CARD_STEPS.items():
        assert CardState.IN_STOCK not in moves.values(), step
    for state in CardState:
        if state is CardState.IN_STOCK:
            continue
        with pytest.raises(LifecycleError):
            next_card_state(state, CardStep.PROVISION, iccid="x", network_type=D)


def test_return_rules() -> None:
    with pytest.raises(LifecycleError) as refused:
        next_card_state(CardState.ACTIVE, CardStep.RETURN, iccid="x", network_type=D)
    assert refused.value.rule == Rule.RETURN_NEEDS_CANCELLED_LINE
    with pytest.raises(LifecycleError) as refused:
        next_card_state(CardState.IN_STOCK, CardStep.RETURN, iccid="x", network_type=D)
    assert refused.value.rule == Rule.CARD_STATE
    for state in (
        CardState.AWAITING_RETURN,
        CardState.FAULTY,
        CardState.REPLACED,
        CardState.RETIRED,
    ):
        assert (
            next_card_state(state, CardStep.RETURN, iccid="x", network_type=D) is CardState.RETURNED
        )


def test_type_i_need_not_be_returned() -> None:
    assert return_required(D) and return_required(K) and not return_required(I)
    assert (
        next_card_state(CardState.ACTIVE, CardStep.CANCEL_LINE, iccid="x", network_type=D)
        is CardState.AWAITING_RETURN
    )
    assert (
        next_card_state(CardState.ACTIVE, CardStep.CANCEL_LINE, iccid="x", network_type=I)
        is CardState.RETIRED
    )


def test_line_steps() -> None:
    assert (
        next_line_state(LineState.ACTIVE, LineStep.SUSPEND, service_code="s") is LineState.SUSPENDED
    )
    assert (
        next_line_state(LineState.SUSPENDED, LineStep.RESUME, service_code="s") is LineState.ACTIVE
    )
    for state, step in (
        (LineState.PENDING, LineStep.SUSPEND),
        (LineState.ACTIVE, LineStep.RESUME),
        (LineState.CANCELLED, LineStep.REISSUE),
        (LineState.CANCELLED, LineStep.CANCEL),
        (LineState.ACTIVE, LineStep.PROVISION),
    ):
        with pytest.raises(LifecycleError) as refused:
            next_line_state(state, step, service_code="s")
        assert refused.value.rule == Rule.LINE_STATE


def test_resume_needs_a_card_that_is_not_lost() -> None:
    check_resume(CardState.ACTIVE, service_code="s")
    with pytest.raises(LifecycleError) as refused:
        check_resume(CardState.LOST, service_code="s")
    assert refused.value.rule == Rule.LOST_NEEDS_REISSUE


def test_type_i_contract_required() -> None:
    check_type_i_contract(I, ContractType.PREPAID, ActivationTrigger.MANUAL)
    check_type_i_contract(D, None, None)
    with pytest.raises(LifecycleError):
        check_type_i_contract(I, ContractType.MONTHLY, None)


def test_prepaid_type_i_four_year_rule() -> None:
    arrived = date(2020, 4, 1)
    assert four_years_after(arrived) == date(2024, 4, 1)
    assert four_years_after(date(2020, 2, 29)) == date(2024, 2, 29)
    assert four_years_after(date(2096, 2, 29)) == date(2100, 2, 28)
    prepaid = ContractType.PREPAID
    assert type_i_validity(I, prepaid, arrived, None, date(2024, 4, 1)).valid
    assert not type_i_validity(I, prepaid, arrived, None, date(2024, 4, 2)).valid
    assert type_i_validity(I, prepaid, arrived, date(2024, 3, 31), date(2030, 1, 1)).valid
    assert not type_i_validity(I, prepaid, arrived, date(2024, 4, 2), date(2030, 1, 1)).valid
    # The rule is for prepaid type I only, and starts when the card arrives.
    assert type_i_validity(I, ContractType.MONTHLY, arrived, None, date(2030, 1, 1)).valid
    assert type_i_validity(D, prepaid, arrived, None, date(2030, 1, 1)).valid
    assert type_i_validity(I, prepaid, None, None, date(2030, 1, 1)).valid
    with pytest.raises(LifecycleError) as refused:
        check_type_i_validity(I, prepaid, arrived, None, date(2025, 1, 1), service_code="s")
    assert refused.value.rule == Rule.TYPE_I_PREPAID_4_YEARS and "§10-2" in str(refused.value)
