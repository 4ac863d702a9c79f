"""Files: :func:`write_region` writes a region's raw tables and its truth, byte for byte.

CSV files have fixed formats (:data:`CSV_DECIMALS`) and the bytes of ``DataFrame.to_csv``,
but are formatted column by column and joined by vectorised Arrow kernels
(:func:`_write_csv`); the truth folder's README is :data:`TRUTH_README` filled with the
region's counts and parameters (:func:`_truth_readme`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.demo.synth.region import Region

#: Decimals of float columns in CSV files (others: 4).
CSV_DECIMALS = {"mean_score": 2}


def write_region(region: Region, raw_dir: Path, truth_dir: Path) -> list[Path]:
    """Write the region's raw tables to ``raw_dir`` and its truth to ``truth_dir``.

    Writes ``schools.csv``, ``results.csv`` (UTF-8, ``,``, ``.`` decimal, shares with 4
    decimals, counts as integers, missing = empty cell), ``students.parquet`` when the region
    has students, and ``truth.csv``, ``truth_years.csv``, ``truth_procedures.csv`` (same
    formats), ``truth.json``, ``README.md``.

    Returns
    -------
    list of Path
        The written files, in the order above.
    """
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    paths = [_write_csv(region.schools, raw_dir / "schools.csv"),
             _write_csv(region.results, raw_dir / "results.csv")]
    if region.students is not None:
        path = raw_dir / "students.parquet"
        region.students.to_parquet(path, index=False)
        paths.append(path)
    paths.append(_write_csv(region.truth, truth_dir / "truth.csv"))
    paths.append(_write_csv(region.truth_years, truth_dir / "truth_years.csv"))
    paths.append(_write_csv(region.truth_procedures, truth_dir / "truth_procedures.csv"))
    path = truth_dir / "truth.json"
    path.write_text(json.dumps(region.truth_params, sort_keys=True, indent=2,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    paths.append(path)
    path = truth_dir / "README.md"
    path.write_text(_truth_readme(region.truth_params), encoding="utf-8")
    paths.append(path)
    return paths


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    """CSV with fixed formats: ints without ``.0``, floats with fixed decimals, NA empty.

    The bytes are those of ``DataFrame.to_csv(index=False, lineterminator="\\n",
    na_rep="")`` on the formatted text (UTF-8, ``,``, a field quoted only when it holds a
    delimiter, a quote or a line break), but columns are formatted and rows joined by
    vectorised Arrow kernels (one pass per column), not row by row.
    """
    header = ",".join(_csv_quote(pa.array([str(c) for c in df.columns], type=pa.string()))
                      .to_pylist()) + "\n"
    with path.open("wb") as handle:
        handle.write(header.encode("utf-8"))
        if len(df):
            columns = [_column_text(df[col], CSV_DECIMALS.get(col, 4)) for col in df]
            columns[-1] = pc.binary_join_element_wise(columns[-1], "", "\n")
            rows = pc.binary_join_element_wise(*columns, ",") if len(columns) > 1 else columns[0]
            handle.write(_string_data(rows))
    return path


def _string_data(values: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of an Arrow string array without nulls (no copy)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    _, offsets, data = values.buffers()
    bounds = np.frombuffer(offsets, dtype=offset_type)[values.offset:values.offset + len(values)
                                                       + 1]
    return memoryview(data)[int(bounds[0]):int(bounds[-1])]


def _column_text(col: pd.Series, decimals: int) -> pa.Array:
    """One column as CSV fields (an Arrow string array; missing values are empty fields)."""
    if pd.api.types.is_bool_dtype(col):
        flags = np.where(col.isna().to_numpy(), 2, col.to_numpy(dtype=bool, na_value=False))
        return _pick(("False", "True", ""), flags)
    if pd.api.types.is_integer_dtype(col):
        values = pa.array(col.to_numpy(dtype="int64", na_value=0), mask=col.isna().to_numpy())
        return pc.fill_null(pc.cast(values, pa.string()), "")
    if pd.api.types.is_float_dtype(col):
        return _fixed_decimals(col.to_numpy(dtype=float, na_value=np.nan), decimals)
    values = pa.array(col, from_pandas=True)  # the Arrow data of a ``string`` column
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return _csv_quote(pc.fill_null(values.cast(pa.string()), ""))


def _fixed_decimals(values: np.ndarray, decimals: int) -> pa.Array:
    """``f"{v:.{decimals}f}"`` of every value (NaN: empty field), vectorised.

    The digits are ``rint(|v| * 10**decimals)`` split at the decimal point; that rounding
    equals Python's (correctly rounded) formatting unless ``|v| * 10**decimals`` lies within
    1e-6 of a half or is huge (or infinite), and those few values are formatted by Python.
    """
    scale = 10**decimals
    missing = np.isnan(values)
    if missing.all():
        return pc.fill_null(pa.nulls(len(values), pa.string()), "")
    scaled = np.abs(np.where(np.isfinite(values), values, 0.0)) * scale
    fast = missing | (np.isfinite(values) & (scaled < 1e9)
                      & (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6))
    whole, frac = np.divmod(np.rint(np.where(fast, scaled, 0.0)).astype(np.int64), scale)
    text = pc.binary_join_element_wise(
        pc.binary_join_element_wise(_pick(("", "-"), np.signbit(values)),
                                    pc.cast(pa.array(whole), pa.string()), ""),
        pc.utf8_lpad(pc.cast(pa.array(frac), pa.string()), width=decimals, padding="0"), ".")
    text = pc.if_else(pa.array(missing), "", text)
    if not fast.all():
        slow = ~fast
        text = pc.replace_with_mask(text, pa.array(slow), pa.array(
            [f"{v:.{decimals}f}" for v in values[slow]], type=pa.string()))
    return text


def _pick(words: Sequence[str], which: np.ndarray) -> pa.Array:
    """``words[which[i]]`` for every i, as an Arrow string array (a take, not an ``if_else``
    of scalars, which is much slower)."""
    return pc.take(pa.array(list(words), type=pa.string()), pa.array(which.astype(np.int8)))


def _csv_quote(values: pa.Array) -> pa.Array:
    """Text fields quoted as the ``csv`` module (and so pandas) quotes them.

    Only fields holding a delimiter, a quote or a line break can need quoting; they are few,
    and ``csv.writer`` itself writes them, so the quoting is exactly that of ``to_csv``.
    """
    special = pc.fill_null(pc.match_substring_regex(values, '[,"\\r\\n]'), False)
    if not pc.any(special).as_py():
        return values
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    quoted = []
    for field in pc.filter(values, special).to_pylist():
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([field])
        quoted.append(buffer.getvalue()[:-1])
    return pc.replace_with_mask(values, special, pa.array(quoted, type=pa.string()))


def _truth_readme(params: dict) -> str:
    """The truth folder's README, filled with this region's counts and parameters."""
    c, spec = params["counts"], params["spec"]
    sm, pl = params["model"]["student_model"], params["model"]["planted"]
    res, low, inf = pl["resilient"], pl["low"], pl["inflated_vpr"]
    years = spec["years"]
    text = TRUTH_README
    if "regions" in c:
        text = text.replace("{n_munis} municipalities,",
                            "{n_munis} municipalities of {n_regions} regions,")
        text = text.replace(MUNICIPALITY_ROW, REGION_ROW + MUNICIPALITY_ROW)
    return text.format(
        n_schools=c["schools"], n_munis=c["municipalities"], n_regions=c.get("regions", 1),
        seed=spec["seed"],
        years=", ".join(str(y) for y in years), last=years[-1],
        second=years[1] if len(years) > 1 else "—",
        b_ses=sm["b_ses"], b_comp=sm["b_comp"], sd_u=sm["sd_school_effect"],
        sd_v=sm["sd_year_effect"], sd_e=sm["sd_student"],
        n_res=c["planted_resilient"], res_q=f"{res['max_ses_quantile']:.0%}",
        res_n=res["min_participants_per_grade"], res_u=res["school_effect"],
        n_low=c["planted_low"], low_q=f"{low['max_ses_quantile']:.0%}",
        low_n=low["min_participants_per_grade"], low_u=low["school_effect"],
        n_inf=c["planted_inflated_vpr"], inf_q=f"{inf['max_ses_quantile']:.0%}",
        inf_n=inf["min_participants_per_grade"], inf_shift=inf["vpr_shift"],
        closed=", ".join(params["closed_schools"]) or "none",
        opened=", ".join(params["opened_schools"]) or "none", n_shnor=c["meets_shnor"],
    )


MUNICIPALITY_ROW = "| `municipality` | its municipality |\n"
REGION_ROW = ("| `region` | its region (several regions only; a municipality lies in exactly one, "
              "and municipality names are unique across regions) |\n")
TRUTH_README = """\
# Planted ground truth of the synthetic demo region

