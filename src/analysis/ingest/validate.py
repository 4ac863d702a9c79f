"""Validate the contract tables, all problems at once, and log every repair.

The path of one table (:func:`validate_table`):

1. :func:`normalise` -- repairs the contract allows, each logged: spaces around cells are
   trimmed, Russian and capitalised category forms become the codes (``'Город' -> 'city'``,
   see :data:`analysis.ingest.schema.CATEGORY_SYNONYMS`);
2. :func:`coerce` -- text cells to the contract's types; a cell that is not a number is a
   :class:`~analysis.errors.Problem`;
3. :func:`check_table` -- counts derived from shares where only shares are given (logged),
   then the table's pandera schema run lazily: ranges, categories, grades, unique keys,
   mark sums.

:func:`validate_tables` runs both tables and the rules between them (every result's school
is known; the reporting year is present) and returns a :class:`ValidationResult` with the
typed tables, the problems, warnings (leading zeros lost) and repairs.  :func:`to_json`
and :func:`to_html` describe a run for ``validation.json`` / ``validation.html``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from analysis.errors import InputError, Problem
from analysis.ingest import schema
from analysis.ingest.readers import ReadReport

SOURCE = ("source_file", "source_row")
INT_COLUMNS = frozenset(
    {"year", "grade", "enrollment", "participants", "n_below_min", *schema.MARK_COUNTS}
)
FLOAT_COLUMNS = frozenset({"mean_score", "score", "ses"})
CATEGORIES = {"settlement_type": schema.SETTLEMENT_TYPES, "school_type": schema.SCHOOL_TYPES}
SHARE_SUM_TOLERANCE = 0.011
EXCEL_ERROR = re.compile(r"^#(DIV/0!|N/A|NAME\?|NULL!|NUM!|REF!|VALUE!|SPILL!|CALC!)$",
                         re.IGNORECASE)

WHOLE = "a whole number >= 0"
NUMBER = "a number"
SHARE = "a share from 0 to 1 (or a percent with units: percent in mapping.yaml)"
REQUIRED_VALUE = "a value (the column is required)"
GRADE = "a grade from 4 to 11"
MARK_SUM = "n_mark2 + n_mark3 + n_mark4 + n_mark5 = participants"
SHARE_SUM = (f"pct_mark2 + pct_mark3 + pct_mark4 + pct_mark5 = 1 (100 %) within "
             f"{SHARE_SUM_TOLERANCE}")
MARKS_OR_BELOW = ("mark counts n_mark2..n_mark5 (marked procedures) or n_below_min "
                  "(scored procedures), or their shares pct_*")
MARKS_COMPLETE = "a value (n_mark2..n_mark5 are given together)"
BELOW_MAX = "at most participants"
SCHOOL_DUP = "one row per school and year (duplicate key)"
RESULT_DUP = "one row per school, year, procedure, subject and grade (duplicate key)"
UNKNOWN_SCHOOL = "a school listed in the schools table for the same year"
KEY_COLUMNS = ", ".join(schema.RESULT_KEY)


@dataclass
class ValidationResult:
    """Typed tables and what validation found and repaired."""

    schools: pd.DataFrame | None
    results: pd.DataFrame | None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    students: pd.DataFrame | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_errors(self) -> None:
        """Raise :class:`InputError` listing every problem, if there is any."""
        if self.problems:
            raise InputError(self.problems)


# --- 1. repairs on text cells ---------------------------------------------------------------


def category_key(text: str) -> str:
    """Form for matching a category: lowercase, ё -> е, inner spaces collapsed, trimmed."""
    return " ".join(text.lower().replace("ё", "е").split())


def normalise(df: pd.DataFrame, table: str) -> tuple[pd.DataFrame, list[str]]:
    """Trim spaces around every cell and map category forms to codes; the repairs made.

    ``df`` is a text table (``source_file``, ``source_row``, canonical columns).  Cells that
    are empty after trimming become missing.  Unknown category forms are left as they are
    for the schema to report.
    """
    out = df.copy()
    file = _file(df, table)
    repairs: list[str] = []
    for col in (c for c in df.columns if c not in SOURCE):
        text = df[col].astype("string")
        trimmed = text.str.strip()
        changed = int((text.notna() & (trimmed != text)).sum())
        if changed:
            repairs.append(f"{file}: {col}: trimmed spaces ({_count(changed, 'cell')})")
        trimmed = trimmed.mask(trimmed == "")
        if col in CATEGORIES:
            trimmed, found = _map_categories(trimmed, col)
            repairs += [f"{file}: {col}: {a!r} -> {b!r} ({_count(n, 'row')})"
                        for a, b, n in found]
        out[col] = trimmed
    return out, repairs


def _map_categories(values: pd.Series, column: str) -> tuple[pd.Series, list[tuple]]:
    codes = CATEGORIES[column]
    lookup = {**{c: c for c in codes}, **schema.CATEGORY_SYNONYMS[column]}
    found = []
    for value in sorted(values.dropna().unique()):
        code = lookup.get(category_key(value))
        if code is not None and code != value:
            found.append((value, code, int((values == value).sum())))
    mapped = values.replace({value: code for value, code, _ in found})
    return mapped.astype("string"), found


# --- 2. types -------------------------------------------------------------------------------


def coerce(df: pd.DataFrame, table: str) -> tuple[pd.DataFrame | None, list[Problem], set]:
    """Text cells to the contract's types.

    Returns the typed table (``source_file``, ``source_row`` and the contract columns
    present; ``None`` when required columns are missing), the problems (missing required
    columns, cells that are not numbers) and the set of ``(index, column)`` cells that
    failed, which later checks skip.
    """
    required, columns = contract(table)
    file = _file(df, table)
    missing = [Problem(file, c, "a required column of the data contract")
               for c in required if c not in df.columns]
    if missing:
        return None, missing, set()
    out = df[list(SOURCE)].astype({"source_file": "string", "source_row": "int64"})
    problems: list[Problem] = []
    bad_cells: set = set()
    for col in (c for c in columns if c in df.columns):
        text = df[col].astype("string").str.strip()
        out[col], bad = _typed(text, col)
        problems += _cell_problems(bad, text, out["source_row"], col, file,
                                   _type_expected(col))
        bad_cells |= {(i, col) for i in bad[bad].index}
    return out, problems, bad_cells


def _typed(text: pd.Series, col: str) -> tuple[pd.Series, pd.Series]:
    """The typed column and the mask of cells that are not of the type."""
    if col not in INT_COLUMNS and col not in schema.SHARE_COLUMNS and col not in FLOAT_COLUMNS:
        return text, pd.Series(False, index=text.index)
    num = pd.to_numeric(text, errors="coerce").astype("Float64")
    bad = text.notna() & num.isna()
    if col in INT_COLUMNS:
        bad |= num.notna() & (num % 1 != 0)
        return num.where(~bad).astype("Int64"), bad
    return num.where(~bad).astype("float64"), bad


def _type_expected(col: str) -> str:
    if col in INT_COLUMNS:
        return WHOLE
    return SHARE if col in schema.SHARE_COLUMNS else NUMBER


def _cell_problems(bad: pd.Series, text: pd.Series, rows: pd.Series, column: str, file: str,
                   expected: str) -> list[Problem]:
    """One problem per distinct bad value, so a systematic defect reads as one line."""
    out = []
    for value, idx in text[bad].groupby(text[bad], sort=True).groups.items():
        hint = " (the cell holds a spreadsheet formula error)" if EXCEL_ERROR.match(value) else ""
        out.append(Problem(file, column, expected + hint, _source_rows(rows, idx), str(value)))
    return out


# --- 3. derived counts and the table schemas ------------------------------------------------


def share_to_count(share: pd.Series, participants: pd.Series) -> pd.Series:
    """``round(share x participants)``, halves rounded up; missing where either is missing."""
    product = share.astype("float64") * participants.astype("float64")
    return pd.Series(np.floor(product + 0.5), index=share.index).astype("Int64")


def derive_counts(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[Problem]]:
    """Counts from shares where only shares are given: n_mark* from pct_mark*, n_below_min
    from pct_below_min.  Mark shares must sum to 1 (within :data:`SHARE_SUM_TOLERANCE`)."""
    out, repairs, problems = results.copy(), [], []
    file = _file(results, "results")
    shares = [c for c in schema.MARK_SHARES if c in out]
    if len(shares) == len(schema.MARK_SHARES):
        given = out[shares].notna().all(axis=1)
        counts = [c for c in schema.MARK_COUNTS if c in out]
        no_counts = ~out[counts].notna().all(axis=1) if counts else given | True
        todo = given & no_counts & out["participants"].notna()
        total = out.loc[todo, shares].sum(axis=1)
        off = todo & ((total - 1).abs() > SHARE_SUM_TOLERANCE).reindex(out.index, fill_value=False)
        if off.any():
            problems.append(Problem(file, "pct_mark2", SHARE_SUM, _source_rows(
                out["source_row"], out.index[off])))
        for share, count in zip(schema.MARK_SHARES, schema.MARK_COUNTS, strict=True):
            repairs += _fill(out, todo & ~off, share, count, file)
    if "pct_below_min" in out:
        absent = out["n_below_min"].isna() if "n_below_min" in out else out["participants"].notna()
        repairs += _fill(out, absent & out["pct_below_min"].notna(), "pct_below_min",
                         "n_below_min", file)
    return out, repairs, problems


def _fill(df: pd.DataFrame, rows: pd.Series, share: str, count: str, file: str) -> list[str]:
    if not rows.any():
        return []
    if count not in df:
        df[count] = pd.Series(pd.NA, index=df.index, dtype="Int64")
    df.loc[rows, count] = share_to_count(df.loc[rows, share], df.loc[rows, "participants"])
    return [f"{file}: {count} = round({share} x participants) ({_count(int(rows.sum()), 'row')})"]


@dataclass(frozen=True)
class _FrameRule:
    """A row-wise rule: the column named in messages, what was expected, and the columns
    whose values identify the failure (a duplicate key, an unknown school)."""

    column: str
    expected: str
    value_columns: tuple[str, ...] = ()


_RULES: dict[str, _FrameRule] = {
    "school_dup": _FrameRule("school_id", SCHOOL_DUP, ("school_id",)),
    "result_dup": _FrameRule(KEY_COLUMNS, RESULT_DUP, schema.RESULT_KEY),
    "mark_sum": _FrameRule("participants", MARK_SUM),
    "marks_or_below": _FrameRule("n_mark2", MARKS_OR_BELOW),
    "below_max": _FrameRule("n_below_min", BELOW_MAX),
    "unknown_school": _FrameRule("school_id", UNKNOWN_SCHOOL, ("school_id",)),
    **{f"complete_{c}": _FrameRule(c, MARKS_COMPLETE) for c in schema.MARK_COUNTS},
}


def _frame_check(name: str, passes: Callable[[pd.DataFrame], pd.Series]) -> pa.Check:
    return pa.Check(lambda df: passes(df).fillna(True).astype(bool), name=name, error=name,
                    ignore_na=False)


def _column(col: str, required: bool) -> pa.Column:
    checks: list[pa.Check] = []
    if col in INT_COLUMNS:
        checks.append(pa.Check.ge(0, error=WHOLE))
    if col in schema.SHARE_COLUMNS:
        checks.append(pa.Check.in_range(0.0, 1.0, error=SHARE))
    if col in CATEGORIES:
        checks.append(pa.Check.isin(CATEGORIES[col], error="one of " + ", ".join(CATEGORIES[col])))
    if col == "grade":
        checks.append(pa.Check.isin(schema.GRADES, error=GRADE))
    dtype = "Int64" if col in INT_COLUMNS else (
        "float64" if col in schema.SHARE_COLUMNS | FLOAT_COLUMNS else "string")
    return pa.Column(dtype, checks, nullable=not required, required=required)


def table_schema(table: str) -> pa.DataFrameSchema:
    """The pandera schema of a typed contract table (``schools`` or ``results``)."""
    required, columns = contract(table)
    checks = []
    if table == "schools":
        checks = [_frame_check("school_dup", lambda d: ~_dup(d, schema.SCHOOL_KEY))]
    elif table == "results":
        checks = [_frame_check("result_dup", lambda d: ~_dup(d, schema.RESULT_KEY)),
                  _frame_check("mark_sum", _marks_sum),
                  _frame_check("marks_or_below", _marks_or_below),
                  _frame_check("below_max", _below_max),
                  *(_frame_check(f"complete_{c}", _marks_complete(c)) for c in schema.MARK_COUNTS)]
    return pa.DataFrameSchema({c: _column(c, c in required) for c in columns}, checks=checks,
                              name=table)


def _dup(df: pd.DataFrame, key: Sequence[str]) -> pd.Series:
    return df.duplicated(list(key), keep=False)


def _marks_sum(df: pd.DataFrame) -> pd.Series:
    marks = [c for c in schema.MARK_COUNTS if c in df]
    if len(marks) < len(schema.MARK_COUNTS):
        return pd.Series(True, index=df.index)
    return df[marks].sum(axis=1, min_count=len(marks)) == df["participants"]


def _marks_or_below(df: pd.DataFrame) -> pd.Series:
    given = [c for c in (*schema.MARK_COUNTS, *schema.MARK_SHARES, "n_below_min",
                         "pct_below_min") if c in df]
    return df[given].notna().any(axis=1)


def _marks_complete(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    """A row with some mark counts has this one too."""
    def passes(df: pd.DataFrame) -> pd.Series:
        marks = [c for c in schema.MARK_COUNTS if c in df]
        if column not in df:
            return df[marks].isna().all(axis=1)
        return df[column].notna() | df[marks].isna().all(axis=1)
    return passes


def _below_max(df: pd.DataFrame) -> pd.Series:
    if "n_below_min" not in df:
        return pd.Series(True, index=df.index)
    return df["n_below_min"] <= df["participants"]


def run_schema(df: pd.DataFrame, checker: pa.DataFrameSchema, text: pd.DataFrame | None = None,
               skip: Iterable = ()) -> list[Problem]:
    """Run a pandera schema lazily and turn its failure cases into problems.

    Failures are grouped by (column, value, expected) into one problem each, with the
    analyst's row numbers; ``text`` (the table before typing) gives values as written;
    ``skip`` holds ``(index, column)`` cells already reported as not a number.
    """
    try:
        checker.validate(df, lazy=True)
    except SchemaErrors as exc:
        return _problems(exc.failure_cases, df, df if text is None else text, set(skip))
    return []


def _problems(cases: pd.DataFrame, df: pd.DataFrame, text: pd.DataFrame,
              skip: set) -> list[Problem]:
    groups: dict[tuple[str, str, str, str], set[int]] = {}
    for check, column, index, value in zip(cases["check"], cases["column"], cases["index"],
                                           cases["failure_case"], strict=True):
        where = _failure(str(check), str(column), index, value, df, text, skip)
        if where is not None:
            groups.setdefault(where[:4], set()).update(where[4])
    return [Problem(file, col, expected, tuple(sorted(rows)), val)
            for (file, col, val, expected), rows in groups.items()]


def _failure(check: str, column: str, index, value, df: pd.DataFrame, text: pd.DataFrame,
             skip: set) -> tuple | None:
    """(file, column, value, expected, rows) of one failure case, or None to skip it."""
    table = str(df.attrs.get("table", "table"))
    if index is None or pd.isna(index):  # a whole-column failure, e.g. a wrong dtype
        return (_file(df, table), column, "", f"values of type {check}", ())
    file, row = str(df.at[index, "source_file"]), int(df.at[index, "source_row"])
    rule = _RULES.get(check)
    if rule is not None:
        if (index, rule.column) in skip:
            return None
        val = ", ".join(str(df.at[index, c]) for c in rule.value_columns)
        return (file, rule.column, val, rule.expected, (row,))
    if (index, column) in skip:
        return None
    if check == "not_nullable":
        return (file, column, "", REQUIRED_VALUE, (row,))
    original = text.at[index, column] if column in text else value
    return (file, column, "" if pd.isna(original) else str(original), check, (row,))


def check_table(typed: pd.DataFrame, table: str, text: pd.DataFrame | None = None,
                skip: Iterable = ()) -> tuple[pd.DataFrame, list[Problem], list[str]]:
    """Derive counts from shares (results) and run the table's schema.

    Returns the (possibly completed) table, the problems and the repairs.
    """
    repairs: list[str] = []
    problems: list[Problem] = []
    if table == "results":
        typed, repairs, problems = derive_counts(typed)
    typed.attrs["table"] = table
    problems += run_schema(typed, table_schema(table), text, skip)
    return typed, problems, repairs


def leading_zero_warnings(schools: pd.DataFrame) -> list[str]:
    """A warning when all school codes are digits of different lengths (Excel drops the
    leading zeros of codes stored as numbers)."""
    ids = schools["school_id"].dropna().astype(str)
    if ids.empty or not ids.str.fullmatch(r"\d+").all():
        return []
    lengths = ids.str.len()
    if lengths.nunique() < 2:
        return []
    short = ids[lengths < lengths.max()]
    shown = sorted(short.unique())
    more = f" (and {len(shown) - 10} more)" if len(shown) > 10 else ""
    rows = ", ".join(str(r) for r in _source_rows(schools["source_row"], short.index)[:10])
    sizes = [str(n) for n in sorted(lengths.unique())]
    digits = ", ".join(sizes[:-1]) + " and " + sizes[-1]
    return [(f"{_file(schools, 'schools')}, rows {rows}: school codes of different lengths "
             f"({digits} digits): leading zeros may have been lost (Excel does this to codes "
             f"stored as numbers); codes: {', '.join(shown[:10])}{more}")]


# --- one table, both tables -----------------------------------------------------------------


def validate_table(df: pd.DataFrame, table: str) -> ValidationResult:
    """Normalise, type and check one table (text cells, or an already typed table)."""
    text, repairs = normalise(_as_text(df), table)
    typed, problems, skip = coerce(text, table)
    if typed is None:  # missing columns: nothing more can be checked
        return _single(table, None, problems, [], repairs)
    typed, found, derived = check_table(typed, table, text, skip)
    warnings = leading_zero_warnings(typed) if table == "schools" else []
    return _single(table, typed, _sorted(problems + found), warnings, repairs + derived)


def validate_tables(schools: pd.DataFrame, results: pd.DataFrame,
                    year: int) -> ValidationResult:
    """Validate both tables and the rules between them.

    ``schools`` and ``results`` are text tables (as read and mapped) or typed ones (as
    returned by :func:`validate_table` / :func:`analysis.ingest.io.coerce_table`).
    """
    s = validate_table(schools, "schools")
    r = validate_table(results, "results")
    problems = s.problems + r.problems
    if s.schools is not None and r.results is not None:
        problems += relation_problems(s.schools, r.results, year)
    return ValidationResult(s.schools, r.results, _sorted(problems), s.warnings + r.warnings,
                            s.repairs + r.repairs)


def relation_problems(schools: pd.DataFrame, results: pd.DataFrame,
                      year: int) -> list[Problem]:
    """Every result's school is in ``schools`` for that year; the reporting year is present."""
    key = list(schema.SCHOOL_KEY)
    known = pd.MultiIndex.from_frame(schools[key].dropna())
    checker = pa.DataFrameSchema(checks=[_frame_check("unknown_school", lambda d: pd.Series(
        pd.MultiIndex.from_frame(d[key]).isin(known) | d[key].isna().any(axis=1),
        index=d.index))])
    problems = run_schema(results, checker)
    for df, name in ((schools, "schools"), (results, "results")):
        if not (df["year"] == year).any():
            problems.append(Problem(_file(df, name), "year", f"rows for the reporting year "
                                    f"{year} (params.yaml: year)"))
    return problems


