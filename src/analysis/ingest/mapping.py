"""Analysts' own headers -> canonical column names, and units of shares.

Analysts bring exports with their own (often Russian) headers.  A YAML mapping file
(``mapping.yaml``) maps, per table, each canonical name (:mod:`analysis.ingest.schema`) to the
analyst's header, and says whether shares are given as ``percent`` (0..100) or as a
``fraction`` (0..1)::

    schools:
      school_id: "Код ОО"
      share_low_income: "Доля детей из малоимущих семей, %"
    results:
      n_mark2: "«2»"
    units:
      share_low_income: percent

:func:`load_mapping` validates such a file and reports every problem at once;
:func:`apply_mapping` renames a text table's headers and converts percent shares to
fractions; :func:`draft_mapping` / :func:`draft_yaml` guess a first draft from the
headers of the analyst's files (``python -m analysis.ingest.mapping draft --schools FILE ...``).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd
import yaml

from analysis.errors import InputError, Problem
from analysis.ingest import schema
from analysis.ingest.readers import read_header

TABLE_COLUMNS = schema.TABLE_COLUMNS
REQUIRED_COLUMNS = schema.REQUIRED_COLUMNS
SHARE_COLUMNS = schema.SHARE_COLUMNS
UNITS: tuple[str, ...] = ("percent", "fraction")
UNITS_KEY = "units"
SOURCE_COLUMNS: tuple[str, ...] = ("source_file", "source_row")
DEFAULT_SOURCE = "mapping.yaml"
MIN_RATIO = 0.8
MAX_HEADERS_SHOWN = 10


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file.

    Attributes
    ----------
    tables
        ``{table: {canonical name: analyst's header}}``.
    units
        ``{canonical share column: "percent" | "fraction"}``.
    source
        File name of the mapping, used in messages.
    """

    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    source: str = DEFAULT_SOURCE


# --- loading and validation -----------------------------------------------------------------


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a YAML mapping file.

    Parameters
    ----------
    path
        The mapping file (YAML).

    Returns
    -------
    Mapping
        The validated mapping; ``source`` is the file name.

    Raises
    ------
    InputError
        If the file cannot be read or parsed, or listing every problem of its content.
    """
    path = Path(path)
    source = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(
            Problem(str(path), "", f"a readable mapping file ({exc.strerror})")
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(Problem(source, "", f"valid YAML{where}: {exc}")) from None
    return validate_mapping(data, source)


def validate_mapping(data: dict, source: str) -> Mapping:
    """Check the parsed content of a mapping file and build a :class:`Mapping`.

    Parameters
    ----------
    data
        Parsed YAML: ``{table: {canonical: header}, "units": {share column: unit}}``.
        ``None`` (an empty file) and empty tables are accepted.
    source
        File name, used in messages.

    Returns
    -------
    Mapping

    Raises
    ------
    InputError
        Listing every problem: unknown table keys, unknown canonical names, headers that
        are not non-empty text, a header mapped twice in one table, units for a column that
        is not a share, or a unit other than ``percent`` / ``fraction``.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(Problem(source, "", "a YAML mapping with the keys "
                                 + ", ".join((*schema.TABLES, UNITS_KEY))))
    problems: list[Problem] = []
    tables: dict[str, dict[str, str]] = {}
    units: dict[str, str] = {}
    for key, value in data.items():
        key = str(key)
        if key == UNITS_KEY:
            units = _validate_units(value, source, problems)
        elif key in TABLE_COLUMNS:
            tables[key] = _validate_table(key, value, source, problems)
        else:
            problems.append(Problem(source, key, "one of "
                                    + ", ".join((*schema.TABLES, UNITS_KEY))))
    if problems:
        raise InputError(problems)
    return Mapping(tables=tables, units=units, source=source)


