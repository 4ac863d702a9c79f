"""Student-level results aggregated to the contract's ``results`` table, out of core (DuckDB).

An analyst who has only student-level results (the contract's ``students`` table: one row per
student x procedure) needs the ``results`` table the pipeline reads: one row per year x
school x procedure x subject x grade.  :func:`aggregate` computes it with DuckDB SQL straight
from the files (``read_parquet`` / ``read_csv``), so the students table is never held in
memory: DuckDB streams it, keeps the groups within ``memory_limit`` and spills the rest to a
temporary folder.  A national file (tens of millions of rows) aggregates in a few GB.

Output ``results`` (one row per result key, sorted by it):

- ``participants``: the students who sat it (rows of the students table);
- ``n_mark2`` .. ``n_mark5``: counts of each mark, for a *marked* procedure (a group whose
  students have marks); empty for a *scored* one (ЕГЭ: no marks);
- ``n_below_min``: for a scored procedure, the students whose ``score`` is below the minimum
  threshold.  The students table carries no thresholds (they are set by Rosobrnadzor each
  year, per subject), so the column is written only when they are given (``min_scores``,
  ``--min-score rus=24``); the pipeline's validation needs it for every scored procedure.
  A student without a score is not counted below the threshold;
- ``mean_score``: the mean of ``score`` over the students with one (any procedure).

Output ``school_ses`` (one row per year x school, sorted): ``n_students`` (distinct
``student_key`` values; a row without a key, or a table without the column, counts as one
student), ``n_ses`` (those of them with ``ses``) and ``mean_ses`` (the mean over students of
each student's mean ``ses``, so a student who sat several procedures counts once).

No student key, and nothing else about one student, is ever written.  The files are
byte-identical across runs, thread counts, engines and machines: rows are sorted by key, and
the sums behind the means are exact, so they do not depend on the order in which threads add
rows (a floating-point sum does, in its last bits, and 10-digit rounding does not hide that
when ``ses`` has few decimals: its means often end in a 5 at the 11th digit).  Each ``score``
and ``ses`` is taken in integer units of :data:`UNIT` (10^-9, far below any assessment's or
questionnaire's precision), summed exactly as integers, and the mean is one division; a
student's mean ``ses`` is rounded to the same units.  Floats are then rounded to
:data:`analysis.outputs.FLOAT_DIGITS` significant digits.  :func:`aggregate_pandas` is the
in-memory reference the tests compare the SQL with.

A students table that breaks the contract stops with an :class:`~analysis.errors.InputError`
naming the file and the column: a missing key column, a value that is not a number, a mark
other than 2..5, a key left empty, a marked procedure with some students unmarked.

Command line::

    python -m analysis.ingest.aggregate --students students.parquet --out results.parquet \
        [--ses-out school_ses.parquet] [--min-score rus=24 --min-score math_profile=27] \
        [--memory-limit 3GB] [--threads 2] [--temp-dir DIR]

Inputs: a ``.parquet`` file, a folder of ``.parquet`` files (searched recursively, read as one
table; hive partitions such as ``year=2025/`` are read as columns), or a ``.csv`` file
(UTF-8, ``,`` or ``;`` separated, ``.`` or ``,`` as the decimal mark) with the contract's
column names (for other encodings or headers, read it through the pipeline or convert it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InputError, Problem
from analysis.ingest import schema
from analysis.outputs import OutputError, round_frame, write_table

#: DuckDB's memory limit (its buffer pool: hash tables, sort runs; beyond it, it spills).
DEFAULT_MEMORY_LIMIT = "3GB"
#: DuckDB worker threads.
DEFAULT_THREADS = 2
MARKS = (2, 3, 4, 5)
#: ``score`` and ``ses`` are summed exactly in integer multiples of this (see the docstring);
#: a group's sum must stay below 9.2e9 in the value's own units (int64).
UNIT = 1e-9
_PER_UNIT = 1e9
#: Columns of the output ``results`` table (``n_below_min`` only with thresholds).
RESULTS_OUT = (*schema.RESULT_KEY, "participants", *schema.MARK_COUNTS, "n_below_min",
               "mean_score")
#: Columns of the output ``school_ses`` table.
SES_OUT = ("year", "school_id", "n_students", "n_ses", "mean_ses")
_KEY_TYPES = {"year": "BIGINT", "school_id": "VARCHAR", "procedure": "VARCHAR",
              "subject": "VARCHAR", "grade": "BIGINT"}
_VALUE_TYPES = {"score": "DOUBLE", "mark": "DOUBLE", "ses": "DOUBLE", "student_key": "VARCHAR"}
_CONTRACT = "DATA_CONTRACT.md, table students"


@dataclass(frozen=True)
class Aggregated:
    """What :func:`aggregate` returns.

    Attributes
    ----------
    results : DataFrame, shape (n_result_rows, 11 or 12)
        :data:`RESULTS_OUT` (``n_below_min`` only when thresholds were given), sorted by
        :data:`analysis.ingest.schema.RESULT_KEY`; counts ``int64`` / ``Int64``, ``mean_score``
        in the score's units.
    school_ses : DataFrame, shape (n_school_years, 5)
        :data:`SES_OUT`, sorted by year and school; ``mean_ses`` in the ``ses`` scale (NaN
        where no student has one).
    rows_in : int
        Rows of the students table read (student x procedure).
    """

    results: pd.DataFrame
    school_ses: pd.DataFrame
    rows_in: int


# --- DuckDB ---------------------------------------------------------------------------------


def source_files(path: str | Path) -> list[Path]:
    """The files of a students table: the file itself, or a folder's ``.parquet`` files.

    Raises
    ------
    InputError
        No such file or folder, an extension other than ``.parquet``/``.csv``, or a folder
        without ``.parquet`` files.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise InputError(Problem(str(path), "", "a folder with .parquet files (the "
                                     "students table, one row per student x procedure)"))
        return files
    if not path.is_file():
        raise InputError(Problem(str(path), "", "an existing .parquet or .csv file or a folder "
                                 "of .parquet files"))
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise InputError(Problem(str(path), "", "a .parquet or .csv file", value=path.suffix))
    return [path]


