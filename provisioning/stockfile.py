"""Reading the card vendor's stock data files, row by row, with every problem named.

Two layouts are read:

* **CSV with a header** (``ICCID,IMSI,PIN1,PUK1,...``), as ``simtool lab
  stock-file`` writes it;
* the vendor's whitespace-separated **output file**: optional preamble lines
  (``Quantity: 1000``, ``*****`` rules, ``# comments``), then one line naming the
  columns (``ICCID IMSI PIN1 PUK1 ...``, possibly ``var_Out: ICCID/IMSI/...``),
  then one card per line.

Column names are matched case-insensitively with the vendors' aliases
(``IMSI1``, ``K``, ``ADM``...); columns simtool does not keep are ignored and
listed. Nothing here touches the database: :mod:`provisioning.stock` imports.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, NamedTuple

from apdu.errors import ParseError
from provisioning.errors import InputFileError, LifecycleError, RowProblem
from provisioning.identifiers import luhn_check_digit, parse_iccid, parse_imsi
from provisioning.lifecycle import FormFactor, NetworkType, check_stock_form_factor
from provisioning.secrets import CardSecrets

Layout = Literal["csv", "output-file"]
_Parser = Callable[[str], str]

REQUIRED_COLUMNS = ("ICCID", "IMSI", "PIN1", "PUK1")
OPTIONAL_COLUMNS = ("PIN2", "PUK2", "ADM1", "KI", "OPC", "FORM_FACTOR")
_ALIASES = {
    "ICCID": "ICCID",
    "IMSI": "IMSI",
    "IMSI1": "IMSI",
    "PIN1": "PIN1",
    "PIN": "PIN1",
    "PUK1": "PUK1",
    "PUK": "PUK1",
    "PIN2": "PIN2",
    "PUK2": "PUK2",
    "ADM1": "ADM1",
    "ADM": "ADM1",
    "KI": "KI",
    "K": "KI",
    "OPC": "OPC",
    "FORM_FACTOR": "FORM_FACTOR",
    "FORMFACTOR": "FORM_FACTOR",
}
FORM_FACTOR_NAMES: Mapping[str, FormFactor] = {
    "standard": FormFactor.STANDARD,
    "mini": FormFactor.STANDARD,
    "2ff": FormFactor.STANDARD,
    "micro": FormFactor.MICRO,
    "3ff": FormFactor.MICRO,
    "nano": FormFactor.NANO,
    "4ff": FormFactor.NANO,
    "multi": FormFactor.MULTI,
    "triple": FormFactor.MULTI,
    "multi-cut": FormFactor.MULTI,
}

_PIN = re.compile(r"[0-9]{4,8}")
_PUK = re.compile(r"[0-9]{8}")
_ADM = re.compile(r"[0-9]{8}|[0-9A-Fa-f]{16}")
_KEY128 = re.compile(r"[0-9A-Fa-f]{32}")
#: First characters that need a closer look: comments, blank or indented lines.
_UNUSUAL_START = frozenset("#* \t\f\v")
#: Bytes read from the stock file at a time (memory stays flat: one buffer).
_READ_BUFFER = 1 << 20
_HEADER_SPLIT = re.compile(r"[\s/,;]+")
_METADATA = re.compile(r"\s*([A-Za-z][\w .-]*?)\s*[:=]\s*(.*?)\s*$")


@dataclass(frozen=True)
class StockRow:
    """One valid card of a stock file (``line`` is 1-based in the file)."""

    line: int
    iccid: str
    imsi: str
    form_factor: FormFactor
    secrets: CardSecrets


def _canonical_column(name: str) -> str:
    key = name.strip().upper().replace("-", "_").replace(" ", "_")
    return _ALIASES.get(key, key)


class StockFileReader:
    """Opens a stock file, finds its layout and header, then yields its raw rows.

    Raises :class:`InputFileError` at once when the file has no usable header.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.metadata: dict[str, str] = {}
        # A large buffer: every read lets go of the GIL, and the import's
        # writer thread then holds it for a while; few reads, few hand-overs.
        self._bytes = path.open("rb", buffering=_READ_BUFFER)
        self._stream = io.TextIOWrapper(self._bytes, encoding="utf-8-sig", newline="")
        try:
            self.layout, self.header_line, raw_columns = self._read_header()
        except UnicodeDecodeError as error:
            self._stream.close()
            raise self._file_error(1, "file", f"not UTF-8 text ({error.reason})") from error
        except BaseException:
            self._stream.close()
            raise
        self.columns = tuple(_canonical_column(c) for c in raw_columns)
        self._check_columns()

    def close(self) -> None:
        """Close the file."""
        self._stream.close()

    def __enter__(self) -> StockFileReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _file_error(self, line: int, field: str, reason: str) -> InputFileError:
        return InputFileError(
            f"{self.path}: not a stock file I can read",
            path=str(self.path),
            problems=[RowProblem(line, field, reason)],
        )

    def _read_header(self) -> tuple[Layout, int, list[str]]:
        line_no = 0
        for raw in self._stream:
            line_no += 1
            text = raw.strip()
            if not text or text.startswith(("#", "*")):
                continue
            if "," in text and "ICCID" in text.upper():
                return "csv", line_no, next(csv.reader([text]))
            tokens = [t for t in _HEADER_SPLIT.split(text) if t and not t.endswith(":")]
            upper = {_canonical_column(t) for t in tokens}
            if "ICCID" in upper and "IMSI" in upper:
                return "output-file", line_no, tokens
            # Vendors put free text and "Key: value" facts before the header;
            # the facts are kept (Quantity is checked), the rest is skipped.
            match = _METADATA.match(text)
            if match is not None:
                self.metadata[match.group(1).strip().lower()] = match.group(2)
        raise self._file_error(max(line_no, 1), "header", "no column header naming ICCID and IMSI")

    def _check_columns(self) -> None:
        problems = [
            RowProblem(self.header_line, column, "column missing")
            for column in REQUIRED_COLUMNS
            if column not in self.columns
        ]
        seen: set[str] = set()
        for column in self.columns:
            if column in seen and column in _ALIASES.values():
                problems.append(RowProblem(self.header_line, column, "column appears twice"))
            seen.add(column)
        if problems:
            raise InputFileError(
                f"{self.path}: the header lacks what a stock file needs",
                path=str(self.path),
                problems=problems,
            )

    @property
    def ignored_columns(self) -> tuple[str, ...]:
        """Columns of the file that simtool does not keep."""
        known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
        return tuple(c for c in self.columns if c not in known)

    @property
    def bytes_read(self) -> int:
        """How far into the file reading has got, in bytes (for a progress bar).

        The position of the byte stream under the text decoder: ahead of the
        lines handed out by at most the decoder's chunk (a few kB), and free,
        where counting each line's length would cost every row.
        """
        return self._bytes.tell()

    def lines(self) -> Iterator[tuple[int, str]]:
        """``(line number, text)`` of every data line, in file order (one card per line)."""
        line_no = self.header_line
        try:
            for raw in self._stream:
                line_no += 1
                text = raw.rstrip("\r\n")
                if not text:
                    continue
                if text[0] in _UNUSUAL_START:  # rare: a comment, or an indented line
                    stripped = text.strip()
                    if not stripped or stripped.startswith(("#", "*")):
                        continue
                yield line_no, text
        except UnicodeDecodeError as error:
            raise self._file_error(
                line_no + 1, "file", f"not UTF-8 text ({error.reason})"
            ) from error

    def split(self, text: str) -> list[str]:
        """The values of one data line."""
        if self.layout == "csv":
            try:
                return next(csv.reader([text]))
            except csv.Error:
                return [text]  # an unbalanced quote: reported as a wrong field count
        return text.split()