def _validate_table(table: str, value: object, source: str,
                    problems: list[Problem]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(source, table, "canonical names mapped to headers "
                                "(lines like 'school_id: \"Код ОО\"')", value=str(value)))
        return {}
    columns = TABLE_COLUMNS[table]
    out: dict[str, str] = {}
    seen: dict[str, str] = {}  # header -> canonical
    for canonical, header in value.items():
        canonical = str(canonical)
        if canonical not in columns:
            expected = f"a canonical column of table '{table}'"
            close = difflib.get_close_matches(canonical, columns, n=1)
            if close:
                expected += f" (did you mean '{close[0]}'?)"
            problems.append(Problem(source, canonical, expected))
            continue
        if not isinstance(header, str) or not header.strip():
            problems.append(Problem(source, canonical, "a non-empty header text in quotes",
                                    value="" if header is None else str(header)))
            continue
        header = header.strip()
        if header in seen:
            problems.append(Problem(
                source, canonical,
                f"each header mapped once in table '{table}' "
                f"('{header}' is already mapped to '{seen[header]}')",
                value=header,
            ))
            continue
        seen[header] = canonical
        out[canonical] = header
    return out


def _validate_units(value: object, source: str, problems: list[Problem]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(source, UNITS_KEY, "share columns mapped to percent or fraction",
                                value=str(value)))
        return {}
    out: dict[str, str] = {}
    for column, unit in value.items():
        column = str(column)
        if column not in SHARE_COLUMNS:
            expected = "a share column (units apply to shares only)"
            close = difflib.get_close_matches(column, sorted(SHARE_COLUMNS), n=1)
            if close:
                expected += f" (did you mean '{close[0]}'?)"
            problems.append(Problem(source, column, expected))
            continue
        if unit not in UNITS:
            problems.append(Problem(source, column, "percent or fraction",
                                    value="" if unit is None else str(unit)))
            continue
        out[column] = str(unit)
    return out


# --- applying a mapping ---------------------------------------------------------------------


def apply_mapping(df: pd.DataFrame, table: str, mapping: Mapping | None,
                  file: str) -> tuple[pd.DataFrame, list[str]]:
    """Rename the analyst's headers to canonical names and convert percent shares.

    Parameters
    ----------
    df
        A text table as read by :func:`analysis.ingest.io.read_text_table`: ``source_file``,
        ``source_row`` and the analyst's (stripped) headers.
    table
        ``"schools"``, ``"results"`` or ``"students"``.
    mapping
        The validated mapping, or ``None`` for a file with canonical headers.
    file
        The data file's name, for messages.

    Returns
    -------
    tuple[pandas.DataFrame, list[str]]
        The table with canonical columns only (plus ``source_file``/``source_row``), and
        notes for the log: ignored columns, percent conversions.

    Raises
    ------
    InputError
        Listing every mapped header missing from the file and every required canonical
        column still missing after renaming.
    """
    if table not in TABLE_COLUMNS:
        raise ValueError(f"unknown table '{table}'")
    mapping = mapping if mapping is not None else Mapping()
    columns = TABLE_COLUMNS[table]
    renames = mapping.tables.get(table, {})
    headers = [str(c) for c in df.columns if c not in SOURCE_COLUMNS]
    problems: list[Problem] = []
    rename: dict[str, str] = {}
    for canonical, header in renames.items():
        if header not in headers:
            shown = ", ".join(headers[:MAX_HEADERS_SHOWN])
            if len(headers) > MAX_HEADERS_SHOWN:
                shown += f" (and {len(headers) - MAX_HEADERS_SHOWN} more)"
            problems.append(Problem(file, header, f"a column '{header}' ({mapping.source} maps "
                                    f"it to '{canonical}'); the file has: {shown}"))
        elif header != canonical and canonical in headers:
            problems.append(Problem(file, canonical, f"one column for '{canonical}'; the file has "
                                    f"both '{canonical}' and '{header}' (mapped to it)"))
        else:
            rename[header] = canonical
    present = {rename.get(h, h) for h in headers}
    extra = [h for h in headers if h not in rename and h not in columns]
    guesses, _ = draft_mapping(extra, table)
    for canonical in REQUIRED_COLUMNS[table]:
        if canonical in present or canonical in renames:
            continue  # a mapped-but-absent header is already reported above
        if canonical in guesses:
            hint = f"maybe '{guesses[canonical]}'? add it to {mapping.source}"
        else:
            hint = f"a required column; map your header to it in {mapping.source}"
        problems.append(Problem(file, canonical, f"a column for '{canonical}' ({hint})"))
    if problems:
        raise InputError(problems)

    notes: list[str] = []
    keep = [*(c for c in SOURCE_COLUMNS if c in df.columns),
            *(h for h in headers if h not in extra)]
    out = df[keep].rename(columns=rename)
    if extra:
        notes.append("ignored columns: " + ", ".join(extra))
        for canonical, header in guesses.items():
            notes.append(f"ignored column '{header}' looks like '{canonical}'; "
                         f"map it in {mapping.source} to use it")
    for column, unit in mapping.units.items():
        if unit != "percent" or column not in out.columns:
            continue
        values = out[column]
        n = sum(1 for v in values if not pd.isna(v) and _parse_decimal(str(v)) is not None)
        converted = values.map(_percent_text, na_action="ignore")
        out[column] = converted
        notes.append(f"{column}: percent -> fraction ({n} values)")
    return out, notes


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _parse_decimal(text: str) -> Decimal | None:
    """A number from a text cell (``.`` or a lone ``,`` as the decimal mark; ``%`` allowed)."""
    s = text.strip().removesuffix("%").strip()
    if "," in s and "." not in s and s.count(",") == 1:
        s = s.replace(",", ".")
    if not _NUMBER.fullmatch(s):
        return None
    try:
        return Decimal(s)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        return None


