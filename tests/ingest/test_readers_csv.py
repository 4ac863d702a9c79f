"""analysis.ingest.readers on CSV files: encodings, separators, decimal commas, the header,
errors, properties, and what pandas' C parser could get wrong."""

from __future__ import annotations

import csv
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.errors import InputError, Problem
from analysis.ingest.readers import ReadOptions, ReadReport, file_sha256, read_text
from helpers.reader_files import PROPS, data, problem, write_csv

CP1251_TEXT = "Наименование ОО;Код ОО;Доля\r\nШкола № 5;007;12,5\r\n"


# --- CSV: encodings, separators -----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_csv_with_and_without_bom(tmp_path, encoding):
    path = write_csv(tmp_path / "schools.csv",
                     [["Код ОО", " Наименование ОО "], ["007", "Школа № 5"], ["12", ""]],
                     encoding)
    df, report = read_text(path)
    assert list(df.columns) == ["source_file", "source_row", "Код ОО", "Наименование ОО"]
    assert data(df) == [["007", "Школа № 5"], ["12", None]]
    assert df["source_file"].tolist() == ["schools.csv"] * 2
    assert df["source_row"].tolist() == [2, 3]
    assert df["source_row"].dtype == "int64"
    assert report == ReadReport("schools.csv", "csv", encoding, ",", ".", 1, (),
                                sha256=file_sha256(path), size=path.stat().st_size)
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_cells_are_python_str_or_none(tmp_path):
    df, _ = read_text(write_csv(tmp_path / "t.csv", [["a", "b"], ["1", ""], [" x ", "y"]]))
    cells = df[["a", "b"]].to_numpy().ravel().tolist()
    assert cells == ["1", None, " x ", "y"]  # values are not stripped
    assert all(c is None or type(c) is str for c in cells)
    assert df["a"].dtype == object


