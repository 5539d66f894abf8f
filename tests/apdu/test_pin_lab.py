"""The PIN commands and policy against lab cards (real pcscd + vpcd)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apdu.card import Card, read_card
from apdu.errors import PinPolicyError
from apdu.pin import PinAttemptError, PinPolicy
from apdu.transport.pcsc import PcscTransport
from tests.support.cli import simtool

pytestmark = pytest.mark.lab


def counters(reader: str) -> dict[str, int | None]:
    # A warm reset first, as a power cycle would: a card hides the counter of a
    # PIN verified in the current session.
    with PcscTransport(reader) as transport:
        transport.reset()
        pins = read_card(transport).pins
    return {name: pin.retries for name, pin in pins.items()}


def test_status_json(fresh_card: Any) -> None:
    reader, _ = fresh_card()
    result = simtool("pin", "status", "--reader", reader, "--json")
    assert result.code == 0, result.stderr
    assert result.json["pin1"]["retries"] == 3
    assert result.json["pin1"]["enabled"] is True
    assert result.json["puk1"]["retries"] == 10


def test_three_wrong_verifies_stop_at_one(fresh_card: Any) -> None:
    reader, profile = fresh_card()
    wrong = "1111" if profile.pin1 != "1111" else "2222"
    first = simtool("pin", "verify", "--reader", reader, "--pin", wrong, "--json")
    second = simtool("pin", "verify", "--reader", reader, "--pin", wrong, "--json")
    third = simtool("pin", "verify", "--reader", reader, "--pin", wrong, "--json")
    assert first.code != 0 and "3 -> 2" in first.stderr
    assert second.code != 0 and "2 -> 1" in second.stderr
    assert third.code != 0
    assert "PIN policy" in third.stderr and "last-attempt" in third.stderr
    assert counters(reader)["pin1"] == 1


def test_unblock_with_profile_puk_restores_three(fresh_card: Any) -> None:
    reader, profile = fresh_card("blocked-pin")
    result = simtool(
        "pin",
        "unblock",
        "--reader",
        reader,
        "--pin-stdin",
        "--json",
        input=f"{profile.puk1}\n0000\n",
    )
    assert result.code == 0, result.stderr
    assert counters(reader)["pin1"] == 3
    assert profile.puk1 not in result.output


def test_ensure_default_changes_a_known_pin_back(fresh_card: Any) -> None:
    reader, _ = fresh_card()
    changed = simtool("pin", "change", "--reader", reader, "--pin", "0000", "--new-pin", "4321")
    assert changed.code == 0, changed.stderr
    result = simtool("pin", "ensure-default", "--reader", reader, "--pin", "4321", "--json")
    assert result.code == 0, result.stderr
    assert result.json["outcome"] == "changed-to-default"
    verify = simtool("pin", "verify", "--reader", reader, "--pin", "0000")
    assert verify.code == 0, verify.stderr


def test_ensure_default_on_new_stock(fresh_card: Any) -> None:
    reader, _ = fresh_card()
    result = simtool("pin", "ensure-default", "--reader", reader, "--json")
    assert result.code == 0, result.stderr
    assert result.json["outcome"] == "already-default"
    assert counters(reader)["pin1"] == 3


def test_ensure_default_never_guesses_on_a_used_counter(fresh_card: Any) -> None:
    reader, _ = fresh_card()
    simtool("pin", "verify", "--reader", reader, "--pin", "9999")
    result = simtool("pin", "ensure-default", "--reader", reader, "--json")
    assert result.code != 0
    assert result.json["outcome"] == "cannot-prove"
    assert counters(reader)["pin1"] == 2  # untouched by ensure-default


def test_full_state_machine(fresh_card: Any) -> None:
    reader, profile = fresh_card()
    with PcscTransport(reader) as transport:
        policy = PinPolicy(Card(transport))
        assert policy.verify("pin1", "0000").retries_after == 3
        policy.change("pin1", "0000", "1234")
        with pytest.raises(PinAttemptError) as wrong:
            policy.verify("pin1", "0000")
        assert (wrong.value.retries_before, wrong.value.retries_after) == (3, 2)
        policy.verify("pin1", "1234")
        policy.disable("pin1", "1234")
        assert policy.status()["pin1"].enabled is False
        policy.enable("pin1", "1234")
        assert policy.status()["pin1"].enabled is True
        # PIN2 lives in the application: its own counter.
        with pytest.raises(PinAttemptError):
            policy.verify("pin2", "9999" if profile.pin2 != "9999" else "8888")
        assert policy.counter("pin2")[0] == 2
        policy.verify("pin2", profile.pin2)
        assert policy.counter("pin2")[0] in (3, None)


def test_block_and_unblock_with_force(fresh_card: Any) -> None:
    reader, profile = fresh_card()
    with PcscTransport(reader) as transport:
        forced = PinPolicy(Card(transport), force=True)
        for _ in range(3):
            with pytest.raises(PinAttemptError):
                forced.verify("pin1", "9876")
        assert forced.counter("pin1") == (0, True)
        with pytest.raises(PinPolicyError) as blocked:
            forced.verify("pin1", "0000")
        assert blocked.value.rule == "blocked"
        outcome = forced.unblock("pin1", profile.puk1, "2468")
        assert outcome.retries_after == 3
        forced.verify("pin1", "2468")


def test_puk_dead_after_ten(fresh_card: Any) -> None:
    reader, profile = fresh_card("blocked-pin")
    wrong_puk = "12345678" if profile.puk1 != "12345678" else "87654321"
    with PcscTransport(reader) as transport:
        policy = PinPolicy(Card(transport))
        for expected in range(9, 0, -1):
            with pytest.raises(PinAttemptError) as info:
                policy.unblock("pin1", wrong_puk, "0000")
            assert info.value.retries_after == expected
        with pytest.raises(PinPolicyError):
            policy.unblock("pin1", wrong_puk, "0000")  # the last PUK attempt needs --force
        PinPolicy(Card(transport), force=True)
        forced = PinPolicy(Card(transport), force=True)
        with pytest.raises(PinAttemptError):
            forced.unblock("pin1", wrong_puk, "0000")
        assert forced.is_dead()
    result = simtool(
        "pin", "unblock", "--reader", reader, "--puk", profile.puk1, "--new-pin", "0000"
    )
    assert result.code != 0 and "dead" in result.stderr
    status = simtool("pin", "status", "--reader", reader, "--json")
    assert status.json["pin1"]["state"] == "dead"


def test_secrets_absent_from_output_and_trace(fresh_card: Any, tmp_path: Any) -> None:
    reader, profile = fresh_card("blocked-pin")
    trace = tmp_path / "pin.jsonl"
    result = simtool(
        "pin",
        "unblock",
        "--reader",
        reader,
        "--puk",
        profile.puk1,
        "--new-pin",
        "5678",
        "--trace",
        str(trace),
        "--json",
    )
    assert result.code == 0, result.stderr
    text = trace.read_text()
    for secret in (profile.puk1, "5678", profile.puk1.encode().hex(), b"5678".hex()):
        assert secret.upper() not in text.upper()
        assert secret not in result.output


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["verify", "change", "disable", "enable", "unblock"]),
            st.sampled_from(["pin1", "pin2"]),
            st.sampled_from(["0000", "1111", "2222", "12345678", "00000000"]),
        ),
        min_size=1,
        max_size=14,
    )
)
def test_no_unforced_sequence_reaches_zero(
    fresh_card: Any, ops: list[tuple[str, str, str]]
) -> None:
    reader, _ = fresh_card()
    with PcscTransport(reader) as transport:
        policy = PinPolicy(Card(transport))
        for op, which, value in ops:
            try:
                if op == "verify":
                    policy.verify(which, value[:4])
                elif op == "change":
                    policy.change(which, value[:4], "0000")
                elif op == "disable":
                    policy.disable(which, value[:4])
                elif op == "enable":
                    policy.enable(which, value[:4])
                else:
                    policy.unblock(which, value.ljust(8, "0")[:8], "0000")
            except (PinAttemptError, PinPolicyError):
                pass
            except Exception as error:  # other card refusals (e.g. 6985) are fine
                if "Traceback" in str(error):
                    raise
        for name in ("pin1", "pin2", "puk1", "puk2"):
            retries, _blocked = policy.counter(name)
            assert retries is None or retries >= 1, (name, retries, ops)


def test_classic_sim_pin_operations(fresh_card: Any) -> None:
    # TS 51.011 has no empty VERIFY: counters come from DF.GSM's SELECT
    # response and a wrong CHV answers 9804, yet the policy behaves the same.
    reader, profile = fresh_card("classic-sim")
    status = simtool("pin", "status", "--reader", reader, "--json")
    assert status.code == 0, status.stderr
    assert status.json["pin1"]["retries"] == 3
    first = simtool("pin", "verify", "--reader", reader, "--pin", "1111")
    second = simtool("pin", "verify", "--reader", reader, "--pin", "1111")
    third = simtool("pin", "verify", "--reader", reader, "--pin", "1111")
    assert "3 -> 2" in first.stderr and "2 -> 1" in second.stderr
    assert third.code != 0 and "last-attempt" in third.stderr
    with PcscTransport(reader) as transport:
        forced = PinPolicy(Card(transport), force=True)
        with pytest.raises(PinAttemptError):
            forced.verify("pin1", "1111")
        assert forced.counter("pin1") == (0, True)
        assert forced.unblock("pin1", profile.puk1, "0000").retries_after == 3


def test_read_imsi_after_verify_on_protected_card(fresh_card: Any) -> None:
    from apdu.card import read_imsi

    reader, profile = fresh_card("pin-protected-imsi")
    with PcscTransport(reader) as transport:
        assert read_imsi(transport) is None
        PinPolicy(Card(transport)).verify("pin1", "0000")
        before = transport.stats.apdus
        assert read_imsi(transport) == profile.imsi
        assert transport.stats.apdus - before == 2


def test_verify_leaves_the_card_locked_for_the_next_process(fresh_card: Any) -> None:
    # Issue 9: a PIN verified by one command must not stay verified for
    # whoever uses the reader next. No reset here: the next process sees the
    # card exactly as the verify command left it.
    reader, _ = fresh_card()
    verify = simtool("pin", "verify", "--reader", reader, "--pin", "0000", "--json")
    assert verify.code == 0, verify.stderr
    assert verify.json["retries_after"] == 3
    status = simtool("pin", "status", "--reader", reader, "--json")
    assert status.code == 0, status.stderr
    assert status.json["pin1"]["verified"] is False
    assert status.json["pin1"]["retries"] == 3
    assert status.json["pin1"]["state"] == "enabled"


def test_unblock_and_enable_leave_the_card_locked(fresh_card: Any) -> None:
    reader, profile = fresh_card("blocked-pin")
    unblock = simtool(
        "pin", "unblock", "--reader", reader, "--pin-stdin", input=f"{profile.puk1}\n0000\n"
    )
    assert unblock.code == 0, unblock.stderr
    assert simtool("pin", "status", "--reader", reader, "--json").json["pin1"]["verified"] is False
    disable = simtool("pin", "disable", "--reader", reader, "--pin", "0000")
    assert disable.code == 0, disable.stderr
    enable = simtool("pin", "enable", "--reader", reader, "--pin", "0000")
    assert enable.code == 0, enable.stderr
    status = simtool("pin", "status", "--reader", reader, "--json").json
    assert (status["pin1"]["verified"], status["pin1"]["retries"]) == (False, 3)


def test_a_verified_pin_reports_its_full_counter(fresh_card: Any) -> None:
    reader, _ = fresh_card()
    with PcscTransport(reader) as transport:
        PinPolicy(Card(transport)).verify("pin1", "0000")
        pin1 = read_card(transport).pins["pin1"]
        assert (pin1.verified, pin1.retries, pin1.state) == (True, 3, "verified")
        assert transport.security_state_changed
    # Leaving the with block reset the card: a new connection finds it locked.
    with PcscTransport(reader) as transport:
        pin1 = read_card(transport).pins["pin1"]
        assert (pin1.verified, pin1.retries) == (False, 3)
