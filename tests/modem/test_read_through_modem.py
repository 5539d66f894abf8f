"""``simtool read --modem``: the card layer over AT+CSIM, through a real pty."""

from __future__ import annotations

import pytest

from apdu.virtual import lab_profile
from tests.support.cli import simtool


@pytest.mark.parametrize("dialect", ["generic", "quectel", "huawei", "ublox"])
def test_read_card_through_modem(sim_pty: object, dialect: str) -> None:
    sim = sim_pty(dialect)  # type: ignore[operator]
    result = simtool("read", "--modem", sim.path, "--json")
    assert result.code == 0, result.stderr
    profile = lab_profile(0)
    data = result.json
    assert data["iccid"] == profile.iccid
    assert data["imsi"] == profile.imsi
    assert data["msisdn"] == profile.msisdn
    assert data["pins"]["pin1"]["retries"] == 3
    assert data["pins"]["puk1"]["retries"] == 10


def test_read_refuses_reader_and_modem_together(sim_pty: object) -> None:
    sim = sim_pty("generic")  # type: ignore[operator]
    result = simtool("read", "--modem", sim.path, "--reader", "0")
    assert result.code == 64
    assert "not both" in result.stderr