Generated by `analysis.demo.synth`: {n_schools} schools in {n_munis} municipalities, years {years},
seed {seed}.

**The pipeline never reads this folder**: it is the answer key against which tests check
what the pipeline finds in `data/raw/`.

Files: `truth.csv` (one row per school), `truth_years.csv` (one row per school-year),
`truth_procedures.csv` (one row per row of `results.csv`: the true expected shares of «2»
and of «4»/«5»), `truth.json` (every generating parameter, the spec, the calibrated mark
thresholds and the counts of each planted group).

## Columns of `truth.csv`

| column | meaning |
|---|---|
| `school_id` | the school's code, as in `schools.csv` (string with leading zeros) |
| `municipality` | its municipality |
| `school_type` | `basic`, `secondary`, `advanced`, `gymnasium`, `lyceum`, `adapted`, `other` |
| `settlement_type` | `city`, `town`, `village` |
| `context_group` | municipality kind × settlement type: `urban/city`, `urban/town`, \
`rural/town`, `rural/village` (`urban` = городской округ, `rural` = муниципальный район) |
| `latent_ses` | the school's latent social status s_i (before the yearly drift N(0, 0.05)) |
| `school_effect` | the persistent school effect u_i on students' latent scores |
| `planted_resilient` | planted resilient school (see below) |
| `planted_low` | planted low-result school (see below) |
| `planted_inflated_vpr` | planted school with inflated ВПР results (see below) |
| `opened_year` | year from which a newly opened school is present (empty otherwise) |
| `closed_year` | first year in which a closed school is absent (empty otherwise) |
| `meets_shnor` | the ШНОР rule for the last year, computed from the generated `results` |

