"""The reader registry: URLs, plug-ins, the fast path, and the commands that use it.

The "done when" of issue 8 is here: ``simtool read --reader virtual:default
--json`` prints the default profile's ICCID with no pcscd and no lab, and
``--reader replay:TRACE`` of that read's trace prints the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apdu.errors import UsageError
from apdu.virtual import load_profile
from simtool.readers import (
    BACKENDS,
    ReaderUrl,
    expand_readers,
    known_schemes,
    parse_reader_url,
    resolve_single,
)
from tests.support.cli import CliResult

DEFAULT = load_profile("default")


def run(*args: str, env: dict[str, str], cwd: Path | None = None) -> CliResult:
    """``python -m simtool ARGS`` with exactly ``env`` (variables can be left out)."""
    proc = subprocess.run(
        [sys.executable, "-m", "simtool", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """No pcscd and no lab: PC/SC points at a socket that does not exist, the lab
    directory is empty, and virtual cards keep their state in the test's directory."""
    env = dict(os.environ)
    env["PCSCLITE_CSOCK_NAME"] = str(tmp_path / "no-pcscd" / "pcscd.comm")
    env["SIMTOOL_LAB_DIR"] = str(tmp_path / "no-lab")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return env


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lab:3", ReaderUrl("lab", "3")),
        ("LAB:all", ReaderUrl("lab", "all")),
        ("pcsc:0", ReaderUrl("pcsc", "0")),
        ("pcsc:Reader: with a colon 00 00", ReaderUrl("pcsc", "Reader: with a colon 00 00")),
        ("0", ReaderUrl("pcsc", "0", bare=True)),
        ("Virtual PCD 00 01", ReaderUrl("pcsc", "Virtual PCD 00 01", bare=True)),
        ("virtual:default", ReaderUrl("virtual", "default")),
        ("virtual:/tmp/my card.json", ReaderUrl("virtual", "/tmp/my card.json")),
        ("replay:t.jsonl", ReaderUrl("replay", "t.jsonl")),
        ("modem:/dev/ttyUSB2", ReaderUrl("modem", "/dev/ttyUSB2")),
        (
            "modem:simmodem://quectel?faults=urc",
            ReaderUrl("modem", "simmodem://quectel?faults=urc"),
        ),
    ],
)
def test_reader_urls(text: str, expected: ReaderUrl) -> None:
    assert parse_reader_url(text) == expected


@pytest.mark.parametrize("text", ["lba:0", "", "   ", "virtual:", "usb:1"])
def test_bad_reader_urls_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_reader_url(text)
    if ":" in text and text.split(":")[1]:
        assert "known: lab, modem, pcsc, replay, virtual" in str(caught.value)


def test_every_builtin_scheme_is_known_and_loads() -> None:
    from simtool.readers import backend_for

    assert set(BACKENDS) <= set(known_schemes())
    for scheme in BACKENDS:
        assert backend_for(scheme).scheme == scheme


def test_a_single_card_command_refuses_a_url_of_many_readers(offline_env: dict[str, str]) -> None:
    with pytest.raises(UsageError, match="works on one card"):
        resolve_single("lab:all")
    result = run("read", "--reader", "lab:all", env=offline_env)
    assert result.code == 64, result.stderr
    assert "works on one card" in result.stderr


