"""Generate the bad-input corpus: one folder per case, each valid except for ONE defect.

Run ``python tests/data/bad/make_corpus.py`` to rewrite the folders next to this script.
``tests/ingest/test_bad_inputs.py`` checks that the committed files equal a fresh generation, so
edit the cases here, never the files.

Each case folder holds ``schools.*``, ``results.*``, an optional ``mapping.yaml`` and
``expected.txt``: the exact line(s) the run must print (an error message, or for the
cases in :data:`PASSING` the warning or repair it must log).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
HEAD = "The input data cannot be used:"
FIXED_TIME = dt.datetime(2025, 1, 1)
STAMP = b"2025-01-01T00:00:00Z"

SCHOOLS_HEADER = ["year", "school_id", "school_name", "municipality", "settlement_type",
                  "school_type", "enrollment", "share_low_income"]
RESULTS_HEADER = ["year", "school_id", "procedure", "subject", "grade", "participants",
                  "n_mark2", "n_mark3", "n_mark4", "n_mark5"]
PCT_HEADER = ["year", "school_id", "procedure", "subject", "grade", "participants",
              "pct_mark2", "pct_mark3", "pct_mark4", "pct_mark5"]


def schools() -> list[list]:
    return [
        [2025, "100001", "СОШ № 1", "Север", "city", "secondary", 500, 0.2],
        [2025, "100002", "Гимназия № 2", "Север", "city", "gymnasium", 700, 0.1],
        [2025, "100003", "ООШ с. Луговое", "Юг", "village", "basic", 80, 0.35],
    ]


def results() -> list[list]:
    return [
        [2025, "100001", "VPR", "math", 5, 20, 2, 8, 6, 4],
        [2025, "100002", "VPR", "math", 5, 25, 1, 6, 10, 8],
        [2025, "100003", "VPR", "math", 5, 10, 2, 5, 2, 1],
        [2025, "100001", "OGE", "rus", 9, 18, 1, 7, 6, 4],
    ]


# --- writers ---------------------------------------------------------------------------------

Writer = Callable[[Path], None]


def csv_file(header: list, rows: list[list], sep: str = ",", encoding: str = "utf-8") -> Writer:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\n")
    writer.writerows([header, *rows])
    data = buf.getvalue().encode(encoding)
    return lambda path: path.write_bytes(data)


def raw_file(data: bytes) -> Writer:
    return lambda path: path.write_bytes(data)


def xlsx_file(header: list, rows: list[list], titles: tuple[str, ...] = (),
              errors: dict[str, str] | None = None) -> Writer:
    """A workbook with ``titles`` as merged rows above the header and formula error cells."""

    def write(path: Path) -> None:
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "Данные"
        for title in titles:
            ws.append([title])
            ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row,
                           end_column=len(header))
        for row in [header, *rows]:
            ws.append(row)
        for coordinate, code in (errors or {}).items():
            ws[coordinate].value = code
            ws[coordinate].data_type = "e"
        wb.properties.created = wb.properties.modified = FIXED_TIME
        buf = io.BytesIO()
        wb.save(buf)
        path.write_bytes(_fixed_zip(buf.getvalue()))

    return write


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with fixed entry times, so a workbook's bytes do not depend on the clock."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + STAMP, content)
            dst.writestr(fixed, content)
    return out.getvalue()


def text_file(text: str) -> Writer:
    return lambda path: path.write_text(text, encoding="utf-8")


def ok_schools() -> Writer:
    return csv_file(SCHOOLS_HEADER, schools())


def ok_results() -> Writer:
    return csv_file(RESULTS_HEADER, results())


def error(*lines: str) -> str:
    head = HEAD if len(lines) == 1 else f"The input data cannot be used ({len(lines)} problems):"
    return "\n".join([head, *(f"  - {line}" for line in lines)])


def changed(rows: list[list], row: int, column: int, value) -> list[list]:
    rows[row][column] = value
    return rows


# --- the cases -------------------------------------------------------------------------------


def _cases() -> dict[str, tuple[dict[str, Writer], str | tuple[str, ...]]]:
    share_defect = changed(schools(), 0, 7, 140)
    dup = [*schools(), [2025, "100002", "Гимназия № 2 (копия)", "Север", "city", "gymnasium",
              700, 0.1]]
    zeros = [[y, i.lstrip("0"), *rest] for y, i, *rest in (
        [2025, "010001", "СОШ № 1", "Север", "city", "secondary", 500, 0.2],
        [2025, "010002", "СОШ № 2", "Север", "town", "secondary", 300, 0.25],
        [2025, "100003", "ООШ с. Луговое", "Юг", "village", "basic", 80, 0.35],
        [2025, "100004", "Лицей № 4", "Юг", "city", "lyceum", 650, 0.05])]
    zero_results = [[2025, int(r[1]), *r[2:]] for r in (
        [2025, "10001", "VPR", "math", 5, 20, 2, 8, 6, 4],
        [2025, "10002", "VPR", "math", 5, 10, 1, 4, 3, 2],
        [2025, "100003", "VPR", "math", 5, 10, 2, 5, 2, 1],
        [2025, "100004", "VPR", "math", 5, 30, 0, 5, 15, 10])]
    zero_schools = [[y, int(i), *rest] for y, i, *rest in zeros]
    spaced = changed(changed(schools(), 0, 1, "100001 "), 0, 2, "  СОШ № 1 ")
    html_name = changed(schools(), 1, 2, "<script>alert('x')</script> Гимназия & Co")
    russian = [[*r[:4], s, t, *r[6:]] for r, s, t in zip(
        schools(), ["Город", " г. ", "Село"], ["СОШ", "Гимназия", "основная"], strict=True)]
    pct = [[*r[:6], *(f"{100 * c / r[5]:.4g}" for c in r[6:])] for r in results()]
    pct_bad = changed([list(r) for r in pct], 0, 9, "30")
    percent_units = "units:\n" + "".join(f"  pct_mark{k}: percent\n" for k in range(2, 6))
    return {
        "01_empty_file": (
            {"schools.csv": raw_file(b""), "results.csv": ok_results()},
            error("schools.csv; expected a header row and at least one data row")),
        "02_header_only": (
            {"schools.csv": ok_schools(), "results.csv": csv_file(RESULTS_HEADER, [])},
            error("results.csv; expected at least one data row below the header (row 1)")),
        "03_utf16": (
            {"schools.csv": raw_file(_csv_text(SCHOOLS_HEADER, schools()).encode("utf-16")),
             "results.csv": ok_results()},
            error("schools.csv; expected a CSV file in UTF-8 or Windows-1251 (this file is "
                  "UTF-16; in Excel use Save As 'CSV UTF-8')")),
        "04_decimal_comma_count": (
            {"schools.csv": ok_schools(),
             "results.csv": csv_file(RESULTS_HEADER, changed(results(), 1, 5, "12,5"))},
            error("results.csv, row 3, column 'participants': got '12.5'; "
                  "expected a whole number >= 0")),
        "05_semicolon_cp1251": (
            {"schools.csv": csv_file(SCHOOLS_HEADER, [
                [*r[:7], str(r[7]).replace(".", ",")]
                for r in changed(schools(), 2, 6, "восемьдесят")], ";", "cp1251"),
             "results.csv": ok_results()},
            error("schools.csv, row 4, column 'enrollment': got 'восемьдесят'; "
                  "expected a whole number >= 0")),
        "06_xlsx_title_rows": (
            {"schools.xlsx": xlsx_file(SCHOOLS_HEADER, changed(schools(), 1, 4, "мегаполис"),
                             ("Сведения об ОО", "на 01.09.2024")),
             "results.csv": ok_results()},
            error("schools.xlsx, row 5, column 'settlement_type': got 'мегаполис'; "
                  "expected one of city, town, village")),
        "07_duplicate_school": (
            {"schools.csv": csv_file(SCHOOLS_HEADER, dup), "results.csv": ok_results()},
            error("schools.csv, rows 3, 5, column 'school_id': got '100002'; "
                  "expected one row per school and year (duplicate key)")),
        "08_share_140": (
            {"schools.csv": csv_file(SCHOOLS_HEADER, share_defect), "results.csv": ok_results()},
            error("schools.csv, row 2, column 'share_low_income': got '140'; expected a share "
                  "from 0 to 1 (or a percent with units: percent in mapping.yaml)")),
        "09_negative_count": (
            {"schools.csv": ok_schools(),
             "results.csv": csv_file(RESULTS_HEADER, [[*results()[0][:6], -1, 9, 8, 4],
                                            *results()[1:]])},
            error("results.csv, row 2, column 'n_mark2': got '-1'; "
                  "expected a whole number >= 0")),
        "10_marks_do_not_sum": (
            {"schools.csv": ok_schools(),
             "results.csv": csv_file(RESULTS_HEADER, changed(results(), 3, 9, 5))},
            error("results.csv, row 5, column 'participants'; "
                  "expected n_mark2 + n_mark3 + n_mark4 + n_mark5 = participants")),
        "11_unknown_school": (
            {"schools.csv": ok_schools(),
             "results.csv": csv_file(RESULTS_HEADER, changed(results(), 3, 1, "100009"))},
            error("results.csv, row 5, column 'school_id': got '100009'; "
                  "expected a school listed in the schools table for the same year")),
        "12_leading_zeros_lost": (
            {"schools.xlsx": xlsx_file(SCHOOLS_HEADER, zero_schools),
             "results.xlsx": xlsx_file(RESULTS_HEADER, zero_results)},
            ("schools.xlsx, rows 2, 3: school codes of different lengths (5 and 6 digits): "
             "leading zeros may have been lost (Excel does this to codes stored as numbers); "
             "codes: 10001, 10002")),
        "13_unknown_school_type": (
            {"schools.csv": csv_file(SCHOOLS_HEADER, changed(schools(), 1, 5, "вечерняя")),
             "results.csv": ok_results()},
            error("schools.csv, row 3, column 'school_type': got 'вечерняя'; expected one of "
                  "basic, secondary, advanced, gymnasium, lyceum, adapted, other")),
        "14_missing_column": (
            {"schools.csv": csv_file(SCHOOLS_HEADER[:6] + SCHOOLS_HEADER[7:],
                           [r[:6] + r[7:] for r in schools()]),
             "results.csv": ok_results()},
            error("schools.csv, column 'enrollment'; expected a column for 'enrollment' "
                  "(a required column; map your header to it in mapping.yaml)")),
        "15_text_in_numeric": (
            {"schools.csv": ok_schools(),
             "results.csv": csv_file(RESULTS_HEADER, changed(results(), 2, 5, "много"))},
            error("results.csv, row 4, column 'participants': got 'много'; "
                  "expected a whole number >= 0")),
        "16_trailing_spaces": (
            {"schools.csv": csv_file(SCHOOLS_HEADER, spaced), "results.csv": ok_results()},
            ("schools.csv: school_id: trimmed spaces (1 cell)",
             "schools.csv: school_name: trimmed spaces (1 cell)")),
        "17_formula_error": (
            {"schools.csv": ok_schools(),
             "results.xlsx": xlsx_file(RESULTS_HEADER, results(), errors={"I3": "#DIV/0!"})},
            error("results.xlsx, row 3, column 'n_mark4': got '#DIV/0!'; expected a whole "
                  "number >= 0 (the cell holds a spreadsheet formula error)")),
        "18_html_in_name": (
            {"schools.csv": csv_file(SCHOOLS_HEADER, html_name), "results.csv": ok_results()},
            "<script>alert('x')</script> Гимназия & Co"),
        "19_grade_3": (
            {"schools.csv": ok_schools(),
             "results.csv": csv_file(RESULTS_HEADER, changed(results(), 1, 4, 3))},
            error("results.csv, row 3, column 'grade': got '3'; expected a grade from 4 to 11")),
        "20_pct_do_not_sum": (
            {"schools.csv": ok_schools(), "results.csv": csv_file(PCT_HEADER, pct_bad),
             "mapping.yaml": text_file(percent_units)},
            error("results.csv, row 2, column 'pct_mark2'; expected pct_mark2 + pct_mark3 + "
                  "pct_mark4 + pct_mark5 = 1 (100 %) within 0.011")),
        "21_mapping_unknown_name": (
            {"schools.csv": ok_schools(), "results.csv": ok_results(),
             "mapping.yaml": text_file('schools:\n  school_idd: "school_id"\n')},
            error("mapping.yaml, column 'school_idd'; expected a canonical column of table "
                  "'schools' (did you mean 'school_id'?)")),
        "22_pct_shares_only": (
            {"schools.csv": ok_schools(), "results.csv": csv_file(PCT_HEADER, pct),
             "mapping.yaml": text_file(percent_units)},
            ("results.csv: n_mark2 = round(pct_mark2 x participants) (4 rows)",
             "results.csv: pct_mark2: percent -> fraction (4 values)")),
        "23_russian_categories": (
            {"schools.csv": csv_file(SCHOOLS_HEADER, russian), "results.csv": ok_results()},
            ("schools.csv: settlement_type: trimmed spaces (1 cell)",
             "schools.csv: settlement_type: 'Город' -> 'city' (1 row)",
             "schools.csv: settlement_type: 'г.' -> 'city' (1 row)",
             "schools.csv: school_type: 'основная' -> 'basic' (1 row)")),
    }


def _csv_text(header: list, rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    return buf.getvalue()


#: Cases that must pass, with what ``expected.txt`` holds for them.
PASSING = {"12_leading_zeros_lost": "warning", "16_trailing_spaces": "repair",
           "18_html_in_name": "school_name", "22_pct_shares_only": "repair",
           "23_russian_categories": "repair"}
CASES = _cases()


def generate(dest: Path = HERE) -> list[str]:
    """Write every case folder under ``dest`` (replacing it); the case names."""
    for name, (files, expected) in CASES.items():
        folder = dest / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for file, write in files.items():
            write(folder / file)
        lines = (expected,) if isinstance(expected, str) else expected
        (folder / "expected.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return list(CASES)


if __name__ == "__main__":
    print("\n".join(generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)))