def aggregate(path: str | Path, *, min_scores: Mapping[str, float] | None = None,
              memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int = DEFAULT_THREADS,
              temp_dir: str | Path | None = None) -> Aggregated:
    """Aggregate a students table on disk to ``results`` and ``school_ses``, out of core.

    Parameters
    ----------
    path : str or Path
        A ``.parquet`` or ``.csv`` file, or a folder of ``.parquet`` files, with the
        contract's ``students`` columns (``year``, ``school_id``, ``procedure``,
        ``subject``, ``grade`` required; ``student_key``, ``score``, ``mark``, ``ses``
        optional).  Size: any; memory use is bounded by ``memory_limit``.
    min_scores : mapping subject -> float, optional
        Minimum thresholds of scored procedures (test-score units), e.g.
        ``{"rus": 24, "math_profile": 27}``; with them ``n_below_min`` is computed.
    memory_limit : str
        DuckDB ``memory_limit`` (e.g. ``"3GB"``): DuckDB keeps its hash tables within it
        and spills the rest to disk; the process's peak RSS stays within about this plus
        0.3 GB (interpreter, pandas, the output, which is small).
    threads : int
        DuckDB worker threads.
    temp_dir : str or Path, optional
        Where a fresh spill folder is made (removed afterwards); default the system's.

    Returns
    -------
    Aggregated

    Raises
    ------
    InputError
        The file cannot be read or breaks the contract (names the file and the column).
    MemoryError
        DuckDB ran out of memory and of spill space.
    """
    import duckdb

    files = source_files(path)
    name = str(path)
    min_scores = dict(min_scores or {})
    with tempfile.TemporaryDirectory(prefix="aggregate-spill-", dir=temp_dir) as spill:
        con = duckdb.connect(":memory:")
        try:
            for sql in (f"SET memory_limit = '{_literal(memory_limit)}'",
                        f"SET threads = {int(threads)}",
                        f"SET temp_directory = '{_literal(spill)}'",
                        "SET preserve_insertion_order = false",
                        "SET enable_progress_bar = false"):
                con.execute(sql)
            source, columns = _source(con, files, name)
            src = _projection(source, columns)
            try:
                raw = con.execute(_results_sql(src, min_scores),
                                  _threshold_params(min_scores)).df()
                ses = con.execute(_ses_sql(src, "student_key" in columns)).df()
            except duckdb.ConversionException as exc:
                raise InputError(_conversion_problems(con, source, columns, name, exc)) from None
            except duckdb.OutOfMemoryException as exc:
                raise MemoryError(
                    f"aggregating {name} needs more than memory_limit {memory_limit} and the "
                    f"spill folder allow ({_first_line(exc)}); raise --memory-limit or free "
                    f"disk space under {temp_dir or tempfile.gettempdir()}") from None
            except duckdb.Error as exc:
                raise InputError(Problem(name, "", "a readable students table",
                                         value=_first_line(exc))) from None
        finally:
            con.close()
    return _finish(raw, ses, name, thresholds=bool(min_scores))