def _percent_text(value: object) -> object:
    """``"25"`` -> ``"0.25"``; text that is not a number is returned unchanged."""
    number = _parse_decimal(str(value))
    if number is None:
        return value
    return _decimal_text(number.scaleb(-2))


def _decimal_text(number: Decimal) -> str:
    """Shortest exact text of a decimal, without exponent: 0.250 -> '0.25', 1.00 -> '1'."""
    text = format(number.normalize(), "f")
    return "0" if text == "-0" else text


# --- drafting a mapping from headers --------------------------------------------------------

#: Common header variants of canonical columns (Russian and English).  Matched after
#: normalisation (lowercase, ё -> е, no punctuation or quotes, no "%").
SYNONYMS: dict[str, tuple[str, ...]] = {
    "year": ("Год", "Учебный год", "Год проведения", "Year"),
    "school_id": ("Код ОО", "Код организации", "Код образовательной организации",
                  "Код школы", "Логин ОО", "School ID", "School code"),
    "school_name": ("Наименование ОО", "Наименование организации", "Название школы",
                    "Название ОО", "Школа", "Образовательная организация", "School name",
                    "School"),
    "region": ("Регион", "Субъект РФ", "Субъект Российской Федерации", "Субъект",
               "Region"),
    "municipality": ("МО", "Муниципалитет", "Муниципальное образование", "Муниципальный район",
                     "АТЕ", "Район", "Municipality", "District"),
    "settlement_type": ("Тип местности", "Местность", "Тип населенного пункта",
                        "Городская/сельская", "Settlement type", "Settlement"),
    "school_type": ("Вид ОО", "Тип ОО", "Тип школы", "Вид организации", "School type"),
    "enrollment": ("Численность обучающихся", "Число обучающихся", "Количество обучающихся",
                   "Контингент", "Enrollment", "Students"),
    "share_parents_higher_ed": ("Высшее образование родителей",
                                "Доля родителей с высшим образованием",
                                "Родители с высшим образованием", "Parents higher education"),
    "share_low_income": ("Доля детей из малоимущих семей", "Малоимущие", "Малообеспеченные",
                         "Дети из малоимущих семей", "Low income"),
    "share_single_parent": ("Неполные семьи", "Доля детей из неполных семей",
                            "Single parent"),
    "share_unemployed_parents": ("Безработные родители", "Родители безработные",
                                 "Доля детей безработных родителей", "Unemployed parents"),
    "share_disability": ("ОВЗ", "Дети с ОВЗ", "Доля детей с ОВЗ", "Обучающиеся с ОВЗ",
                         "Disability"),
    "share_non_native": ("Мигранты", "Неродной русский", "Русский язык неродной",
                         "Дети мигрантов", "Доля детей мигрантов", "Non native"),
    "share_prevention_register": ("На учете", "Учет КДН/ПДН", "Состоящие на учете",
                                  "На профилактическом учете", "Prevention register"),
    "teacher_vacancy_rate": ("Вакансии", "Вакансии учителей", "Доля вакансий",
                             "Teacher vacancies", "Vacancy rate"),
    "share_teachers_top_category": ("Высшая категория", "Учителя высшей категории",
                                    "Доля учителей высшей категории", "Top category teachers"),
    "procedure": ("Процедура", "Оценочная процедура", "Вид оценочной процедуры", "Procedure"),
    "subject": ("Предмет", "Учебный предмет", "Subject"),
    "grade": ("Класс", "Параллель", "Grade"),
    "participants": ("Участников", "Кол-во участников", "Количество участников",
                     "Число участников", "Участники", "Писали", "Participants"),
    "n_below_min": ("Не преодолели минимальный порог", "Ниже минимального порога",
                    "Не набрали минимальный балл", "Below minimum"),
    "pct_below_min": ("% не преодолели минимальный порог", "Доля не преодолевших минимальный порог",
                      "Доля ниже минимального порога", "% below minimum"),
    "mean_score": ("Средний балл", "Средний тестовый балл", "Средний первичный балл",
                   "Mean score", "Average score"),
    "student_key": ("Код участника", "Код ученика", "Ученик", "Student key", "Student ID"),
    "score": ("Балл", "Тестовый балл", "Первичный балл", "Score"),
    "mark": ("Отметка", "Оценка", "Mark"),
    "ses": ("ИСЭС", "Индекс СЭС", "Социально-экономический статус", "SES"),
}
for _k in range(2, 6):
    SYNONYMS[f"n_mark{_k}"] = (f"«{_k}»", f"{_k}", f"Отметка {_k}", f"Отметка «{_k}»",
                               f"Оценка {_k}", f"Кол-во «{_k}»", f"Количество «{_k}»",
                               f"Mark {_k}")
    SYNONYMS[f"pct_mark{_k}"] = (f"% «{_k}»", f"Доля «{_k}»", f"Доля отметок «{_k}»",
                                 f"Процент «{_k}»", f"% отметка {_k}", f"% mark {_k}")