# (column, pattern, what it must be, required) for every secret column.
_SECRET_RULES: tuple[tuple[str, re.Pattern[str], str, bool], ...] = (
    ("PIN1", _PIN, "4-8 digits", True),
    ("PUK1", _PUK, "8 digits", True),
    ("PIN2", _PIN, "4-8 digits", False),
    ("PUK2", _PUK, "8 digits", False),
    ("ADM1", _ADM, "8 digits or 16 hex digits", False),
    ("KI", _KEY128, "32 hex digits", False),
    ("OPC", _KEY128, "32 hex digits", False),
)


class CheckedCard(NamedTuple):
    """A valid row, ready to seal: ``plaintext`` is :meth:`CardSecrets.to_plaintext` form."""

    line: int
    iccid: str
    imsi: str
    form_factor: FormFactor
    plaintext: bytes

    def __repr__(self) -> str:
        return f"CheckedCard(line={self.line}, iccid={self.iccid!r})"


# The regular expression of one valid value per column, for the fast path.
_FAST_VALUE = {
    "ICCID": r"8981[0-9]{15,16}",
    "IMSI": r"44[01][0-9]{12}",
    "PIN1": r"[0-9]{4,8}",
    "PUK1": r"[0-9]{8}",
    "PIN2": r"[0-9]{4,8}",
    "PUK2": r"[0-9]{8}",
    "ADM1": r"[0-9]{8}|[0-9A-Fa-f]{16}",
    "KI": r"[0-9A-Fa-f]{32}",
    "OPC": r"[0-9A-Fa-f]{32}",
    "FORM_FACTOR": r"[A-Za-z0-9-]+",
}
_PLAINTEXT_ORDER = ("PIN1", "PUK1", "PIN2", "PUK2", "ADM1", "KI", "OPC")