def _single(table: str, typed, problems, warnings, repairs) -> ValidationResult:
    tables = {"schools": None, "results": None, "students": None, table: typed}
    return ValidationResult(tables["schools"], tables["results"], problems, warnings, repairs,
                            tables["students"])


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every contract cell as text (typed tables are re-checked the same way)."""
    out = df.copy()
    for col in (c for c in df.columns if c not in SOURCE):
        if not (pd.api.types.is_string_dtype(df[col]) or df[col].dtype == object):
            out[col] = df[col].astype("string")
    return out


# --- report ---------------------------------------------------------------------------------


def to_json(outcome: ValidationResult | InputError, reads: Sequence[ReadReport], *,
            repairs: Sequence[str] = (), warnings: Sequence[str] = ()) -> dict:
    """A JSON-serialisable description of a validation: files read, repairs, warnings and
    errors.  ``outcome`` is a result, or the :class:`InputError` that stopped the run
    (``repairs``/``warnings`` then add what was logged before it)."""
    if isinstance(outcome, ValidationResult):
        problems = outcome.problems
        repairs = [*repairs, *outcome.repairs]
        warnings = [*warnings, *outcome.warnings]
    else:
        problems = list(outcome.problems)
    return {
        "status": "failed" if problems else "ok",
        "files": [_read_json(r) for r in sorted(reads, key=lambda r: r.file)],
        "repairs": list(dict.fromkeys(repairs)),
        "warnings": list(dict.fromkeys(warnings)),
        "errors": [{"file": p.file, "rows": list(p.rows), "column": p.column, "value": p.value,
                    "expected": p.expected} for p in problems],
    }


def _read_json(r: ReadReport) -> dict:
    return {"file": r.file, "format": r.format, "encoding": r.encoding,
            "separator": r.separator, "decimal": r.decimal, "header_row": r.header_row,
            "notes": list(r.notes), "sha256": r.sha256, "size": r.size}


def to_html(doc: dict, lang: str = "ru") -> str:
    """A self-contained page of a :func:`to_json` document (catalogue headings in ``lang``;
    every value escaped; no external resources)."""
    from analysis.i18n import t

    e = html.escape
    status = t(f"validation.status_{doc['status']}", lang)
    parts = [f'<!DOCTYPE html>\n<html lang="{e(lang)}">\n<head><meta charset="utf-8">',
             f"<title>{e(t('validation.title', lang))}</title>", f"<style>{_CSS}</style>",
             "</head><body>", f"<h1>{e(t('validation.title', lang))}: {e(status)}</h1>",
             f"<h2>{e(t('validation.files', lang))}</h2><ul>"]
    for f in doc["files"]:
        how = ", ".join(f"{t(f'validation.{k}', lang)} «{f[k]}»"
                        for k in _READ_KEYS if f[k] is not None)
        notes = "".join(f"<li>{e(n)}</li>" for n in f["notes"])
        parts.append(f"<li><b>{e(f['file'])}</b>: {e(how)}<ul>{notes}</ul></li>")
    parts.append("</ul>")
    none = f"<p>{e(t('validation.none', lang))}</p>"
    for key in ("repairs", "warnings"):
        items = "".join(f"<li>{e(x)}</li>" for x in doc[key])
        parts.append(f"<h2>{e(t(f'validation.{key}', lang))} ({len(doc[key])})</h2>"
                     + (f"<ul>{items}</ul>" if items else none))
    parts.append(f"<h2>{e(t('validation.errors', lang))} ({len(doc['errors'])})</h2>")
    if doc["errors"]:
        head = "".join(f"<th>{e(t(f'validation.col_{h}', lang))}</th>" for h in _ERROR_COLS)
        body = "".join(
            "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in (
                p["file"], ", ".join(map(str, p["rows"])), p["column"], p["value"],
                p["expected"])) + "</tr>" for p in doc["errors"])
        parts.append(f"<table><tr>{head}</tr>{body}</table>")
    else:
        parts.append(none)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


_READ_KEYS = ("format", "encoding", "separator", "decimal", "header_row")
_ERROR_COLS = ("file", "rows", "column", "value", "expected")
_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.25em .5em;"
        "text-align:left;vertical-align:top}th{background:#f2f2f2}")


# --- helpers --------------------------------------------------------------------------------


def contract(table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Required and all columns of a contract table."""
    if table not in schema.TABLE_COLUMNS:
        raise ValueError(f"unknown table '{table}'")
    return schema.REQUIRED_COLUMNS[table], schema.TABLE_COLUMNS[table]


def _file(df: pd.DataFrame, default: str) -> str:
    return str(df["source_file"].iloc[0]) if len(df) and "source_file" in df else default


def _source_rows(rows: pd.Series, index: Iterable) -> tuple[int, ...]:
    return tuple(sorted(int(r) for r in rows[list(index)]))


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, p.rows[:1] or (0,), p.column, p.value))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"