_PERCENT_MARK = re.compile(r"%|\bпроцент|\bpercent\b|\bpct\b")
_SHARE_MARK = re.compile(r"%|\bдол[яиеюь]|\bshare\b|\bпроцент|\bpercent\b|\bpct\b")
_PUNCT = re.compile(r"[^\w\s]|_")


def _normalise(header: str) -> str:
    """Lowercase, ё -> е, no punctuation, quotes or "%", single spaces."""
    text = header.lower().replace("ё", "е")
    text = re.sub(r"\bв\s*%", " ", text)
    return " ".join(_PUNCT.sub(" ", text).split())


def _has_share_marker(header: str) -> bool:
    return bool(_SHARE_MARK.search(header.lower()))


def _has_percent_marker(header: str) -> bool:
    return bool(_PERCENT_MARK.search(header.lower()))


_NORMALISED: dict[str, tuple[str, ...]] = {
    canonical: tuple(dict.fromkeys(
        [_normalise(canonical)] + [_normalise(s) for s in SYNONYMS.get(canonical, ())]
    ))
    for canonical in dict.fromkeys(c for cols in TABLE_COLUMNS.values() for c in cols)
}


def draft_mapping(headers: Sequence[str], table: str) -> tuple[dict[str, str], list[str]]:
    """Guess canonical names for the headers of an analyst's file.

    Each header is normalised (lowercase, ё -> е, no punctuation or quotes, no "%") and
    compared with the canonical names and :data:`SYNONYMS`: an exact match first, then
    :class:`difflib.SequenceMatcher` ratio >= 0.8.  A "%" / "доля" / "share" marker in the
    header prefers the share reading (``pct_mark2`` over ``n_mark2``).  Each canonical name
    and each header is used at most once, best score first (ties: a header that is the
    canonical name itself, then the marker, then the earlier header).

    Parameters
    ----------
    headers
        The analyst's headers.
    table
        ``"schools"``, ``"results"`` or ``"students"``.

    Returns
    -------
    tuple[dict[str, str], list[str]]
        ``{canonical: header}`` in the order of the headers, and the unmatched headers.
    """
    if table not in TABLE_COLUMNS:
        raise ValueError(f"unknown table '{table}'")
    headers = [str(h) for h in headers]
    candidates: list[tuple[float, bool, int, int, str]] = []
    for i, header in enumerate(headers):
        if header in SOURCE_COLUMNS:
            continue
        norm = _normalise(header)
        if not norm:
            continue
        share = _has_share_marker(header)
        for canonical in TABLE_COLUMNS[table]:
            score = max(_ratio(norm, s) for s in _NORMALISED[canonical])
            if score >= MIN_RATIO:
                agrees = int((canonical in SHARE_COLUMNS) == share)
                candidates.append((score, header == canonical, agrees, -i, canonical))
    candidates.sort(reverse=True)
    by_header: dict[int, str] = {}
    used: set[str] = set()
    for *_, neg_i, canonical in candidates:
        if canonical in used or -neg_i in by_header:
            continue
        by_header[-neg_i] = canonical
        used.add(canonical)
    matched = {by_header[i]: headers[i] for i in sorted(by_header)}
    unmatched = [h for i, h in enumerate(headers) if i not in by_header and h not in SOURCE_COLUMNS]
    return matched, unmatched