#: A valid row as the bulk path yields it: the fields of :class:`CheckedCard`.
CardFields = tuple[int, str, str, FormFactor, bytes]

# Luhn on the fast path. A digit's weight depends on its place counted from the
# right: the last four digits of an ICCID always weigh the same, so their sum
# comes from one table of the 10,000 four-digit endings; the digits before them
# (the issuer and most of the serial) are shared by runs of consecutive cards,
# so their sum is computed once per run and remembered. A lookup costs a
# fraction of summing 19 digits, for each of a million rows.
_LUHN_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))
#: Luhn sums remembered per ICCID head (cleared when full: memory stays flat).
_LUHN_HEADS_KEPT = 4096


def _luhn_sum(digits: str) -> int:
    """The Luhn sum of ASCII digits whose last one is not doubled.

    Both an ICCID's head (its last digit is the fifth from the right) and its
    last four digits (the check digit last) are such runs.
    """
    backwards = digits.encode()[::-1]
    return sum(backwards[0::2].translate(_LUHN_PLAIN)) + sum(
        backwards[1::2].translate(_LUHN_DOUBLED)
    )


@functools.cache
def _luhn_tail_sums() -> dict[str, int]:
    """The Luhn sum of every four-digit ending of an ICCID."""
    return {f"{n:04d}": _luhn_sum(f"{n:04d}") for n in range(10_000)}