## Columns of `truth_years.csv`

One row per school present in a year (the rows of `schools.csv`, in the same order).

| column | meaning |
|---|---|
| `school_id` | the school's code |
| `year` | the year |
| `latent_ses_year` | the school's latent social status that year, s_iy = s_i + N(0, 0.05) |
| `year_effect` | the school-year effect v_iy on students' latent scores |
| `effect` | the school's true effect that year, u_i + v_iy (student-SD units) |
| `participants` | ВПР + ОГЭ sittings (student × assessment) that year; 0 without results |

## Columns of `truth_procedures.csv`

One row per row of `results.csv` (school × year × procedure × subject × grade, same order).

| column | meaning |
|---|---|
| `school_id`, `year`, `procedure`, `subject`, `grade` | the result row's key |
| `participants` | its participants (as in `results.csv`) |
| `expected_share_low` | true probability of failing: «2» (ВПР, ОГЭ) or ЕГЭ below the minimum |
| `expected_share_good` | true probability of «4» or «5» (ВПР, ОГЭ); empty for ЕГЭ |

Both come analytically from the generating model, not from the drawn students.  Given the
school-year, a student's latent score is y ~ N(mu, sd) with
mu = (b_ses + b_comp)·s_iy + type effect + u_i + v_iy + d_assessment (+ the ВПР shift of a
planted inflated school) and sd = sqrt(b_ses²·0.8² + {sd_e}²).  A score
clip(round(c0 + c1·y), lo, hi) is below a threshold k (lo < k ≤ hi) exactly when
c0 + c1·y < k − 0.5, so P(score < k) = Φ(((k − 0.5 − c0)/c1 − mu)/sd); the thresholds are
the calibrated `cut_points` (ВПР, ОГЭ) and the ЕГЭ minima.  The observed share of «2» of a
row is a binomial draw around `expected_share_low`, except for the planted low schools in
the last two years, whose student noise was redrawn until they meet the ШНОР rule (their
observed shares are selected upwards).