def _literal(text: object) -> str:
    """``text`` for a single-quoted SQL literal."""
    return str(text).replace("'", "''")


def _source(con, files: Sequence[Path], name: str) -> tuple[str, dict[str, str]]:
    """The table function reading ``files`` and the columns it gives (name -> DuckDB type).

    Raises
    ------
    InputError
        The file cannot be read, or lacks a key column of the contract.
    """
    import duckdb

    listed = ", ".join(f"'{_literal(f)}'" for f in files)
    if files[0].suffix.lower() == ".csv":
        source = f"read_csv('{_literal(files[0])}', header = true, all_varchar = true)"
    else:
        source = f"read_parquet([{listed}], union_by_name = true)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        raise InputError(Problem(name, "", "a readable .parquet or UTF-8 .csv students table",
                                 value=_first_line(exc))) from None
    columns = {str(row[0]): str(row[1]) for row in described}
    missing = [c for c in schema.REQUIRED_COLUMNS["students"] if c not in columns]
    if missing:
        raise InputError([Problem(name, c, f"a column '{c}' ({_CONTRACT}: "
                                  f"{', '.join(schema.STUDENTS_COLUMNS)})") for c in missing])
    return source, columns


def _projection(source: str, columns: Mapping[str, str]) -> str:
    """A subquery with the contract columns cast to their types (NULL where absent).

    Text numbers (CSV, or text columns in Parquet) may use a decimal comma.
    """
    out = []
    for col, typ in {**_KEY_TYPES, **_VALUE_TYPES}.items():
        if col not in columns:
            out.append(f"CAST(NULL AS {typ}) AS {col}")
        elif typ != "VARCHAR" and columns[col] == "VARCHAR":
            out.append(f"CAST(replace(trim({col}), ',', '.') AS {typ}) AS {col}")
        elif typ == "VARCHAR" and columns[col] == "VARCHAR":
            out.append(f"trim({col}) AS {col}")
        else:
            out.append(f"CAST({col} AS {typ}) AS {col}")
    return f"(SELECT {', '.join(out)} FROM {source})"


def _threshold_case(min_scores: Mapping[str, float]) -> str:
    """SQL: the row's minimum threshold (by subject; parameters ``?``), NULL if none."""
    if not min_scores:
        return "CAST(NULL AS DOUBLE)"
    whens = " ".join("WHEN subject = ? THEN CAST(? AS DOUBLE)" for _ in min_scores)
    return f"(CASE {whens} END)"


def _threshold_params(min_scores: Mapping[str, float]) -> list[object]:
    return [v for subject, score in sorted(min_scores.items()) for v in (subject, float(score))]


def _results_sql(src: str, min_scores: Mapping[str, float]) -> str:
    """SQL: one row per result key, sorted by key, with the raw aggregates :func:`_finish`
    checks and shapes (counts of rows, marks, bad marks, scores below the threshold; the
    score sum in :data:`UNIT` units)."""
    keys = ", ".join(schema.RESULT_KEY)
    marks = ", ".join(f"count(*) FILTER (WHERE mark = {m}) AS n_mark{m}" for m in MARKS)
    bad = f"mark NOT IN ({', '.join(f'{m}.0' for m in MARKS)})"
    return f"""
        SELECT {keys},
               count(*) AS participants,
               count(mark) AS n_marked,
               {marks},
               count(*) FILTER (WHERE {bad}) AS n_bad_mark,
               min(mark) FILTER (WHERE {bad}) AS bad_mark,
               count(*) FILTER (WHERE score < min_score) AS n_below,
               count(min_score) AS n_threshold,
               coalesce(CAST(sum(score_units) AS BIGINT), 0) AS score_sum,
               count(score) AS n_score
        FROM (SELECT *, {_threshold_case(min_scores)} AS min_score,
                     {_units("score")} AS score_units FROM {src})
        GROUP BY {keys}
        ORDER BY {keys}"""


