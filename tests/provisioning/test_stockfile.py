"""Reading vendor stock files: both layouts, every kind of bad row, arbitrary input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apdu.errors import ParseError
from provisioning.errors import InputFileError, RowProblem
from provisioning.identifiers import luhn_check_digit, luhn_ok
from provisioning.lifecycle import FormFactor, NetworkType
from provisioning.secrets import CardSecrets
from provisioning.stockfile import (
    STOCK_COLUMNS,
    CheckedCard,
    StockFileReader,
    StockValidator,
    check_quantity,
    example_rows,
    write_output_file,
    write_stock_csv,
)

HEADER = "ICCID,IMSI,PIN1,PUK1,PIN2,PUK2,KI,OPC,ADM1,FORM_FACTOR"
KI = "000102030405060708090A0B0C0D0E0F"
OPC = "F0E0D0C0B0A090807060504030201000"


def iccid(serial: int) -> str:
    payload = f"8981100{serial:012d}"
    return payload + str(luhn_check_digit(payload))


def good(serial: int, form_factor: str = "nano") -> str:
    return (
        f"{iccid(serial)},44010{serial:010d},0000,1234567{serial % 10},1111,87654321,"
        f"{KI},{OPC},12345678,{form_factor}"
    )


def read_all(
    path: Path, *, network_type: NetworkType = NetworkType.D, form_factor: FormFactor | None = None
) -> tuple[list[CheckedCard], list[RowProblem]]:
    with StockFileReader(path) as reader:
        validator = StockValidator(reader, network_type=network_type, form_factor=form_factor)
        cards: list[CheckedCard] = []
        problems: list[RowProblem] = []
        for line, text in reader.lines():
            result = validator.check(line, text)
            if isinstance(result, list):
                problems.extend(result)
            else:
                cards.append(result)
        problems.extend(check_quantity(reader, validator.rows_seen))
    return cards, problems


def write(tmp_path: Path, text: str, name: str = "stock.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_become_cards_with_their_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, "\n".join([HEADER, good(1), good(2, "MICRO"), ""]))
    cards, problems = read_all(path)
    assert problems == []
    assert [(c.line, c.iccid, c.form_factor) for c in cards] == [
        (2, iccid(1), FormFactor.NANO),
        (3, iccid(2), FormFactor.MICRO),
    ]
    secrets = CardSecrets.from_plaintext(cards[0].plaintext)
    assert (secrets.pin1, secrets.puk1, secrets.pin2, secrets.puk2, secrets.adm1) == (
        "0000",
        "12345671",
        "1111",
        "87654321",
        "12345678",
    )
    assert secrets.ki == bytes.fromhex(KI) and secrets.opc == bytes.fromhex(OPC)


def test_vendor_output_file_layout(tmp_path: Path) -> None:
    rows = list(example_rows(3, first_serial=40))
    path = tmp_path / "batch.out"
    write_output_file(path, rows)
    with StockFileReader(path) as reader:
        assert reader.layout == "output-file"
        assert reader.metadata["quantity"] == "3"
    cards, problems = read_all(path)
    assert problems == []
    assert [c.iccid for c in cards] == [r.iccid for r in rows]
    assert [CardSecrets.from_plaintext(c.plaintext) for c in cards] == [r.secrets for r in rows]


def test_output_file_with_vendor_aliases_and_extra_columns(tmp_path: Path) -> None:
    text = (
        "* ORDER 1234\nCustomer : MVNO\nfree text the vendor wrote\n"
        "ICCID IMSI1 PIN PUK PIN2 PUK2 ADM K OPC ACC KIC1\n"
        f"{iccid(7)} 440100000000007 0000 11112222 1234 33334444 0A0B0C0D0E0F0102 {KI} {OPC}"
        " 0001 DEADBEEF\n"
    )
    path = write(tmp_path, text, "vendor.out")
    cards, problems = read_all(path, form_factor=FormFactor.MULTI)
    assert problems == []
    secrets = CardSecrets.from_plaintext(cards[0].plaintext)
    assert secrets.adm1 == "0A0B0C0D0E0F0102" and secrets.ki == bytes.fromhex(KI)
    with StockFileReader(path) as reader:
        assert reader.ignored_columns == ("ACC", "KIC1")


def test_every_bad_row_is_named(tmp_path: Path) -> None:
    bad_luhn = iccid(3)[:-1] + str((int(iccid(3)[-1]) + 1) % 10)
    lines = [
        HEADER,
        good(1),
        good(1).replace("44010", "44011", 1),  # line 3: ICCID repeated
        good(3).replace(iccid(3), bad_luhn),  # line 4: Luhn
        good(4).replace("440100000000004", "00101000000004"),  # line 5: IMSI format
        good(5, "credit-card"),  # line 6: unknown form factor
        good(6).replace(",1234567", ",12345", 1),  # line 7: PUK1 too short
        f"{iccid(8)},440100000000001",  # line 8: too few fields
        good(9)
        .replace(f"{iccid(9)},44010", f"{iccid(9)},44010", 1)
        .replace("440100000000009", "440100000000001"),  # line 9: IMSI repeated
    ]
    cards, problems = read_all(write(tmp_path, "\n".join(lines)))
    assert [c.line for c in cards] == [2]
    reasons = {(p.line, p.field): p.reason for p in problems}
    assert "duplicates line 2" in reasons[(3, "ICCID")]
    assert "Luhn" in reasons[(4, "ICCID")]
    assert "15 digits" in reasons[(5, "IMSI")]
    assert "unknown form factor" in reasons[(6, "FORM_FACTOR")]
    assert reasons[(7, "PUK1")] == "must be 8 digits"
    assert "expected 10 fields, found 2" in reasons[(8, "row")]
    assert "duplicates line 2" in reasons[(9, "IMSI")]


def test_secret_values_never_appear_in_problems(tmp_path: Path) -> None:
    secret_puk = "98765X32"
    line = good(1).replace("12345671", secret_puk)
    _, problems = read_all(write(tmp_path, f"{HEADER}\n{line}\n"))
    assert problems == [RowProblem(2, "PUK1", "must be 8 digits")]
    assert secret_puk not in str(problems)


def test_form_factor_rules(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n{good(1, 'nano')}\n{good(2, '')}\n")
    _, problems = read_all(path)
    assert [(p.line, p.field) for p in problems] == [(3, "FORM_FACTOR")]
    cards, problems = read_all(path, form_factor=FormFactor.NANO)
    assert problems == [] and len(cards) == 2
    _, problems = read_all(path, form_factor=FormFactor.MICRO)
    assert [(p.line, "--form-factor" in p.reason) for p in problems] == [(2, True)]
    # Type K cards come as multi SIMs only: a nano type K card is refused.
    _, problems = read_all(path, network_type=NetworkType.K)
    assert any("type K cards come as multi" in p.reason for p in problems)


def test_header_problems_stop_at_once(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as missing:
        StockFileReader(write(tmp_path, "ICCID,IMSI,PIN1\n"))
    assert missing.value.problems == (RowProblem(1, "PUK1", "column missing"),)
    with pytest.raises(InputFileError, match="header"):
        StockFileReader(write(tmp_path, "just some text\nmore\n"))
    with pytest.raises(InputFileError) as twice:
        StockFileReader(write(tmp_path, "ICCID,IMSI,PIN1,PUK1,PUK\n"))
    assert twice.value.problems[0].reason == "column appears twice"
    (tmp_path / "latin1.csv").write_bytes(HEADER.encode() + b"\n\xff\xfe\n")
    with (
        pytest.raises(InputFileError, match="not a stock file"),
        StockFileReader(tmp_path / "latin1.csv") as reader,
    ):
        list(reader.lines())


def test_quantity_in_the_preamble_is_checked(tmp_path: Path) -> None:
    rows = list(example_rows(2))
    path = tmp_path / "short.out"
    write_output_file(path, rows)
    path.write_text(path.read_text().replace("Quantity: 2", "Quantity: 3"))
    _, problems = read_all(path)
    assert [p.field for p in problems] == ["Quantity"]
    assert "says 3 cards but has 2 rows" in problems[0].reason


def test_written_csv_reads_back(tmp_path: Path) -> None:
    rows = list(example_rows(20, first_serial=999))
    path = tmp_path / "back.csv"
    assert write_stock_csv(path, rows) == 20
    cards, problems = read_all(path)
    assert problems == []
    assert [(c.iccid, c.imsi, CardSecrets.from_plaintext(c.plaintext)) for c in cards] == [
        (r.iccid, r.imsi, r.secrets) for r in rows
    ]


_cells = st.one_of(
    st.sampled_from(
        [
            "0000",
            "12345678",
            "1234",
            KI,
            KI.lower(),
            "12345678",
            "0A0B0C0D0E0F0102",
            "nano",
            "MULTI",
            "4ff",
            "",
            " 0000",
            "x",
            iccid(5),
            "440100000000005",
            "4401000000000",
            '"quoted"',
            "8981",
            "ab,cd",
        ]
    ),
    st.text(alphabet='0123456789ABCDEFabcdef ,"-', max_size=36),
)


@st.composite
def _stock_lines(draw: st.DrawFn) -> list[str]:
    """Mostly valid rows with a few cells replaced, and now and then pure noise."""
    if draw(st.booleans()):
        return draw(st.lists(_cells, min_size=8, max_size=11))
    cells = good(draw(st.integers(1, 10**6)), draw(st.sampled_from(["nano", "4FF", ""]))).split(",")
    for _ in range(draw(st.integers(0, 2))):
        cells[draw(st.integers(0, len(cells) - 1))] = draw(_cells)
    return cells


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_stock_lines(), st.sampled_from(["csv", "output-file"]))
def test_fast_and_field_paths_agree(tmp_path: Path, cells: list[str], layout: str) -> None:
    """A line the whole-line pattern accepts is exactly what field-by-field checking accepts."""
    separator = "," if layout == "csv" else " "
    header = HEADER.replace(",", separator)
    text = separator.join(cells)
    path = write(tmp_path, f"{header}\n{text}\n", f"agree.{layout}")
    with StockFileReader(path) as reader:
        fast = StockValidator(reader, network_type=NetworkType.D, form_factor=None)
        slow = StockValidator(reader, network_type=NetworkType.D, form_factor=None)
        for line, raw in reader.lines():
            via_fast = fast.check(line, raw)
            via_fields = slow._check_fields(line, reader.split(raw))
            if isinstance(via_fast, list) or isinstance(via_fields, list):
                assert isinstance(via_fast, list) and isinstance(via_fields, list)
                assert via_fast == via_fields
            else:
                assert via_fast[:4] == via_fields[:4]
                assert CardSecrets.from_plaintext(via_fast.plaintext) == CardSecrets.from_plaintext(
                    via_fields.plaintext
                )


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_rows_or_parse_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        read_all(path)
    except ParseError as error:
        assert isinstance(error, InputFileError) and error.problems


def test_the_lab_writes_the_one_format_the_importer_reads(tmp_path: Path) -> None:
    """One definition of the vendor file: the lab's writer goes through the importer's."""
    from apdu.virtual import lab_profile
    from provisioning import labstock as lab_stock

    profiles = [lab_profile(slot) for slot in range(3)]
    path = tmp_path / "lab-stock.csv"
    assert lab_stock.write_stock_file(path, profiles) == 3
    assert path.read_text().splitlines()[0] == ",".join(STOCK_COLUMNS)
    cards, problems = read_all(path)
    assert problems == []
    for card, profile in zip(cards, profiles, strict=True):
        assert (card.iccid, card.imsi, card.form_factor.value) == (
            profile.iccid,
            profile.imsi,
            profile.form_factor,
        )
        secrets = CardSecrets.from_plaintext(card.plaintext)
        assert secrets == lab_stock.stock_row(profile).secrets
        assert (secrets.ki, secrets.opc, secrets.puk1) == (profile.ki, profile.opc, profile.puk1)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from([19, 20]), st.integers(0, 3), st.integers(0, 9999)),
        min_size=1,
        max_size=12,
        unique=True,
    ),
    st.integers(1, 3),
)
def test_luhn_of_the_fast_path_is_the_luhn_check(
    tmp_path: Path, numbers: list[tuple[int, int, int]], heads_kept: int
) -> None:
    """The fast path's Luhn sums (table and remembered heads) accept exactly valid ICCIDs."""
    import provisioning.stockfile as stockfile

    # Few distinct heads (all but the last four digits), as in a real file.
    iccids = [f"8981{head:0{length - 8}d}{tail:04d}" for length, head, tail in numbers]
    lines = [f"{number},44010{n:010d},0000,12345678,,,,,,nano" for n, number in enumerate(iccids)]
    path = write(tmp_path, HEADER + "\n" + "\n".join(lines) + "\n", "luhn.csv")
    kept = stockfile._LUHN_HEADS_KEPT
    stockfile._LUHN_HEADS_KEPT = heads_kept  # the remembered heads are cleared often
    try:
        with StockFileReader(path) as reader:
            validator = StockValidator(reader, network_type=NetworkType.D, form_factor=None)
            results = list(validator.check_lines(reader.lines()))
    finally:
        stockfile._LUHN_HEADS_KEPT = kept
    for number, result in zip(iccids, results, strict=True):
        assert isinstance(result, tuple) == luhn_ok(number), number
        if isinstance(result, list):
            assert [p.field for p in result] == ["ICCID"]
    assert validator.rows_seen == len(iccids)
    assert validator.last_line == len(iccids) + 1


def test_bytes_read_follows_the_lines(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    write_stock_csv(path, example_rows(3000))
    size = path.stat().st_size
    with StockFileReader(path) as reader:
        positions = [reader.bytes_read for _ in reader.lines()]
    assert positions == sorted(positions) and positions[-1] == size
    # Never far ahead of the line just read: one decoder chunk at most.
    assert positions[0] < 64 * 1024 < size