def _ratio(a: str, b: str) -> float:
    return 1.0 if a == b else difflib.SequenceMatcher(None, a, b).ratio()


def draft_yaml(files: dict[str, Sequence[str]]) -> str:
    """A draft ``mapping.yaml`` for the headers of the analyst's files.

    Parameters
    ----------
    files
        ``{table: headers}``.

    Returns
    -------
    str
        YAML text: one block per table, ``units: percent`` for every matched share column
        whose header has a "%" marker, and comments listing unmatched headers and required
        columns not found.  It loads back with :func:`load_mapping`.
    """
    lines = ["# Draft mapping generated by `python -m analysis.ingest.mapping draft`.",
             "# canonical name: header in your file -- check every line before use.", ""]
    units: dict[str, str] = {}
    for table, headers in files.items():
        matched, unmatched = draft_mapping(headers, table)
        lines.append(f"{table}:" if matched else f"{table}: {{}}")
        for canonical, header in matched.items():
            lines.append(f"  {canonical}: {_yaml_str(header)}")
            if canonical in SHARE_COLUMNS and _has_percent_marker(header):
                units[canonical] = "percent"
        if unmatched:
            lines.append("  # not matched (map by hand or ignore): "
                         + ", ".join(_comment_text(h) for h in unmatched))
        missing = [c for c in REQUIRED_COLUMNS[table] if c not in matched]
        if missing:
            lines.append("  # required, not found: " + ", ".join(missing))
        lines.append("")
    lines.append("# shares given as percent (0..100) or fraction (0..1)")
    if units:
        lines.append(f"{UNITS_KEY}:")
        lines += [f"  {column}: {unit}" for column, unit in units.items()]
    else:
        lines.append(f"{UNITS_KEY}: {{}}")
    return "\n".join(lines) + "\n"


def _yaml_str(text: str) -> str:
    """A double-quoted YAML scalar (JSON string syntax is valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _comment_text(text: str) -> str:
    return " ".join(text.split())


# --- command line ---------------------------------------------------------------------------


def _read_headers(path: Path) -> list[str]:
    """The header row of a CSV, XLSX or Parquet file, found as the pipeline finds it."""
    return read_header(path)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m analysis.ingest.mapping draft --schools FILE --results FILE``.

    Reads only the header rows and prints a draft mapping, or writes it with ``--out``
    (an existing file is kept unless ``--force``).

    Returns
    -------
    int
        0 on success, 2 when a file cannot be read or the output exists.
    """
    parser = argparse.ArgumentParser(prog="python -m analysis.ingest.mapping",
                                     description="Draft a mapping.yaml from file headers.")
    sub = parser.add_subparsers(dest="command", required=True)
    draft = sub.add_parser("draft", help="guess canonical names for the headers of your files")
    for table in schema.TABLES:
        draft.add_argument(f"--{table}", type=Path, metavar="FILE",
                           help=f"the {table} file (.csv, .xlsx or .parquet)")
    draft.add_argument("--out", type=Path, help="write the draft here instead of printing it")
    draft.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args(argv)

    paths = {t: getattr(args, t) for t in schema.TABLES if getattr(args, t) is not None}
    if not paths:
        parser.error("give at least one of --schools, --results, --students")
    try:
        files = {}
        for table, path in paths.items():
            if not path.is_file():
                raise InputError(Problem(str(path), "", "an existing file"))
            files[table] = _read_headers(path)
    except InputError as exc:
        print(exc, file=sys.stderr)
        return 2
    text = draft_yaml(files)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    if args.out.exists() and not args.force:
        print(f"{args.out} exists; use --force to overwrite it", file=sys.stderr)
        return 2
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