def _units(col: str) -> str:
    """SQL: ``col`` in integer :data:`UNIT` units (round half to even, as ``numpy.rint``)."""
    return f"CAST(round_even({col} * CAST({_PER_UNIT!r} AS DOUBLE), 0) AS BIGINT)"


def _ses_sql(src: str, keyed: bool) -> str:
    """SQL: one row per year x school: students, students with ses, the sum of their ses
    (integer units; a student's mean ses rounded to units)."""
    rows = f"SELECT year, school_id, student_key, {_units('ses')} AS u FROM {src}"
    if keyed:
        students = f"""
            SELECT year, school_id,
                   CAST(round_even(CAST(CAST(sum(u) AS BIGINT) AS DOUBLE) / count(u), 0)
                        AS BIGINT) AS u
            FROM ({rows}) WHERE student_key IS NOT NULL
            GROUP BY year, school_id, student_key
            UNION ALL
            SELECT year, school_id, u FROM ({rows}) WHERE student_key IS NULL"""
    else:
        students = rows
    return f"""
        SELECT year, school_id, count(*) AS n_students, count(u) AS n_ses,
               coalesce(CAST(sum(u) AS BIGINT), 0) AS ses_sum
        FROM ({students})
        GROUP BY year, school_id
        ORDER BY year, school_id"""


def _conversion_problems(con, source: str, columns: Mapping[str, str], name: str,
                         exc: Exception) -> list[Problem]:
    """Problems naming each column with a value that is not of its type (a second pass over
    the file, on the error path only)."""
    checks = []
    for col, typ in {**_KEY_TYPES, **_VALUE_TYPES}.items():
        if col in columns and typ != "VARCHAR":
            raw = f"replace(trim(CAST({col} AS VARCHAR)), ',', '.')"
            bad = f"{col} IS NOT NULL AND TRY_CAST({raw} AS {typ}) IS NULL"
            checks.append((col, typ, f"count(*) FILTER (WHERE {bad}), "
                                     f"min(CAST({col} AS VARCHAR)) FILTER (WHERE {bad})"))
    got = con.execute(f"SELECT {', '.join(c for *_, c in checks)} FROM {source}").fetchone()
    problems = []
    for i, (col, typ, _) in enumerate(checks):
        n, example = got[2 * i], got[2 * i + 1]
        if n:
            what = "a whole number" if typ == "BIGINT" else "a number"
            problems.append(Problem(name, col, f"{what} in every row ({n} rows are not)",
                                    value=str(example)))
    return problems or [Problem(name, "", "numbers where the contract has numbers",
                                value=_first_line(exc))]


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- pandas reference -----------------------------------------------------------------------


