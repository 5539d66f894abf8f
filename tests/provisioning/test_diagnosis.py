"""The diagnosis: the decision as pure logic, and the authentication test on card models.

The authentication test runs against virtual cards personalised with the
TS 35.208 conformance sets (keys and RAND from the spec) through the in-process
transport; the lab tests (real pcscd) are in ``test_diagnose_lab.py``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from apdu.milenage import Milenage
from apdu.transport.inprocess import InProcessTransport
from apdu.virtual import VirtualUicc, load_profile
from provisioning.diagnosis import (
    AuthResult,
    CardEvidence,
    Counter,
    FileCheck,
    Finding,
    ModemEvidence,
    RecordEvidence,
    Verdict,
    _sqn_after,
    decide,
    find_diagnosis,
    read_card_evidence,
    run_authentication_test,
)
from provisioning.errors import NotFoundError
from provisioning.lifecycle import CardState, LineState
from provisioning.secrets import CardSecrets
from tests.apdu.test_milenage import TEST_SETS

ICCID = "8981101000000000019"
FULL = {
    "pin1": Counter(3, True, False),
    "pin2": Counter(3, True, False),
    "puk1": Counter(10, None, False),
    "puk2": Counter(10, None, False),
}


def healthy(**changes: object) -> CardEvidence:
    """Evidence of a card with nothing wrong (fields overridable)."""
    evidence = CardEvidence(
        atr=bytes.fromhex("3B9F95801FC78031E073FE21135753494D544F4F4CA4"),
        deadline=3.0,
        card_type="uicc",
        iccid=ICCID,
        files=[FileCheck("EF.IMSI", "ok"), FileCheck("EF.AD", "ok")],
        imsi="440109990000001",
        msisdn="07012345678",
        counters=dict(FULL),
        auth=AuthResult("match", "authenticate", compared=["RES", "CK", "IK"]),
    )
    for name, value in changes.items():
        setattr(evidence, name, value)
    return evidence


RECORD = RecordEvidence(
    iccid=ICCID,
    known=True,
    card_state=CardState.ACTIVE,
    imsi="440109990000001",
    has_keys=True,
    service_code="hdd1234567",
    line_state=LineState.ACTIVE,
    msisdn="07012345678",
)


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


@pytest.mark.parametrize(
    ("card", "record", "scan", "verdict", "code"),
    [
        (healthy(), RECORD, None, Verdict.OK, "auth-match"),
        (healthy(), RECORD, ICCID, Verdict.OK, "label-match"),
        (
            healthy(counters={**FULL, "pin1": Counter(0, True, True)}),
            RECORD,
            None,
            Verdict.RECOVERABLE,
            "pin1-blocked",
        ),
        (
            healthy(counters={**FULL, "pin2": Counter(0, True, True)}),
            RECORD,
            None,
            Verdict.RECOVERABLE,
            "pin2-blocked",
        ),
        (
            healthy(
                counters={**FULL, "pin1": Counter(0, True, True), "puk1": Counter(0, None, True)}
            ),
            RECORD,
            None,
            Verdict.BLOCKED,
            "puk1-blocked",
        ),
        (
            healthy(mute=True, iccid=None, stopped_at="SELECT EF.ICCID"),
            None,
            None,
            Verdict.FAULTY,
            "card-mute",
        ),
        (healthy(no_atr="deadline", iccid=None), None, None, Verdict.FAULTY, "no-atr"),
        (
            healthy(auth=AuthResult("mac-failure", "authenticate", sw="9862")),
            RECORD,
            None,
            Verdict.FAULTY,
            "auth-mac-failure",
        ),
        (
            healthy(auth=AuthResult("mismatch", "authenticate", mismatched=["RES"])),
            RECORD,
            None,
            Verdict.FAULTY,
            "auth-mismatch",
        ),
        (
            healthy(files=[FileCheck("EF.IMSI", "garbled", "length byte")], imsi=None),
            RECORD,
            None,
            Verdict.FAULTY,
            "file-garbled",
        ),
        (
            healthy(files=[FileCheck("EF.UST", "missing")]),
            RECORD,
            None,
            Verdict.FAULTY,
            "file-missing",
        ),
        (healthy(imsi="440109990000099"), RECORD, None, Verdict.FAULTY, "imsi-mismatch"),
        (healthy(), RECORD, "8981101000000000027", Verdict.FAULTY, "label-mismatch"),
        (healthy(iccid="8981101000000000010"), RECORD, None, Verdict.FAULTY, "iccid-luhn"),
        (
            healthy(),
            RecordEvidence(iccid=ICCID, known=False),
            None,
            Verdict.NOT_OURS,
            "not-in-database",
        ),
        (
            healthy(atr_findings=[("error", "tck-wrong")]),
            RECORD,
            None,
            Verdict.FAULTY,
            "atr-malformed",
        ),
    ],
)
def test_verdicts(
    card: CardEvidence,
    record: RecordEvidence | None,
    scan: str | None,
    verdict: Verdict,
    code: str,
) -> None:
    got, findings = decide(card, record, scanned_iccid=scan)
    assert got is verdict
    assert code in codes(findings)


def test_a_faulty_card_of_another_operator_is_not_ours() -> None:
    card = healthy(auth=None, files=[FileCheck("EF.IMSI", "garbled")])
    verdict, _ = decide(card, RecordEvidence(iccid=ICCID, known=False))
    assert verdict is Verdict.NOT_OURS


def test_state_of_card_and_line_are_findings_not_verdicts() -> None:
    lost = replace(RECORD, card_state=CardState.LOST_FOUND, line_state=LineState.SUSPENDED)
    verdict, findings = decide(healthy(), lost)
    assert verdict is Verdict.OK
    assert {"never-reuse", "line"} <= codes(findings)
    line = next(f for f in findings if f.code == "line")
    assert line.severity == "warning" and line.evidence["state"] is LineState.SUSPENDED


def test_counters_changed_is_reported() -> None:
    card = healthy(counters_after={**FULL, "pin1": Counter(2, True, False)})
    _, findings = decide(card, RECORD)
    changed = next(f for f in findings if f.code == "counters-changed")
    assert changed.evidence["before"]["pin1"] == 3 and changed.evidence["after"]["pin1"] == 2


def test_modem_registration_separates_network_from_card() -> None:
    _, findings = decide(
        healthy(), RECORD, modem=ModemEvidence("/dev/pts/9", 3, False, reject_cause=7)
    )
    registration = next(f for f in findings if f.code == "modem-registration")
    assert registration.severity == "warning" and registration.evidence["reject_cause"] == 7


def test_sqn_after_steps_one_seq() -> None:
    assert _sqn_after(bytes(6)) == (32).to_bytes(6, "big")
    assert _sqn_after((32).to_bytes(6, "big")) == (64).to_bytes(6, "big")
    assert _sqn_after((45).to_bytes(6, "big")) == (64).to_bytes(6, "big")
    assert _sqn_after(b"\xff" * 6) == bytes(6)


def test_unknown_report_id_is_not_found(tmp_path: object) -> None:
    with pytest.raises(NotFoundError, match="not a diagnosis report id"):
        find_diagnosis(None, "hello")  # type: ignore[arg-type]


# --- the authentication test on card models --------------------------------------------


def _card(ki: bytes, opc: bytes, name: str = "default") -> VirtualUicc:
    return VirtualUicc(replace(load_profile(name), ki=ki, opc=opc))


@pytest.mark.parametrize("test_set", TEST_SETS, ids=lambda s: f"set{s[0]}")
def test_authentication_against_ts_35_208_sets(test_set: tuple[object, ...]) -> None:
    k, rand, opc = (bytes.fromhex(str(test_set[i])) for i in (1, 2, 6))
    res, ck, ik = (bytes.fromhex(str(test_set[i])) for i in (9, 10, 11))
    # The spec's outputs for its RAND are what the station's side computes.
    assert Milenage(k, opc).f2345(rand)[:3] == (res, ck, ik)
    transport = InProcessTransport(_card(k, opc))
    evidence, card = read_card_evidence(transport)
    assert card is not None and evidence.responsive
    result = run_authentication_test(
        card, evidence, CardSecrets(ki=k, opc=opc), pin1="0000", rand=lambda n: rand
    )
    assert result.outcome == "match"
    assert result.compared == ["RES", "CK", "IK", "Kc"]
    assert not result.resynchronised and result.pin1_presented


@pytest.mark.parametrize("test_set", TEST_SETS[:6], ids=lambda s: f"set{s[0]}")
def test_run_gsm_algorithm_on_a_classic_sim(test_set: tuple[object, ...]) -> None:
    k, rand, opc = (bytes.fromhex(str(test_set[i])) for i in (1, 2, 6))
    transport = InProcessTransport(_card(k, opc, "classic-sim"))
    evidence, card = read_card_evidence(transport)
    assert card is not None and evidence.card_type == "sim"
    result = run_authentication_test(
        card, evidence, CardSecrets(ki=k, opc=opc), pin1="0000", rand=lambda n: rand
    )
    assert (result.outcome, result.method, result.compared) == (
        "match",
        "run-gsm-algorithm",
        ["SRES", "Kc"],
    )


def test_a_used_card_is_resynchronised_once_from_its_auts() -> None:
    k, opc = bytes.fromhex(str(TEST_SETS[0][1])), bytes.fromhex(str(TEST_SETS[0][6]))
    model = _card(k, opc)
    transport = InProcessTransport(model)
    secrets = CardSecrets(ki=k, opc=opc)
    for expected_resync in (False, True, True):
        transport.reset()
        evidence, card = read_card_evidence(transport)
        assert card is not None
        result = run_authentication_test(card, evidence, secrets, pin1="0000")
        assert result.outcome == "match"
        assert result.resynchronised is expected_resync


def test_another_key_is_a_mac_failure() -> None:
    k, opc = bytes.fromhex(str(TEST_SETS[0][1])), bytes.fromhex(str(TEST_SETS[0][6]))
    other = bytes.fromhex(str(TEST_SETS[1][1]))
    transport = InProcessTransport(_card(k, opc))
    evidence, card = read_card_evidence(transport)
    assert card is not None
    result = run_authentication_test(card, evidence, CardSecrets(ki=other, opc=opc), pin1="0000")
    assert (result.outcome, result.sw) == ("mac-failure", "9862")


def test_pin1_is_presented_only_on_a_full_counter() -> None:
    k, opc = bytes.fromhex(str(TEST_SETS[0][1])), bytes.fromhex(str(TEST_SETS[0][6]))
    model = VirtualUicc(replace(load_profile("default"), ki=k, opc=opc, pin1_retries=2))
    transport = InProcessTransport(model)
    evidence, card = read_card_evidence(transport)
    assert card is not None
    result = run_authentication_test(card, evidence, CardSecrets(ki=k, opc=opc), pin1="0000")
    assert (result.outcome, result.reason, result.pin1_presented) == (
        "not-run",
        "pin1-counter-not-full",
        False,
    )
    no_pin = run_authentication_test(
        card, evidence, CardSecrets(ki=k, opc=opc), pin1="0000", present_pin=False
    )
    assert no_pin.reason == "pin-not-presented"
    assert model.pin_state(0x01) == (2, True, 10)


def test_a_pin1_the_customer_changed_is_reported_and_never_retried() -> None:
    k, opc = bytes.fromhex(str(TEST_SETS[0][1])), bytes.fromhex(str(TEST_SETS[0][6]))
    model = VirtualUicc(replace(load_profile("default"), ki=k, opc=opc, pin1="2468"))
    transport = InProcessTransport(model)
    evidence, card = read_card_evidence(transport)
    assert card is not None
    result = run_authentication_test(card, evidence, CardSecrets(ki=k, opc=opc), pin1="0000")
    assert (result.outcome, result.reason, result.pin1_presented) == (
        "not-run",
        "pin1-rejected",
        True,
    )
    # One attempt, on a full counter, never a second one.
    assert model.pin_state(0x01)[0] == 2


def test_a_disabled_pin1_needs_no_pin_for_the_test() -> None:
    k, opc = bytes.fromhex(str(TEST_SETS[2][1])), bytes.fromhex(str(TEST_SETS[2][6]))
    model = VirtualUicc(replace(load_profile("default"), ki=k, opc=opc, pin1_enabled=False))
    evidence, card = read_card_evidence(InProcessTransport(model))
    assert card is not None
    result = run_authentication_test(
        card, evidence, CardSecrets(ki=k, opc=opc), pin1=None, present_pin=False
    )
    assert (result.outcome, result.pin1_presented) == ("match", False)
