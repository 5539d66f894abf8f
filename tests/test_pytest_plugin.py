"""The pytest plugin, as another project's suite uses it (pytester, separate process)."""

from __future__ import annotations

import pytest

from apdu.card import read_iccid
from apdu.files import decode_iccid
from simtool.pytest_plugin import LabCards, SimulatedModem, VirtualCard

pytest_plugins = ["pytester"]

SELECT_MF = bytes.fromhex("00A4000C023F00")
READ_ICCID = [bytes.fromhex("00A4080C022FE2"), bytes.fromhex("00B000000A")]


def test_fixtures_are_listed_for_any_project(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    for name in ("sim_virtual_card", "sim_lab", "sim_modem"):
        result.stdout.fnmatch_lines([f"{name} -- *pytest_plugin.py*"])


def test_a_foreign_suite_reads_virtual_cards_and_talks_to_a_modem(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        import serial

        def test_default(sim_virtual_card):
            assert sim_virtual_card.transmit(bytes.fromhex("00A4000C023F00")).sw == 0x9000

        @pytest.mark.sim_profile("classic-sim")
        def test_marker_profile(sim_virtual_card):
            assert sim_virtual_card.profile.name == "classic-sim"
            # A classic SIM refuses the UICC class byte.
            assert sim_virtual_card.transmit(bytes.fromhex("00A4000C023F00")).sw == 0x6E00

        @pytest.mark.parametrize("sim_virtual_card", ["blocked-pin"], indirect=True)
        def test_indirect(sim_virtual_card):
            assert sim_virtual_card.profile.name == "blocked-pin"

        @pytest.mark.sim_modem(dialect="quectel")
        def test_modem(sim_modem):
            with serial.Serial(sim_modem.port, timeout=5) as port:
                port.write(b"AT\\r")
                answer = b""
                while b"OK" not in answer:
                    chunk = port.read(64)
                    assert chunk, answer
                    answer += chunk
            assert sim_modem.dialect == "quectel"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)


def test_plugin_objects_are_exported() -> None:
    # The types a foreign suite annotates its tests with.
    assert {VirtualCard.__name__, LabCards.__name__, SimulatedModem.__name__} == {
        "VirtualCard",
        "LabCards",
        "SimulatedModem",
    }


@pytest.mark.sim_lab(cards=2, profiles=["classic-sim"])
def test_sim_lab_inserts_cards_in_real_readers(sim_lab: LabCards) -> None:
    from smartcard.System import readers

    names = {str(reader) for reader in readers()}
    assert set(sim_lab.readers) <= names
    assert sim_lab.profiles[0].name == "classic-sim"
    assert len(sim_lab.urls) == 2
    for slot in sim_lab.slots:
        assert sim_lab.lab.slot(slot).present


def test_sim_virtual_card_reads_the_iccid(sim_virtual_card: VirtualCard) -> None:
    assert sim_virtual_card.transmit(SELECT_MF).sw == 0x9000
    sim_virtual_card.transmit(READ_ICCID[0])
    answer = sim_virtual_card.transmit(READ_ICCID[1])
    assert answer.sw == 0x9000
    assert decode_iccid(answer.data) == sim_virtual_card.profile.iccid
    assert read_iccid(sim_virtual_card.transport) == sim_virtual_card.profile.iccid
    assert sim_virtual_card.api().detect() == "uicc"


def test_sim_modem_fixture_default_dialect(sim_modem: SimulatedModem) -> None:
    assert sim_modem.dialect == "generic"
    assert sim_modem.process.poll() is None