def aggregate_pandas(students: pd.DataFrame, *, min_scores: Mapping[str, float] | None = None,
                     name: str = "students") -> Aggregated:
    """The same aggregation in memory with pandas (the reference the tests compare with).

    Parameters
    ----------
    students : DataFrame, shape (n_rows, <= 9)
        The contract's ``students`` columns (as :func:`aggregate` reads them).
    min_scores : mapping subject -> float, optional
        As in :func:`aggregate`.
    name : str
        The file named in error messages.

    Returns
    -------
    Aggregated
        Equal, value for value, to :func:`aggregate` on the same table.
    """
    missing = [c for c in schema.REQUIRED_COLUMNS["students"] if c not in students.columns]
    if missing:
        raise InputError([Problem(name, c, f"a column '{c}' ({_CONTRACT})") for c in missing])
    df = pd.DataFrame({
        "year": pd.to_numeric(students["year"]).astype("Int64"),
        **{c: students[c].astype("string").str.strip()
           for c in ("school_id", "procedure", "subject")},
        "grade": pd.to_numeric(students["grade"]).astype("Int64"),
        **{c: (pd.to_numeric(students[c]).astype("float64") if c in students
               else pd.Series(np.nan, index=students.index)) for c in ("score", "mark", "ses")},
        "student_key": (students["student_key"].astype("string") if "student_key" in students
                        else pd.Series(pd.NA, index=students.index, dtype="string")),
    })
    keys = list(schema.RESULT_KEY)
    mark = df["mark"]
    bad = mark.notna() & ~mark.isin(MARKS)
    limit = df["subject"].map(dict(min_scores or {})).astype("float64")
    score_units = _units_pandas(df["score"])
    parts = df[keys].assign(
        participants=1, n_marked=mark.notna().astype("int64"),
        **{f"n_mark{m}": (mark == m).astype("int64") for m in MARKS},
        n_bad_mark=bad.astype("int64"), bad_mark=mark.where(bad),
        n_below=(df["score"] < limit).astype("int64"),
        n_threshold=limit.notna().astype("int64"), score_sum=score_units,
        n_score=df["score"].notna().astype("int64"))
    grouped = parts.groupby(keys, sort=True, dropna=False)
    raw = grouped.sum(min_count=0).drop(columns=["bad_mark"])
    raw["bad_mark"] = grouped["bad_mark"].min()
    raw = raw.reset_index()
    units = df[["year", "school_id", "student_key"]].assign(u=_units_pandas(df["ses"]))
    keyed = (units.loc[units["student_key"].notna()]
             .groupby(["year", "school_id", "student_key"], sort=False, dropna=False)["u"]
             .agg(["sum", "count"]).reset_index(level="student_key", drop=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.rint(keyed["sum"].astype("float64").to_numpy()
                       / keyed["count"].to_numpy(dtype="float64"))
    per_student = keyed.assign(u=pd.array(np.where(keyed["count"] > 0, mean, np.nan),
                                          dtype="Int64"))[["u"]].reset_index()
    unkeyed = units.loc[units["student_key"].isna(), ["year", "school_id", "u"]]
    people = pd.concat([per_student, unkeyed], ignore_index=True)
    ses = (people.groupby(["year", "school_id"], sort=True, dropna=False)["u"]
           .agg(n_students="size", n_ses="count", ses_sum="sum").reset_index())
    return _finish(raw, ses, name, thresholds=bool(min_scores))


def _units_pandas(values: pd.Series) -> pd.Series:
    """``values`` in integer :data:`UNIT` units (``Int64``, NA where missing), as
    :func:`_units` computes them in SQL."""
    return pd.Series(np.rint(values.to_numpy(dtype="float64") * _PER_UNIT),
                     index=values.index).astype("Int64")


# --- both engines ---------------------------------------------------------------------------


def _finish(raw: pd.DataFrame, ses: pd.DataFrame, name: str, *, thresholds: bool
            ) -> Aggregated:
    """Check the raw aggregates against the contract and shape the two output tables.

    Raises
    ------
    InputError
        Empty keys, marks other than 2..5, marked procedures with unmarked students.
    """
    problems = []
    for col in schema.RESULT_KEY:
        empty = raw[col].isna()
        if empty.any():
            problems.append(Problem(name, col, "a value in every row (the result key)",
                                    value=f"empty in {int(raw.loc[empty, 'participants'].sum())}"
                                          " rows"))
    bad = raw["n_bad_mark"] > 0
    if bad.any():
        example = raw.loc[bad, "bad_mark"].iloc[0]
        problems.append(Problem(
            name, "mark", f"a mark 2, 3, 4 or 5, or empty for a scored procedure "
            f"({int(raw.loc[bad, 'n_bad_mark'].sum())} rows are not)", value=f"{example:g}"))
    marked = raw["n_marked"] > 0
    partial = marked & (raw["n_marked"] < raw["participants"])
    if partial.any():
        first = raw.loc[partial].iloc[0]
        where = " ".join(str(first[c]) for c in schema.RESULT_KEY)
        problems.append(Problem(
            name, "mark", "a mark for every student of a marked procedure (or none for a scored "
            f"one); {int(partial.sum())} procedure(s) have both, e.g. {where}: "
            f"{int(first['participants'] - first['n_marked'])} of {int(first['participants'])}"
            " students without a mark"))
    if problems:
        raise InputError(problems)
    out = pd.DataFrame({
        "year": raw["year"].astype("int64"),
        **{c: raw[c].astype("string") for c in ("school_id", "procedure", "subject")},
        "grade": raw["grade"].astype("int64"),
        "participants": raw["participants"].astype("int64"),
    })
    for m in MARKS:
        out[f"n_mark{m}"] = pd.array(raw[f"n_mark{m}"].astype("int64"), dtype="Int64")
        out.loc[~marked.to_numpy(), f"n_mark{m}"] = pd.NA
    if thresholds:
        below = pd.array(raw["n_below"].astype("int64"), dtype="Int64")
        out["n_below_min"] = below
        out.loc[(marked | (raw["n_threshold"] == 0)).to_numpy(), "n_below_min"] = pd.NA
    out["mean_score"] = _mean(raw["score_sum"], raw["n_score"])
    school = pd.DataFrame({
        "year": ses["year"].astype("int64"), "school_id": ses["school_id"].astype("string"),
        "n_students": ses["n_students"].astype("int64"), "n_ses": ses["n_ses"].astype("int64"),
    })
    school["mean_ses"] = _mean(ses["ses_sum"], ses["n_ses"])
    return Aggregated(round_frame(out.reset_index(drop=True)),
                      round_frame(school.reset_index(drop=True)),
                      int(out["participants"].sum()))


def _mean(units: pd.Series, n: pd.Series) -> pd.Series:
    """The mean from an exact sum in :data:`UNIT` units (int64) and a count; NaN if none."""
    total = units.astype("int64").to_numpy().astype("float64")
    count = n.astype("int64").to_numpy().astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count / _PER_UNIT, np.nan)
    return pd.Series(mean, index=units.index)


def write(agg: Aggregated, out: str | Path, ses_out: str | Path | None = None
          ) -> tuple[Path, Path | None]:
    """Write ``results`` to ``out`` and ``school_ses`` to ``ses_out`` (``.parquet`` or
    ``.csv`` by suffix), atomically, floats rounded (:func:`analysis.outputs.write_table`)."""
    paths = write_table(agg.results, out), None
    if ses_out is not None:
        paths = paths[0], write_table(agg.school_ses, ses_out)
    return paths


# --- command line ---------------------------------------------------------------------------


def _min_score(text: str) -> tuple[str, float]:
    subject, sep, value = text.partition("=")
    try:
        if not sep or not subject.strip():
            raise ValueError
        return subject.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SUBJECT=SCORE (e.g. rus=24), got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring).

    Returns
    -------
    int
        0 done; 2 the students table cannot be used (the message names file and column);
        1 out of memory and spill space, or an output that cannot be written.
    """
    parser = argparse.ArgumentParser(
        prog="python -m analysis.ingest.aggregate",
        description="Aggregate a students table (one row per student x procedure) to the "
                    "results table (one row per year x school x procedure x subject x grade), "
                    "out of core with DuckDB.")
    parser.add_argument("--students", required=True, type=Path, metavar="PATH",
                        help=".parquet or .csv file, or a folder of .parquet files")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE",
                        help="the results table to write (.parquet or .csv)")
    parser.add_argument("--ses-out", type=Path, metavar="FILE",
                        help="the per school-year ses table (default: <out>_ses beside --out)")
    parser.add_argument("--min-score", type=_min_score, action="append", default=[],
                        metavar="SUBJECT=SCORE",
                        help="minimum threshold of a scored procedure's subject (repeat); "
                             "without it n_below_min is not written")
    parser.add_argument("--memory-limit", default=DEFAULT_MEMORY_LIMIT,
                        help=f"DuckDB memory limit (default {DEFAULT_MEMORY_LIMIT})")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"DuckDB threads (default {DEFAULT_THREADS})")
    parser.add_argument("--temp-dir", type=Path, help="where DuckDB spills (default: system)")
    args = parser.parse_args(argv)
    ses_out = args.ses_out or args.out.with_name(f"{args.out.stem}_ses{args.out.suffix}")
    start = time.perf_counter()
    try:
        agg = aggregate(args.students, min_scores=dict(args.min_score),
                        memory_limit=args.memory_limit, threads=args.threads,
                        temp_dir=args.temp_dir)
    except InputError as exc:
        print(exc, file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        write(agg, args.out, ses_out)
    except OutputError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"students: {agg.rows_in:,} rows in ({args.students}); results: "
          f"{len(agg.results):,} rows out ({args.out}); school_ses: {len(agg.school_ses):,} "
          f"rows ({ses_out}); {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