class StockValidator:
    """Checks data lines one by one; remembers ICCIDs and IMSIs to catch duplicates.

    ``form_factor`` is used for rows without a FORM_FACTOR column or value.

    A million-row file goes through here, so a line is first tried against one
    regular expression for the whole line (fast path); only a line that does not
    match, or fails the Luhn or duplicate check, is split into fields and
    checked field by field (the slow path), which names every problem. Both
    accept exactly the same rows (a property test holds them to it).
    """

    def __init__(
        self,
        reader: StockFileReader,
        *,
        network_type: NetworkType,
        form_factor: FormFactor | None,
        track_duplicates: bool = True,
    ) -> None:
        self._split = reader.split
        self.columns = reader.columns
        self.network_type = network_type
        self.form_factor = form_factor
        position = {name: i for i, name in reversed(list(enumerate(self.columns)))}
        self._width = len(self.columns)
        self._iccid = position["ICCID"]
        self._imsi = position["IMSI"]
        self._form_factor_at = position.get("FORM_FACTOR")
        self._secret_at = tuple(
            (position.get(column), column, pattern, what, required)
            for column, pattern, what, required in _SECRET_RULES
        )
        self._fast, self._identity_groups, self._secret_groups = self._fast_pattern(reader.layout)
        self._form_factor_cache: dict[str, FormFactor | str] = {}
        # The values of the cache that are form factors: the fast path's lookup.
        self._good_form_factors: dict[str, FormFactor] = {}
        self.iccid_lines: dict[str, int] = {}
        self.imsi_lines: dict[str, int] = {}
        # Without tracking, memory stays flat however long the file: the
        # database's unique indexes catch a duplicate instead, and the import
        # then reads the file again with tracking to name every bad row.
        self.track_duplicates = track_duplicates
        #: Data lines checked so far (by :meth:`check_lines`: once it has ended).
        self.rows_seen = 0
        #: The line number of the last data line checked.
        self.last_line = 0

    def _fast_pattern(
        self, layout: Layout
    ) -> tuple[re.Pattern[str], tuple[int, int, int], tuple[int, ...]]:
        # Group 1 is always empty: it stands for a column the file lacks, so
        # that Match.group() hands over every value in one call, no None.
        parts: list[str] = []
        group_of: dict[str, int] = {}
        for column in self.columns:
            value = _FAST_VALUE.get(column)
            if value is None:
                parts.append(r'[^,"]*' if layout == "csv" else r"\S+")
                continue
            group_of[column] = len(group_of) + 2
            optional = layout == "csv" and column not in REQUIRED_COLUMNS
            # An optional value's group matches the empty string rather than
            # not taking part, for the same reason. "(X|)" rather than
            # "((?:X)?)": the same strings, but re runs a branch faster than
            # an optional group (0.6 against 1.1 us for a whole line).
            parts.append(f"({value}|)" if optional else f"({value})")
        if layout == "csv":
            pattern = "()" + ",".join(parts)
        else:
            pattern = r"()[ \t]*" + r"[ \t]+".join(parts) + r"[ \t]*"
        iccid, imsi, form_factor = (group_of.get(c, 1) for c in ("ICCID", "IMSI", "FORM_FACTOR"))
        secrets = tuple(group_of.get(column, 1) for column in _PLAINTEXT_ORDER)
        return re.compile(pattern), (iccid, imsi, form_factor), secrets

    def check(self, line: int, text: str) -> CheckedCard | list[RowProblem]:
        """A :class:`CheckedCard`, or every problem of this data line."""
        [checked] = self.check_lines(((line, text),))
        return checked if isinstance(checked, list) else CheckedCard._make(checked)

    def check_lines(
        self, lines: Iterable[tuple[int, str]]
    ) -> Iterator[CardFields | list[RowProblem]]:
        """:meth:`check` for every ``(line number, text)``, in order (the bulk path).

        A valid row comes as a plain tuple of :class:`CheckedCard`'s fields: a
        million rows go through here, and the loop keeps everything it needs in
        local names rather than on ``self``.
        """
        fullmatch = self._fast.fullmatch
        identity_groups = self._identity_groups
        secret_groups = self._secret_groups
        good_form_factors = self._good_form_factors
        default_form_factor = self.form_factor
        track = self.track_duplicates
        iccid_lines = self.iccid_lines
        imsi_lines = self.imsi_lines
        head_sums: dict[str, int] = {}
        tail_sums = _luhn_tail_sums()
        rows = 0
        line = self.last_line
        try:
            for line, text in lines:
                rows += 1
                match = fullmatch(text)
                if match is not None:
                    iccid, imsi, form_factor_text = match.group(*identity_groups)
                    form_factor = (
                        good_form_factors.get(form_factor_text)
                        if form_factor_text
                        else default_form_factor
                    )
                    head = iccid[:-4]
                    head_sum = head_sums.get(head)
                    if head_sum is None:
                        if len(head_sums) >= _LUHN_HEADS_KEPT:
                            head_sums.clear()
                        head_sum = head_sums[head] = _luhn_sum(head)
                    if (
                        form_factor is not None
                        and (head_sum + tail_sums[iccid[-4:]]) % 10 == 0
                        and (not track or (iccid not in iccid_lines and imsi not in imsi_lines))
                    ):
                        if track:
                            iccid_lines[iccid] = line
                            imsi_lines[imsi] = line
                        plaintext = "|".join(match.group(*secret_groups)).encode()
                        yield line, iccid, imsi, form_factor, plaintext
                        continue
                yield self._check_fields(line, self._split(text))
        finally:
            self.rows_seen += rows
            self.last_line = line

    def _check_fields(self, line: int, values: Sequence[str]) -> CheckedCard | list[RowProblem]:
        if len(values) != self._width:
            return [RowProblem(line, "row", f"expected {self._width} fields, found {len(values)}")]
        problems: list[RowProblem] = []
        iccid = self._identifier(
            line,
            "ICCID",
            values[self._iccid].strip(),
            parse_iccid,
            self.iccid_lines if self.track_duplicates else None,
            problems,
        )
        imsi = self._identifier(
            line,
            "IMSI",
            values[self._imsi].strip(),
            parse_imsi,
            self.imsi_lines if self.track_duplicates else None,
            problems,
        )
        form_factor = self._form_factor(
            line,
            "" if self._form_factor_at is None else values[self._form_factor_at].strip(),
            problems,
        )
        secrets: list[str | None] = []
        for at, column, pattern, what, required in self._secret_at:
            value = "" if at is None else values[at].strip()
            if not value:
                if required:
                    problems.append(RowProblem(line, column, "missing"))
                secrets.append(None)
            elif pattern.fullmatch(value) is None:
                # The value is a secret: say what is wrong with it, never what it is.
                problems.append(RowProblem(line, column, f"must be {what}"))
            else:
                secrets.append(value)
        if problems or iccid is None or imsi is None or form_factor is None:
            return problems
        pin1, puk1, pin2, puk2, adm1, ki, opc = secrets
        card_secrets = CardSecrets(
            pin1,
            puk1,
            pin2,
            puk2,
            adm1,
            bytes.fromhex(ki) if ki else None,
            bytes.fromhex(opc) if opc else None,
        )
        return CheckedCard(line, iccid, imsi, form_factor, card_secrets.to_plaintext())

    @staticmethod
    def _identifier(
        line: int,
        field: str,
        value: str,
        parse: _Parser,
        seen: dict[str, int] | None,
        problems: list[RowProblem],
    ) -> str | None:
        try:
            parsed = parse(value)
        except ParseError as error:
            problems.append(RowProblem(line, field, str(error)))
            return None
        if seen is None:
            return parsed
        first = seen.setdefault(parsed, line)
        if first != line:
            problems.append(RowProblem(line, field, f"{parsed} duplicates line {first}"))
            return None
        return parsed

    def _form_factor(self, line: int, value: str, problems: list[RowProblem]) -> FormFactor | None:
        if not value:
            if self.form_factor is None:
                problems.append(
                    RowProblem(
                        line,
                        "FORM_FACTOR",
                        "no form factor (no FORM_FACTOR value and no --form-factor)",
                    )
                )
            return self.form_factor
        # A file has one or a few distinct spellings: judge each once.
        verdict = self._form_factor_cache.get(value)
        if verdict is None:
            verdict = self._judge_form_factor(value)
            self._form_factor_cache[value] = verdict
            if isinstance(verdict, FormFactor):
                self._good_form_factors[value] = verdict
        if isinstance(verdict, FormFactor):
            return verdict
        problems.append(RowProblem(line, "FORM_FACTOR", verdict))
        return None

    def _judge_form_factor(self, value: str) -> FormFactor | str:
        form_factor = FORM_FACTOR_NAMES.get(value.lower())
        if form_factor is None:
            return f"unknown form factor {value!r} (standard, micro, nano or multi)"
        if self.form_factor is not None and form_factor is not self.form_factor:
            return f"{form_factor}, but --form-factor says {self.form_factor}"
        try:
            check_stock_form_factor(self.network_type, form_factor)
        except LifecycleError as error:
            return str(error)
        return form_factor


