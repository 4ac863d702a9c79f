"""analysis.ingest.readers' CSV path (pandas' C parser, vectorised checks) against the
previous pure-Python reader, kept here as an oracle: tricky files, a large one, properties."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.errors import InputError, Problem
from analysis.ingest.readers import ReadOptions, ReadReport, file_sha256, read_text
from helpers.reader_files import PROPS, data

# --- The C path against the previous pure-Python reader ----------------------------------------


def reference_read_csv(path, options=None):
    """The CSV path of the previous reader (csv.reader and per-cell regular expressions),
    kept as an oracle: ``(frame, report)``, or the ``InputError`` it raised."""
    import re

    from analysis.ingest.readers import common, table
    from analysis.ingest.readers import read_csv as csv_reader

    options = options or ReadOptions()

    number = re.compile(r"^\s*-?\d+([.,]\d+)?\s*$")
    comma_number = re.compile(r"^\s*-?\d+(,\d+)?\s*$")
    comma_decimal = re.compile(r"^\s*-?\d+,\d+\s*$")
    point_decimal = re.compile(r"^\s*-?\d+\.\d+\s*$")

    def blank(c):
        return c is None or c.strip() == ""

    name = path.name
    try:
        text, encoding, notes = csv_reader._decode(name, path.read_bytes(), options.encoding)
        if not text.strip(common.BOM + " \t\r\n"):
            raise common._empty(name)
        separator = ","
        for line in io.StringIO(text):
            if ";" in line or "," in line:
                separator = ";" if line.count(";") > line.count(",") else ","
                break
        try:
            records = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
        except csv.Error as exc:
            raise common._unreadable(name, "csv", exc) from None
        rows = [(i, [c if c != "" else None for c in rec]) for i, rec in enumerate(records, 1)]
        filled = [(n, cells) for n, cells in rows if not all(blank(c) for c in cells)]
        if not filled:
            raise common._empty(name)

        def header_like(cells):
            full = [c for c in cells if not blank(c)]
            return len(full) >= 2 and 2 * len([c for c in full if not number.match(c)]) > len(
                full)

        if options.header_row is None:
            header_row, header = next((x for x in filled if header_like(x[1])), filled[0])
        else:
            found = [x for x in filled if x[0] == options.header_row]
            if not found:
                raise InputError(Problem(name, "", f"a header in row {options.header_row}",
                                         (options.header_row,), "an empty or missing row"))
            header_row, header = found[0]
        body = [(n, cells) for n, cells in filled if n > header_row]
        if not body:
            raise InputError(Problem(
                name, "", f"at least one data row below the header (row {header_row})"))
        width = max(len(header), *(len(cells) for _, cells in body))
        names = [(header[i] if i < len(header) else None) for i in range(width)]
        names = [None if c is None else c.replace(common.BOM, "").strip() or None for c in names]
        problems, keep, seen = [], [], set()
        for i, col in enumerate(names):
            if col is None:
                if any(i < len(cells) and not blank(cells[i]) for _, cells in body):
                    problems.append(Problem(name, f"column {i + 1}", "a header name above "
                                            "every column that has values", (header_row,)))
                continue
            if col in seen or col in table.RESERVED:
                problems.append(Problem(name, col, "unique column names" if col in seen else
                                        "a column name other than 'source_file' and "
                                        "'source_row'", (header_row,)))
            seen.add(col)
            keep.append(i)
        if problems:
            raise InputError(problems)
        body = [(n, [(cells + [None] * width)[i] for i in keep]) for n, cells in body]
        columns = [names[i] for i in keep]
        decimal, decimal_notes = ".", ()
        if options.decimal != ".":
            by_column = list(zip(*(cells for _, cells in body), strict=True))
            whole = options.decimal == "," or (separator == ";" and any(
                c is not None and comma_decimal.match(c) for col in by_column for c in col))
            targets = [i for i, col in enumerate(by_column) if whole or (
                any(c is not None and comma_decimal.match(c) for c in col)
                and not any(c is not None and point_decimal.match(c) for c in col))]
            changed = {}
            for _, cells in body:
                for i in targets:
                    c = cells[i]
                    if c is not None and "," in c and comma_number.match(c):
                        cells[i] = c.replace(",", ".")
                        changed[i] = changed.get(i, 0) + 1
            decimal = "," if (changed or whole) else "."
            if changed:
                cells_note = table._count(sum(changed.values()), "cell")
                names_note = ", ".join(columns[i] for i in sorted(changed))
                note = f"converted decimal commas to points in {cells_note} (columns: {names_note})"
                decimal_notes = (note,)
        layout = []
        if header_row > 1:
            layout.append(f"skipped {table._count(header_row - 1, 'title row')} above the header")
        empty = sum(1 for n, cells in rows if n > header_row and all(blank(c) for c in cells))
        if empty:
            layout.append(f"skipped {table._count(empty, 'empty row')}")
    except InputError as exc:
        return exc
    df = pd.DataFrame([cells for _, cells in body], columns=columns, dtype=object)
    df.insert(0, "source_row", pd.Series([n for n, _ in body], dtype="int64"))
    df.insert(0, "source_file", pd.Series([name] * len(body), dtype=object))
    report = ReadReport(name, "csv", encoding, separator, decimal, header_row,
                        notes + tuple(layout) + decimal_notes, sha256=file_sha256(path),
                        size=path.stat().st_size)
    return df, report


def assert_same_as_reference(path, options=None):
    options = options or ReadOptions()
    expected = reference_read_csv(path, options)
    if isinstance(expected, InputError):
        with pytest.raises(InputError) as exc:
            read_text(path, options)
        assert exc.value.problems == expected.problems
        return
    df, report = read_text(path, options)
    assert report == expected[1]
    assert list(df.columns) == list(expected[0].columns)
    assert df.dtypes.tolist() == expected[0].dtypes.tolist()
    assert df.values.tolist() == expected[0].values.tolist()
    assert all(c is None or type(c) is str for c in df.iloc[:, 2:].to_numpy().ravel())


TRICKY = {
    "title_empty_ragged.csv": (("Сводка;;;\r\n\r\nКод;Имя;Балл\r\n1;\"Иванов; Пётр\";12,5\r\n"
                                ";;\r\n2;Петров\r\n3;x;1,0;;\r\n"), "utf-8"),
    "multiline_quotes.csv": ('a,b,c\n"1\n2",3,"x ""y"" z"\n4,"5\r\n6",\n"",,\n7,8,9',
                             "utf-8-sig"),
    "cp1251.csv": ("Наименование ОО;Код ОО;Доля\r\nШкола № 5;007;12,5\r\nЛицей;008;7\r\n",
                   "cp1251"),
    "comma_decimals.csv": ('id,x,y,name\n1,"1,5","2,5","Иванов, Пётр"\n2,3,2.5,"a"\n',
                           "utf-8"),
    "quote_quirks.csv": ('a,b\n"x"y,z"w\n x ,"" \n"a""b",c\n', "utf-8"),
    "cr_only.csv": ("a;b\r1;2,5\r\r3;4\r", "utf-8"),
    "open_quote.csv": ('a,b\n1,2\n3,"4\n5', "utf-8"),
    "unnamed_values.csv": ("a,,c\n1,2,3\n", "utf-8"),
    "duplicate_names.csv": ("a; a ;b\n1;2;3\n", "utf-8"),
    "numeric_only.csv": ("1,2\n3,4\n", "utf-8"),
    "header_only.csv": ("a,b\n\n , \n", "utf-8"),
    "bom_twice.csv": ("\ufeff\ufeffa,b\n1,2\n", "utf-8-sig"),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_files_same_as_previous_reader(tmp_path, name):
    text, encoding = TRICKY[name]
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    assert_same_as_reference(path)
    assert_same_as_reference(path, ReadOptions(decimal=","))
    assert_same_as_reference(path, ReadOptions(encoding="utf-8" if encoding != "cp1251"
                                               else "cp1251", header_row=2))


def test_lone_surrogates_from_a_requested_encoding(tmp_path):
    # UTF-7 can decode to a lone surrogate, which Arrow cannot hold: checked cell by cell.
    path = tmp_path / "s.csv"
    path.write_bytes(b"a;b\n1,5;+2AA-\n+2AA-,5;2,5\n")
    assert_same_as_reference(path, ReadOptions(encoding="utf-7"))
    df, _ = read_text(path, ReadOptions(encoding="utf-7"))
    assert data(df) == [["1.5", "\ud800"], ["\ud800,5", "2.5"]]


def test_large_file_same_as_previous_reader(tmp_path):
    # Big enough for the C parser to read it in several chunks, with quoted line breaks.
    import random

    rng = random.Random(3)
    values = ["12", "12,5", "-0,75", "1.5", '"Иванов; Пётр"', '"a\nb"', '"x ""q"" y"', "",
              " ", "\xa0", "007", '"1\r\n2"']
    lines = ["Заголовок;;;", "", "Код;Имя;Балл;Доля"]
    for _ in range(20000):
        draw = rng.random()
        width = 4 if draw > 0.03 else rng.randint(0, 4)
        lines.append(";".join(rng.choice(values) for _ in range(width)))
    path = tmp_path / "large.csv"
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    assert_same_as_reference(path)


PIECES = ["a", "Иванов", "12", "12,5", " -0,75 ", "1.5", "١٢,٥", ",", ";", '"', '""', "\n",
          "\r\n", "\r", " ", "\xa0", "\t", "\ufeff", "№ 5"]


@PROPS
@given(pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=40),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1251"]),
       options=st.sampled_from([ReadOptions(), ReadOptions(decimal=","),
                                ReadOptions(encoding="utf-8", header_row=2)]))
def test_property_same_as_previous_reader(tmp_path, pieces, encoding, options):
    path = tmp_path / "p.csv"
    text = "".join(pieces)
    path.write_bytes(text.encode(encoding, errors="replace"))
    assert_same_as_reference(path, options)