## The generating model

- Municipality status m_j ~ N(0, 0.5), shifted up for urban districts (городской округ).
- School status s_i = m_j + settlement effect (city +0.3, town 0, village −0.4) + type
  effect (gymnasium/lyceum +0.5, advanced +0.3, basic −0.3, adapted −0.6) + N(0, 0.6);
  each year s_iy = s_i + N(0, 0.05).
- Social indicators: shares of a binomial draw over the enrolment with probability
  logistic in s_iy plus a persistent school noise; resource factors likewise (weakly related
  to s).  Cells are missing at random at the spec's `missing_rate`; in addition about 0.5%
  of school-years (never of a planted school) lose all seven social indicators.
- Students: cohorts per grade ~ Poisson(enrolment / 11) (grade 11: 40% of that, only in
  schools with a grade 11); each student sits each of the grade's two assessments with
  probability 0.93; ses = s_iy + N(0, 0.8);
  y = b_ses·ses + b_comp·s_iy + type effect + u_i + v_iy + d_assessment + e with
  b_ses = {b_ses}, b_comp = {b_comp}, u_i ~ N(0, {sd_u}), v_iy ~ N(0, {sd_v}), e ~ N(0, {sd_e})
  (standard deviations); the type effects and d_assessment are in `truth.json`.
- ВПР (grades 5, 6) and ОГЭ (grade 9): primary score clip(round(20 + 6y), 0, 40), marks from
  primary-score thresholds calibrated on the whole region (`cut_points` in `truth.json`).
  ЕГЭ (grade 11): rus clip(round(60 + 15y), 0, 100), math_profile clip(round(50 + 18y), 0,
  100); below the minimum: rus < 24, math_profile < 27.
- `adapted` schools (АООП) write no result rows at all: in this region they do not sit
  ВПР/ОГЭ/ЕГЭ.  They are in `schools.csv` all the same.

## Planted groups

"Participants per grade" is the mean number of participants of a school's ВПР/ОГЭ result
rows over all years; status quantiles are taken over schools with results.  The school that
closes and the one that opens are never planted.

- **Resilient** ({n_res} schools): chosen at random among schools in the bottom {res_q} of
  s_i with at least {res_n} participants per grade; their school effect is set to
  u_i = +{res_u}.  None of them is inflated.
- **Low** ({n_low} schools): chosen at random among the other schools with at least
  {low_n} participants per grade and s_i below its {low_q} quantile (a school at the very
  top of the social scale would not reach 30% of «2»); u_i = {low_u}.
  The student noise of a planted low school in the last two years is redrawn until the
  school meets the ШНОР rule, so every planted low school does.
- **Inflated ВПР** ({n_inf} schools): chosen at random among the other schools with at least
  {inf_n} participants per grade (so that the ВПР-over-ОГЭ screen can see them) and s_i
  below its {inf_q} quantile (near the ceiling of «4»/«5» an inflation cannot be seen);
  their students' ВПР latent scores get +{inf_shift} before scoring and marking
  (ОГЭ and ЕГЭ untouched).  Some of them are in unfavourable context: a school whose ВПР
  results are not objective must not be called resilient.
- **Closing school** ({closed}): an ordinary secondary school present in every year but the
  last ({last}); `closed_year` = {last}.
- **Opening school** ({opened}): an ordinary secondary school absent in the first year and
  present from {second}; `opened_year` = {second}.

## The ШНОР rule (`meets_shnor`, {n_shnor} schools)

For the last year Y: a procedure (one procedure × subject × grade row of `results`) is low
when n_mark2 / participants (ВПР, ОГЭ) or n_below_min / participants (ЕГЭ) is at least 0.30.
A school meets the rule if it has at least two low procedures in Y, or at least one in Y
and at least one in Y − 1.  Every school with results can meet it, not only planted ones:
small schools meet it by chance.
"""