def check_quantity(reader: StockFileReader, rows: int) -> list[RowProblem]:
    """A problem when the preamble's ``Quantity`` disagrees with the rows found."""
    stated = reader.metadata.get("quantity")
    if stated is None:
        return []
    if not stated.isdigit():
        return [RowProblem(reader.header_line, "Quantity", f"not a number: {stated!r}")]
    if int(stated) != rows:
        return [
            RowProblem(
                reader.header_line,
                "Quantity",
                f"the file says {int(stated)} cards but has {rows} rows",
            )
        ]
    return []


# -- writing stock files (the lab, tests and benchmarks) --------------------
#
# The one definition of the file a vendor ships (and the lab writes): these
# columns, in this order, with :func:`stock_row_values`. The lab's writer
# (``provisioning.labstock``) goes through :func:`stock_csv_text`.

#: The columns of a CSV stock file, in the order simtool writes them.
STOCK_COLUMNS = (
    "ICCID",
    "IMSI",
    "PIN1",
    "PUK1",
    "PIN2",
    "PUK2",
    "KI",
    "OPC",
    "ADM1",
    "FORM_FACTOR",
)


def example_rows(
    count: int,
    *,
    first_serial: int = 1,
    issuer: str = "100",
    form_factor: FormFactor = FormFactor.NANO,
    imsi_prefix: str = "44010",
) -> Iterator[StockRow]:
    """Synthetic, valid stock rows with predictable identifiers and derived test secrets.

    ICCID ``8981`` + issuer + 11-digit serial + Luhn digit; IMSI ``imsi_prefix``
    + zero-padded serial; the secrets are digits of a hash of the serial, so no
    secret is a substring of the card's identifiers by construction. For the
    lab, tests and benchmarks only.
    """
    msin_digits = 15 - len(imsi_prefix)
    for offset in range(count):
        serial = first_serial + offset
        payload = f"8981{issuer}{serial:011d}"
        digest = hashlib.sha256(f"simtool example stock {serial}".encode()).digest()
        digits = f"{int.from_bytes(digest[:16], 'big'):039d}"
        yield StockRow(
            line=offset + 2,
            iccid=payload + str(luhn_check_digit(payload)),
            imsi=f"{imsi_prefix}{serial:0{msin_digits}d}",
            form_factor=form_factor,
            secrets=CardSecrets(
                pin1="0000",
                puk1=digits[0:8],
                pin2=digits[8:12],
                puk2=digits[12:20],
                adm1=digits[20:28],
                ki=digest[16:32],
                opc=digest[:16],
            ),
        )