def test_resolving_a_url_loads_no_heavy_module() -> None:
    # The fast path: a card command pays for its own backend only. rich and
    # SQLAlchemy are never loaded by the registry; pyscard only by pcsc:/lab:.
    code = textwrap.dedent(
        """
        import sys
        from apdu.card import read_iccid
        from simtool.readers import OpenOptions, expand_readers, open_reader
        expand_readers("virtual:default")
        with open_reader("virtual:default") as transport:
            read_iccid(transport)
        heavy = sorted(
            m for m in ("rich", "sqlalchemy", "smartcard", "serial", "provisioning")
            if m in sys.modules
        )
        print(",".join(heavy))
        """
    )
    env = {**os.environ, "XDG_STATE_HOME": tempfile.mkdtemp(prefix="simtool-state-")}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
    finally:
        shutil.rmtree(env["XDG_STATE_HOME"], ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


# --- plug-ins ---------------------------------------------------------------------------------

PLUGIN = """
from apdu.transport.inprocess import InProcessTransport
from apdu.virtual import VirtualUicc, load_profile
from simtool.readers import ReaderBackend


class FakeBackend(ReaderBackend):
    scheme = "fake"
    summary = "a card of the plug-in"

    def open(self, url, options, tracer):
        return InProcessTransport(
            VirtualUicc(load_profile(url.target)), tracer=tracer, name=str(url)
        )
"""


def test_a_plugin_package_adds_a_scheme_through_its_entry_point(
    tmp_path: Path, offline_env: dict[str, str]
) -> None:
    site = tmp_path / "site"
    (site / "fake_reader_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "fake_reader_plugin.py").write_text(PLUGIN)
    info = site / "fake_reader_plugin-1.0.dist-info"
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-reader-plugin\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[simtool.readers]\nfake = fake_reader_plugin:FakeBackend\n"
    )
    env = {**offline_env, "PYTHONPATH": os.pathsep.join([str(site), str(Path.cwd())])}
    result = run("read", "--reader", "fake:classic-sim", "--json", env=env)
    assert result.code == 0, result.stderr
    assert result.json["iccid"] == load_profile("classic-sim").iccid
    assert result.json["card_type"] == "sim"
    # Without the plug-in the scheme is unknown, and the error says what is known.
    bare = run("read", "--reader", "fake:classic-sim", env=offline_env)
    assert bare.code == 64
    assert "unknown reader scheme 'fake'" in bare.stderr


# --- virtual: and replay: from the command line (no pcscd, no lab) -----------------------------


def test_done_when_virtual_read_then_replay_of_its_trace(
    tmp_path: Path, offline_env: dict[str, str]
) -> None:
    trace = tmp_path / "read.jsonl"
    virtual = run(
        "read", "--reader", "virtual:default", "--json", "--trace", str(trace), env=offline_env
    )
    assert virtual.code == 0, virtual.stderr
    assert virtual.json["iccid"] == DEFAULT.iccid
    assert virtual.json["imsi"] == DEFAULT.imsi
    assert not (tmp_path / "no-pcscd").exists() and not (tmp_path / "no-lab").exists()
    replay = run("read", "--reader", f"replay:{trace}", "--json", env=offline_env)
    assert replay.code == 0, replay.stderr
    # The same document: identity, counters, ATR and APDU count.
    assert replay.json == virtual.json


def test_replay_names_the_apdu_that_departs_from_the_trace(
    tmp_path: Path, offline_env: dict[str, str]
) -> None:
    trace = tmp_path / "read.jsonl"
    assert run("read", "-r", "virtual:default", "--trace", str(trace), env=offline_env).code == 0
    other = run("pin", "status", "--reader", f"replay:{trace}", "--json", env=offline_env)
    assert other.code == 3, other.stderr
    message = other.json["error"]["message"]
    assert "departs from the trace" in message
    assert "APDU " in message and "sent " in message and "trace has " in message
    missing = run("read", "--reader", f"replay:{tmp_path / 'nothing.jsonl'}", env=offline_env)
    assert missing.code == 64
    assert "cannot read trace file" in missing.stderr


def test_virtual_card_keeps_its_counters_between_processes(offline_env: dict[str, str]) -> None:
    for expected in (2, 1):
        wrong = run(
            "pin", "verify", "-r", "virtual:default", "--pin", "1234", "--json", env=offline_env
        )
        assert wrong.code == 5, wrong.stderr
        assert wrong.json["error"]["retries_after"] == expected
    status = run("pin", "status", "--reader", "virtual:default", "--json", env=offline_env)
    assert status.code == 0, status.stderr
    assert status.json["pin1"]["retries"] == 1
    # One retry left: the policy refuses a third guess (nothing sent).
    refused = run("pin", "verify", "-r", "virtual:default", "--pin", "1234", env=offline_env)
    assert refused.code == 4
    # Another profile is another card.
    other = run("pin", "status", "--reader", "virtual:classic-sim", "--json", env=offline_env)
    assert other.json["pin1"]["retries"] == 3


def test_virtual_card_starts_each_process_at_power_on(offline_env: dict[str, str]) -> None:
    card = "virtual:pin-protected-imsi"
    verified = run("pin", "verify", "--reader", card, "--pin", "0000", env=offline_env)
    assert verified.code == 0, verified.stderr
    # A new process: the card was reset, PIN1 is no longer verified.
    read = run("read", "--reader", card, "--json", env=offline_env)
    assert read.code == 0, read.stderr
    assert read.json["imsi_protected"] is True
    assert read.json["imsi"] is None


def test_virtual_card_from_a_json_profile_file(tmp_path: Path, offline_env: dict[str, str]) -> None:
    data = json.loads((Path("apdu/virtual/profiles/default.json")).read_text())
    data.update(name="mine", iccid="8981101000000000993")
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    result = run("read", "--reader", f"virtual:{path}", "--json", env=offline_env)
    assert result.code == 0, result.stderr
    assert result.json["iccid"] == "8981101000000000993"
    assert run("read", "--reader", "virtual:no-such", env=offline_env).code == 64


def test_modem_url_and_modem_option_read_the_same_sim(offline_env: dict[str, str]) -> None:
    from simtool.pytest_plugin import start_modem

    simulator = start_modem("quectel", profile="default")
    try:
        by_url = run("read", "--reader", f"modem:{simulator.path}", "--json", env=offline_env)
        by_option = run("read", "--modem", simulator.path, "--json", env=offline_env)
    finally:
        simulator.stop()
    assert by_url.code == 0, by_url.stderr
    assert by_url.json["iccid"] == DEFAULT.iccid
    assert by_option.json["iccid"] == DEFAULT.iccid
    both = run("read", "--reader", "lab:0", "--modem", "/dev/null", env=offline_env)
    assert both.code == 64


# --- the lab, and a station where the system pcscd is up too ----------------------------------


@pytest.mark.lab
def test_lab_all_expands_to_every_slot(lab: Any) -> None:
    urls = expand_readers("lab:all")
    assert urls == [ReaderUrl("lab", str(info.slot)) for info in lab.slots]
    assert expand_readers("lab:2") == [ReaderUrl("lab", "2")]


@pytest.mark.lab
def test_readers_shows_each_readers_url_and_service(lab: Any) -> None:
    from tests.support.cli import simtool

    result = simtool("readers", "--json")
    assert result.code == 0, result.stderr
    rows = {row["url"]: row for row in result.json["readers"]}
    assert rows["lab:0"]["service"] == "lab"
    assert rows["lab:0"]["reader"] == lab.reader_name(0)
    only = simtool("readers", "--reader", "lab:all", "--json")
    assert [row["url"] for row in only.json["readers"]] == [
        f"lab:{info.slot}" for info in lab.slots
    ]


@pytest.fixture
def system_pcscd() -> Iterator[Any]:
    """A second lab playing the station's system pcscd (see ``as_system``)."""
    from apdu.lab import Lab

    labdir = Path(tempfile.mkdtemp(prefix="simtool-sys-", dir="/tmp"))
    try:
        other = Lab.up(cards=2, seed=7, labdir=labdir, fresh=True)
    except Exception as error:
        shutil.rmtree(labdir, ignore_errors=True)
        pytest.fail(f"the second lab cannot start: {error}", pytrace=False)
    try:
        yield other
    finally:
        other.down()
        shutil.rmtree(labdir, ignore_errors=True)


def as_system(system: Any, lab: Any, *args: str) -> CliResult:
    """``simtool ARGS`` in a mount namespace where /run/pcscd is ``system``'s pcscd
    directory: there the default PC/SC socket answers as a system pcscd does, while
    the session lab is up too. PCSCLITE_CSOCK_NAME is unset, as on a station."""
    run_dir = Path("/run/pcscd")
    run_dir.mkdir(parents=True, exist_ok=True)
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare += ["--user", "--map-root-user"]
    script = 'mount --bind "$1" /run/pcscd && shift && exec "$@"'
    env = {k: v for k, v in os.environ.items() if k != "PCSCLITE_CSOCK_NAME"}
    env["SIMTOOL_LAB_DIR"] = str(lab.labdir)
    command = [*unshare, "sh", "-c", script, "sh", str(system.pcsc_socket.parent)]
    proc = subprocess.run(
        [*command, sys.executable, "-m", "simtool", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.lab
def test_a_bare_index_is_refused_when_system_pcscd_and_lab_are_both_up(
    lab: Any, system_pcscd: Any
) -> None:
    listed = as_system(system_pcscd, lab, "readers", "--json")
    assert listed.code == 0, listed.stderr
    services = {row["url"]: row["service"] for row in listed.json["readers"]}
    assert services["pcsc:0"] == "system" and services["lab:0"] == "lab"
    assert len(services) == len(system_pcscd.slots) + len(lab.slots)

    ambiguous = as_system(system_pcscd, lab, "read", "--reader", "0", "--json")
    assert ambiguous.code == 64, ambiguous.stderr
    message = ambiguous.json["error"]["message"]
    assert "ambiguous" in message
    assert f"pcsc:0 ({system_pcscd.reader_name(0)})" in message
    assert f"lab:0 ({lab.reader_name(0)})" in message

    system_card = as_system(system_pcscd, lab, "read", "--reader", "pcsc:0", "--json")
    assert system_card.code == 0, system_card.stderr
    assert system_card.json["iccid"] == system_pcscd.profile(0).iccid
    lab_card = as_system(system_pcscd, lab, "read", "--reader", "lab:0", "--json")
    assert lab_card.code == 0, lab_card.stderr
    assert lab_card.json["iccid"] == lab.profile(0).iccid
    assert system_card.json["iccid"] != lab_card.json["iccid"]