def test_windows_1251_semicolon_and_decimal_comma(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(CP1251_TEXT.encode("cp1251"))
    df, report = read_text(path)
    assert list(df.columns)[2:] == ["Наименование ОО", "Код ОО", "Доля"]
    assert data(df) == [["Школа № 5", "007", "12.5"]]
    assert (report.encoding, report.separator, report.decimal) == ("cp1251", ";", ",")
    assert report.notes == (
        "decoded as Windows-1251 (the file is not valid UTF-8)",
        "converted decimal commas to points in 1 cell (columns: Доля)",
    )


def test_explicit_encoding(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(CP1251_TEXT.encode("cp1251"))
    _, report = read_text(path, ReadOptions(encoding="cp1251"))
    assert report.encoding == "cp1251"
    with pytest.raises(InputError) as exc:
        read_text(path, ReadOptions(encoding="utf-8"))
    assert problem(exc).expected == "a text file in the 'utf-8' encoding"


def test_semicolon_decimal_comma_leaves_names_untouched(tmp_path):
    path = write_csv(tmp_path / "s.csv",
                     [["ФИО", "Балл", "Код"], ["Иванов, Пётр", "12,5", "3"],
                      ["Петров", " -0,75 ", "4,0"], ["1,2,3", "7", "x"]], sep=";")
    df, report = read_text(path)
    assert data(df) == [["Иванов, Пётр", "12.5", "3"], ["Петров", " -0.75 ", "4.0"],
                        ["1,2,3", "7", "x"]]
    assert report.decimal == ","
    assert report.notes == ("converted decimal commas to points in 3 cells (columns: Балл, Код)",)


def test_semicolon_without_decimal_commas_keeps_points(tmp_path):
    path = write_csv(tmp_path / "s.csv", [["a", "b"], ["1.5", "x,y"]], sep=";")
    df, report = read_text(path)
    assert data(df) == [["1.5", "x,y"]]
    assert (report.separator, report.decimal, report.notes) == (";", ".", ())


def test_comma_csv_quoted_decimal_comma_column_rule(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["a", "b", "name"], ["12,5", "1,5", "Иванов, Пётр"],
                                          ["3", "2.5", "Петров"]])
    df, report = read_text(path)
    # Column a has only comma decimals: converted; column b also uses points: left alone.
    assert data(df) == [["12.5", "1,5", "Иванов, Пётр"], ["3", "2.5", "Петров"]]
    assert report.decimal == ","


def test_forced_decimal_point_disables_conversion(tmp_path):
    path = write_csv(tmp_path / "s.csv", [["a", "b"], ["12,5", "x"]], sep=";")
    df, report = read_text(path, ReadOptions(decimal="."))
    assert data(df) == [["12,5", "x"]]
    assert report.decimal == "."


def test_empty_rows_are_dropped_keeping_row_numbers(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("a,b\n1,2\n\n,\n3,4\n  ,  \n5,\n", encoding="utf-8")
    df, report = read_text(path)
    assert df["source_row"].tolist() == [2, 5, 7]
    assert data(df) == [["1", "2"], ["3", "4"], ["5", None]]
    assert report.notes == ("skipped 3 empty rows",)


def test_title_rows_in_csv_are_skipped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Результаты ВПР 2024;;\n;;\nКод;Класс;Балл\n001;4;3,5\n", encoding="utf-8")
    df, report = read_text(path)
    assert report.header_row == 3
    assert df["source_row"].tolist() == [4]
    assert data(df) == [["001", "4", "3.5"]]
    assert "skipped 2 title rows above the header" in report.notes


def test_one_column_csv(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("school_id\n001\n002\n", encoding="utf-8")
    df, report = read_text(path)
    assert data(df) == [["001"], ["002"]] and report.header_row == 1


def test_bom_removed_from_header_and_names_stripped(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbf  year , school_id\n2025,001\n")
    df, _ = read_text(path)
    assert list(df.columns)[2:] == ["year", "school_id"]


# --- CSV errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"  \r\n\n  ", b"\xef\xbb\xbf\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem("empty.csv", "", "a header row and at least one data row")
    assert "empty.csv" in str(exc.value)


def test_header_only(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b\n\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem("h.csv", "", "at least one data row below the header (row 1)")


def test_duplicate_headers_after_strip(tmp_path):
    path = write_csv(tmp_path / "d.csv", [["a", " a", "b"], ["1", "2", "3"]])
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem("d.csv", "a", "unique column names", (1,))


def test_reserved_header_name(tmp_path):
    path = write_csv(tmp_path / "d.csv", [["a", "source_row"], ["1", "2"]])
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc).column == "source_row"


def test_values_without_header_name(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("a,b\n1,2,3\n4,5,\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem(
        "w.csv", "column 3", "a header name above every column that has values", (1,))


def test_empty_unnamed_trailing_column_is_dropped(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("a,b,\n1,2,\n", encoding="utf-8")
    df, _ = read_text(path)
    assert list(df.columns)[2:] == ["a", "b"]


@pytest.mark.parametrize("name", ["data.xls", "data.txt", "data"])
def test_unsupported_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc).expected == "a .csv, .xlsx or .parquet file"
    assert problem(exc).file == name


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as exc:
        read_text(tmp_path / "nope.csv")
    assert problem(exc).expected == "an existing file"


def test_explicit_header_row_on_empty_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path, ReadOptions(header_row=2))
    assert problem(exc) == Problem("x.csv", "", "a header in row 2", (2,),
                                   "an empty or missing row")


def test_invalid_options():
    with pytest.raises(ValueError):
        ReadOptions(header_row=0)
    with pytest.raises(ValueError):
        ReadOptions(decimal=";")


# --- Properties -----------------------------------------------------------------------------

# Cyrillic without ё/Ё: cp1251 bytes of "Рё" happen to be valid UTF-8, which no detector can
# tell apart; every other Cyrillic letter is 0xC0-0xFF in cp1251 and never valid UTF-8 there.
ALPHABET = "АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмнопрстуфхцчшщъыьэюяABCxyz0123456789 "
words = st.text(ALPHABET, max_size=8).map(str.strip)
numbers = st.one_of(st.integers(-10**6, 10**6).map(str),
                    st.floats(-1e4, 1e4, allow_nan=False).map(lambda x: f"{x:.3f}"))
cells = st.one_of(words, numbers).map(lambda s: s or None)
names = st.text("abcdefxyzАБВабв", min_size=1, max_size=6)


@st.composite
def tables(draw):
    header = draw(st.lists(names, min_size=2, max_size=4, unique=True))
    first = st.one_of(words.filter(bool), numbers)
    row = st.tuples(first, st.lists(cells, min_size=len(header) - 1,
                                    max_size=len(header) - 1))
    rows = [[a, *rest] for a, rest in draw(st.lists(row, min_size=1, max_size=5))]
    return header, rows


@PROPS
@given(table=tables(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1251"]),
       sep=st.sampled_from([",", ";"]))
def test_property_csv_round_trip(tmp_path, table, encoding, sep):
    header, rows = table
    path = write_csv(tmp_path / "p.csv", [header, *[[c or "" for c in r] for r in rows]],
                     encoding, sep)
    df, report = read_text(path)
    assert list(df.columns)[2:] == header
    assert data(df) == rows
    assert df["source_row"].tolist() == list(range(2, len(rows) + 2))
    assert report.separator == sep and report.header_row == 1


@PROPS
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=5),
       digits=st.integers(1, 4))
def test_property_decimal_comma(tmp_path, values, digits):
    dotted = [f"{v:.{digits}f}" for v in values]
    rows = [["Иванов, Пётр", d.replace(".", ",")] for d in dotted]
    df, report = read_text(write_csv(tmp_path / "d.csv", [["name", "value"], *rows], sep=";"))
    assert df["value"].tolist() == dotted
    assert df["name"].tolist() == ["Иванов, Пётр"] * len(values)
    assert report.decimal == ","


# --- CSV through the C parser: what it could get wrong ----------------------------------------


def test_ragged_rows_short_padded_long_empty_dropped(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n1\n2,3,4,,,\n5,6\n", encoding="utf-8")
    df, report = read_text(path)
    assert list(df.columns)[2:] == ["a", "b", "c"]
    assert data(df) == [["1", None, None], ["2", "3", "4"], ["5", "6", None]]
    assert df["source_row"].tolist() == [2, 3, 4]
    assert report.notes == ()


def test_ragged_row_wider_than_every_line_before_it(tmp_path):
    # The only wide record is the last one, and its extra cell has a value.
    path = tmp_path / "r.csv"
    path.write_text("a;b\n1;2\n3;4;x\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem(
        "r.csv", "column 3", "a header name above every column that has values", (1,))


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_quoted_line_breaks_keep_record_numbers(tmp_path, newline):
    text = newline.join(["id,comment", '1,"first', 'second, third"', "2,x", '3,"a', "", 'b"',
                         "4,y"]) + newline
    path = tmp_path / "q.csv"
    path.write_bytes(text.encode("utf-8"))
    df, report = read_text(path)
    # A row is a record: the header is row 1 and each record after it is one more row.
    assert df["source_row"].tolist() == [2, 3, 4, 5]
    assert data(df) == [["1", f"first{newline}second, third"], ["2", "x"],
                        ["3", f"a{newline}{newline}b"], ["4", "y"]]
    assert report.notes == ()


def test_quoted_line_breaks_with_empty_rows_and_title(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('Отчёт;;\n\nКод;Имя;Балл\n001;"Школа\n№ 5";4,5\n\n;;\n002;"";\n',
                    encoding="utf-8")
    df, report = read_text(path)
    assert report.header_row == 3
    assert df["source_row"].tolist() == [4, 7]
    assert data(df) == [["001", "Школа\n№ 5", "4.5"], ["002", None, None]]
    assert report.notes == ("skipped 2 title rows above the header", "skipped 2 empty rows",
                            "converted decimal commas to points in 1 cell (columns: Балл)")


def test_blank_cells_and_rows_with_unicode_whitespace(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("a,b\n1, \n\xa0,\t\n\u3000 ,\x1c\n2,\xa0x\n", encoding="utf-8")
    df, report = read_text(path)
    assert df["source_row"].tolist() == [2, 5]
    assert data(df) == [["1", " "], ["2", "\xa0x"]]  # blank cells are kept as they are
    assert report.notes == ("skipped 2 empty rows",)


def test_unicode_digits_follow_pythons_re(tmp_path):
    # Python's \d and \s in the documented patterns match Unicode digits and spaces.
    path = tmp_path / "u.csv"
    path.write_text("name;x;y\nА;١٢,٥;12,5\xa0\nБ;x,1;１２,５\n", encoding="utf-8")
    df, report = read_text(path)
    assert data(df) == [["А", "١٢.٥", "12.5\xa0"], ["Б", "x,1", "１２.５"]]
    assert report.notes == ("converted decimal commas to points in 3 cells (columns: x, y)",)


def test_header_after_many_numeric_title_rows(tmp_path):
    # The header is looked for in growing blocks of rows: one far down is still found.
    rows = [["1", "2"]] * 100 + [["a", "b"], ["3", "4,5"]]
    df, report = read_text(write_csv(tmp_path / "n.csv", rows, sep=";"))
    assert report.header_row == 101
    assert data(df) == [["3", "4.5"]]


def test_no_header_like_row_takes_the_first(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("\n1,2\n3,4\n", encoding="utf-8")
    df, report = read_text(path)
    assert report.header_row == 2
    assert list(df.columns)[2:] == ["1", "2"]
    assert data(df) == [["3", "4"]]


def test_explicit_utf8_keeps_bom_out_of_names(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbfyear,school_id\n2025,001\n")
    df, report = read_text(path, ReadOptions(encoding="utf-8"))
    assert list(df.columns)[2:] == ["year", "school_id"]
    assert report.encoding == "utf-8"
    # A BOM before a quote: for the csv module the first cell is not quoted.
    path.write_bytes(b'\xef\xbb\xbf"year",school_id\n2025,001\n')
    df, _ = read_text(path, ReadOptions(encoding="utf-8"))
    assert list(df.columns)[2:] == ['"year"', "school_id"]


def test_cp1251_with_quotes_and_line_breaks(tmp_path):
    text = 'Код;Наименование;Доля\r\n007;"Школа ""Лицей""\r\n№ 2";0,25\r\n'
    path = tmp_path / "c.csv"
    path.write_bytes(text.encode("cp1251"))
    df, report = read_text(path)
    assert data(df) == [["007", 'Школа "Лицей"\r\n№ 2', "0.25"]]
    assert report.encoding == "cp1251"


def test_quote_left_open_at_the_end(tmp_path):
    # The C parser refuses this; the csv module reads the rest of the file as one cell.
    path = tmp_path / "o.csv"
    path.write_text('a,b\n1,"open\n2,3\n', encoding="utf-8")
    df, _ = read_text(path)
    assert data(df) == [["1", "open\n2,3\n"]]
    assert df["source_row"].tolist() == [2]


def test_cell_over_the_csv_field_limit(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a,b\n1," + "x" * 200 + "\n", encoding="utf-8")
    limit = csv.field_size_limit(150)
    try:
        with pytest.raises(InputError) as exc:
            read_text(path)
    finally:
        csv.field_size_limit(limit)
    assert problem(exc).expected == "a readable .csv file"
    assert problem(exc).value == "Error: field larger than field limit (150)"


def test_ordinary_files_do_not_need_the_csv_module(tmp_path, monkeypatch):
    from analysis.ingest.readers import read_csv

    def refuse(*args):
        raise AssertionError("read by the csv module")

    monkeypatch.setattr(read_csv, "_parse_python", refuse)
    path = tmp_path / "t.csv"
    path.write_text('Title;;\n\nid;name;x\n1;"a\nb";2,5\n\n3;c\n4;d;5;;\n', encoding="utf-8")
    df, report = read_text(path)
    assert df["source_row"].tolist() == [4, 6, 7]
    assert data(df) == [["1", "a\nb", "2.5"], ["3", "c", None], ["4", "d", "5"]]
    assert report.decimal == ","


def test_whitespace_constant_is_pythons():
    from analysis.ingest.readers.common import WHITESPACE

    assert set(WHITESPACE) == {chr(i) for i in range(0x110000) if chr(i).isspace()}


@PROPS
@given(cells_=st.lists(st.text("0123456789-.,; \t\xa0\x1c\u2003١٢１a,", max_size=8),
                       min_size=1, max_size=20))
def test_property_vectorised_patterns_are_pythons(cells_):
    import numpy as np

    from analysis.ingest.readers import common

    values = np.array(cells_, dtype=object)
    for pattern in (common.NUMBER, common.COMMA_DECIMAL, common.POINT_DECIMAL):
        expected = [pattern.match(c) is not None for c in cells_]
        assert common._matches(values, pattern).tolist() == expected