def stock_row_values(row: StockRow) -> list[str]:
    """One card's values under :data:`STOCK_COLUMNS` (secrets in the clear: a stock file
    holds them by nature)."""
    s = row.secrets
    return [
        row.iccid,
        row.imsi,
        s.pin1 or "",
        s.puk1 or "",
        s.pin2 or "",
        s.puk2 or "",
        s.ki.hex().upper() if s.ki else "",
        s.opc.hex().upper() if s.opc else "",
        s.adm1 or "",
        row.form_factor.value,
    ]


def write_stock_csv_rows(stream: IO[str], rows: Iterable[StockRow]) -> int:
    """Write a CSV stock file (header, one row per card) to ``stream``; the row count."""
    count = 0
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(STOCK_COLUMNS)
    for row in rows:
        writer.writerow(stock_row_values(row))
        count += 1
    return count


def stock_csv_text(rows: Iterable[StockRow]) -> str:
    """The text of a CSV stock file for ``rows``."""
    out = io.StringIO()
    write_stock_csv_rows(out, rows)
    return out.getvalue()


def write_stock_csv(path: Path, rows: Iterable[StockRow]) -> int:
    """Write rows as a CSV stock file with a header; returns the number of rows."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        return write_stock_csv_rows(stream, rows)


def write_output_file(path: Path, rows: Sequence[StockRow], *, customer: str = "MVNO") -> int:
    """Write rows in the vendor's whitespace "output file" layout; returns the row count."""
    with path.open("w", encoding="utf-8") as stream:
        stream.write("*" * 40 + "\n* HEADER DESCRIPTION\n" + "*" * 40 + "\n")
        stream.write(f"Customer: {customer}\nQuantity: {len(rows)}\nType: USIM\n")
        stream.write("*" * 40 + "\nvar_Out: " + "/".join(STOCK_COLUMNS) + "\n" + "*" * 40 + "\n")
        for row in rows:
            stream.write(" ".join(stock_row_values(row)) + "\n")
    return len(rows)
