"""The synthetic demo region: contract tables, determinism and the planted ground truth.

Most tests use a small region (80 schools in 4 municipalities); the default region (about
1,000 schools) checks realism and the expected shares of ``truth_procedures`` against the
drawn students.  The ШНОР rule and the expected shares are recomputed here independently of
:mod:`analysis.demo.synth`.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from analysis.demo.synth import (
    TRUTH_COLUMNS,
    TRUTH_PROCEDURES_COLUMNS,
    TRUTH_YEARS_COLUMNS,
    Region,
    RegionSpec,
    generate_region,
    main,
    write_region,
)
from analysis.ingest import io, schema

SMALL = RegionSpec(n_municipalities=4, n_schools=80, seed=7)
SMALL_STUDENTS = RegionSpec(n_municipalities=4, n_schools=80, seed=7, write_students=True)
SOCIAL = list(schema.SOCIAL_INDICATORS)
INDICATORS = list(schema.SCHOOLS_OPTIONAL)


@pytest.fixture(scope="module")
def small() -> Region:
    return generate_region(SMALL)


@pytest.fixture(scope="module")
def small_students() -> Region:
    return generate_region(SMALL_STUDENTS)


# --- helpers: independent recomputations ----------------------------------------------------


def shnor_rule(results: pd.DataFrame, year: int, threshold: float = 0.30) -> pd.Series:
    """The federal ШНОР rule for ``year``: bool per school_id with results in year-1 or year."""
    r = results.loc[results["year"].isin([year - 1, year])].copy()
    marked = r["procedure"].isin(["VPR", "OGE"])
    n_low = np.where(marked, r["n_mark2"].astype("float64"), r["n_below_min"].astype("float64"))
    r["low"] = n_low / r["participants"] >= threshold - 1e-12
    counts = r.loc[r["low"]].groupby(["school_id", "year"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=r["school_id"].unique(), columns=[year - 1, year],
                            fill_value=0)
    now, before = counts[year], counts[year - 1]
    return ((now >= 2) | ((now >= 1) & (before >= 1))).rename("shnor")


def quality(results: pd.DataFrame, procedures=("VPR", "OGE")) -> pd.DataFrame:
    """Share of marks 4+5 per school over all years and the given procedures."""
    r = results.loc[results["procedure"].isin(procedures)]
    g = r.assign(good=r["n_mark4"] + r["n_mark5"]).groupby("school_id")[
        ["good", "participants"]].sum().astype("float64")
    return g.assign(q=g["good"] / g["participants"])


def truth_of(region: Region) -> pd.DataFrame:
    return region.truth.set_index("school_id")


def with_results(region: Region) -> pd.DataFrame:
    t = truth_of(region)
    return t.loc[t.index.isin(region.results["school_id"])]


# --- determinism ------------------------------------------------------------------------------


def test_same_spec_gives_identical_tables(small):
    again = generate_region(SMALL)
    for name in ("schools", "results", "truth", "truth_years", "truth_procedures"):
        pd.testing.assert_frame_equal(getattr(small, name), getattr(again, name))
    assert small.truth_params == again.truth_params
    assert small.students is None


def test_written_files_are_byte_identical(tmp_path, small_students):
    a = write_region(small_students, tmp_path / "a" / "raw", tmp_path / "a" / "truth")
    b = write_region(generate_region(SMALL_STUDENTS), tmp_path / "b" / "raw",
                     tmp_path / "b" / "truth")
    assert [p.name for p in a] == ["schools.csv", "results.csv", "students.parquet",
                                   "truth.csv", "truth_years.csv", "truth_procedures.csv",
                                   "truth.json", "README.md"]
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name


def test_no_students_file_unless_asked(tmp_path, small):
    paths = write_region(small, tmp_path / "raw", tmp_path / "truth")
    assert not (tmp_path / "raw" / "students.parquet").exists()
    assert {p.name for p in paths} == {"schools.csv", "results.csv", "truth.csv",
                                       "truth_years.csv", "truth_procedures.csv", "truth.json",
                                       "README.md"}


def test_other_spec_or_seed_gives_another_region(small):
    bigger = generate_region(RegionSpec(n_municipalities=4, n_schools=90, seed=7))
    other_seed = generate_region(RegionSpec(n_municipalities=4, n_schools=80, seed=8))
    assert len(bigger.truth) == 90 and len(small.truth) == 80
    assert not small.results.equals(other_seed.results)
    assert not small.schools["school_name"].equals(other_seed.schools["school_name"])


# --- the contract -----------------------------------------------------------------------------


def test_columns_are_the_contract_in_order_with_types(small_students):
    s, r, st_ = small_students.schools, small_students.results, small_students.students
    assert tuple(s.columns) == schema.SCHOOLS_COLUMNS
    assert tuple(r.columns) == schema.RESULTS_COLUMNS
    assert tuple(st_.columns) == schema.STUDENTS_COLUMNS
    assert tuple(small_students.truth.columns) == TRUTH_COLUMNS
    for col in ("year", "enrollment"):
        assert s[col].dtype == "int64"
    for col in ("school_id", "school_name", "municipality", "settlement_type", "school_type"):
        assert s[col].dtype == "string", col
    assert (s[INDICATORS].dtypes == "float64").all()
    for col in ("year", "grade", "participants"):
        assert r[col].dtype == "int64"
    for col in (*schema.MARK_COUNTS, "n_below_min"):
        assert r[col].dtype == "Int64"
    assert r[[*schema.MARK_SHARES, "pct_below_min"]].isna().all().all()
    assert st_["mark"].dtype == "Int64" and st_["score"].dtype == "float64"


def test_rows_are_sorted_by_their_keys(small_students):
    s, r, st_ = small_students.schools, small_students.results, small_students.students
    assert s.equals(s.sort_values(list(schema.SCHOOL_KEY)).reset_index(drop=True))
    assert r.equals(r.sort_values(list(schema.RESULT_KEY)).reset_index(drop=True))
    key = [*schema.RESULT_KEY, "student_key"]
    assert st_.equals(st_.sort_values(key).reset_index(drop=True))


def test_csv_keeps_leading_zeros_and_writes_integers(tmp_path, small):
    write_region(small, tmp_path / "raw", tmp_path / "truth")
    raw = pd.read_csv(tmp_path / "raw" / "schools.csv", dtype=str, keep_default_na=False)
    assert raw["school_id"].str.fullmatch(r"0[1-4]\d{4}").all()
    assert list(raw["school_id"]) == list(small.schools["school_id"])
    res = pd.read_csv(tmp_path / "raw" / "results.csv", dtype=str, keep_default_na=False)
    for col in ("year", "grade", "participants", *schema.MARK_COUNTS, "n_below_min"):
        assert res[col].str.fullmatch(r"\d*").all(), col  # integers or empty, never "3.0"
    assert raw["share_low_income"].str.fullmatch(r"|0\.\d{4}|1\.0000").all()
    ege = res.loc[res["procedure"] == "EGE", "mean_score"]
    assert ege.str.fullmatch(r"\d+\.\d{2}").all()
    assert (res.loc[res["procedure"] != "EGE", "mean_score"] == "").all()
    truth = pd.read_csv(tmp_path / "truth" / "truth.csv", dtype=str)
    assert list(truth["school_id"]) == list(small.truth["school_id"])


def test_the_project_reader_accepts_the_files(tmp_path, small_students):
    write_region(small_students, tmp_path / "raw", tmp_path / "truth")
    schools = io.read_table(tmp_path / "raw", "schools")
    results = io.read_table(tmp_path / "raw", "results")
    students = io.read_table(tmp_path / "raw", "students")
    assert len(schools) == len(small_students.schools)
    assert schools["school_id"].tolist() == small_students.schools["school_id"].tolist()
    np.testing.assert_allclose(results["participants"], small_students.results["participants"])
    assert len(students) == len(small_students.students)


def test_mark_counts_and_threshold_counts(small):
    r = small.results
    marked = r["procedure"].isin(schema.MARKED_PROCEDURES)
    m = r.loc[marked]
    assert (m[list(schema.MARK_COUNTS)].sum(axis=1) == m["participants"]).all()
    assert m["n_below_min"].isna().all() and m["mean_score"].isna().all()
    e = r.loc[~marked]
    assert set(e["procedure"]) == {"EGE"} and set(e["subject"]) == {"rus", "math_profile"}
    assert e[list(schema.MARK_COUNTS)].isna().all().all()
    assert (e["n_below_min"] <= e["participants"]).all()
    assert e["mean_score"].between(0, 100).all()
    assert (r["participants"] > 0).all()
    grades = r.groupby("procedure")["grade"].unique().map(sorted).to_dict()
    assert grades == {"EGE": [11], "OGE": [9], "VPR": [5, 6]}


def test_shares_are_fractions_with_four_decimals(small):
    x = small.schools[INDICATORS]
    assert ((x >= 0) & (x <= 1) | x.isna()).all().all()
    assert np.allclose(x.fillna(0), x.fillna(0).round(4))


def test_keys_are_unique_and_results_belong_to_listed_schools(small):
    s, r = small.schools, small.results
    assert not s.duplicated(list(schema.SCHOOL_KEY)).any()
    assert not r.duplicated(list(schema.RESULT_KEY)).any()
    keys = set(zip(s["year"], s["school_id"], strict=True))
    assert set(zip(r["year"], r["school_id"], strict=True)) <= keys
    assert set(s["year"]) == set(SMALL.years) == set(r["year"])


# --- the region's make-up ---------------------------------------------------------------------


@pytest.mark.parametrize(("n_municipalities", "n_schools", "seed"),
                         [(4, 80, 7), (4, 80, 1), (10, 30, 1), (10, 30, 2), (10, 30, 3)])
def test_every_settlement_and_school_type_appears(n_municipalities, n_schools, seed):
    region = generate_region(RegionSpec(n_municipalities=n_municipalities, n_schools=n_schools,
                                        seed=seed))
    for year, s in region.schools.groupby("year"):
        assert set(s["settlement_type"]) == set(schema.SETTLEMENT_TYPES), year
        assert set(s["school_type"]) == set(schema.SCHOOL_TYPES), year


def test_names_are_russian_unique_and_one_needs_escaping(small):
    s = small.schools.query("year == 2024")
    assert not s.duplicated(["municipality", "school_name"]).any()
    tricky = s.loc[s["school_name"].str.contains("&", regex=False), "school_name"]
    assert len(tricky) == 1 and '"' in tricky.iloc[0] and "«" in tricky.iloc[0]
    assert s["school_name"].str.contains('"', regex=False).sum() == 1
    assert s["school_name"].str.contains("№|с\\.|ООШ").mean() > 0.9
    munis = s[["municipality"]].drop_duplicates()["municipality"]
    assert munis.is_unique and len(munis) == 4
    assert munis.str.contains("городской округ|муниципальный район|^Город ").all()


def test_adapted_schools_have_no_results(small):
    t = truth_of(small)
    adapted = set(t.index[t["school_type"] == "adapted"])
    assert adapted and adapted <= set(small.schools["school_id"])
    assert not adapted & set(small.results["school_id"])
    assert not t.loc[list(adapted), "meets_shnor"].any()


def test_one_school_closes_and_one_opens(small):
    t, s = truth_of(small), small.schools
    first, second, last = SMALL.years
    closed = t.index[t["closed_year"].notna()]
    opened = t.index[t["opened_year"].notna()]
    assert len(closed) == 1 and len(opened) == 1 and closed[0] != opened[0]
    assert t.loc[closed[0], "closed_year"] == last and t.loc[opened[0], "opened_year"] == second
    assert (t.loc[[closed[0], opened[0]], "school_type"] == "secondary").all()
    years_of = s.groupby("school_id")["year"].apply(set)
    assert years_of[closed[0]] == {first, second}
    assert years_of[opened[0]] == {second, last}
    assert s.groupby("year").size().to_dict() == {first: 79, second: 80, last: 79}
    assert (years_of.drop([closed[0], opened[0]]).map(len) == 3).all()


def test_missing_indicators_at_the_requested_rate(small):
    x = small.schools[INDICATORS]
    assert 0.03 <= x.isna().to_numpy().mean() <= 0.07
    all_social = x[SOCIAL].isna().all(axis=1)
    assert 1 <= all_social.sum() <= max(1, 0.01 * len(x))
    planted = truth_of(small).loc[lambda t: t["planted_resilient"] | t["planted_low"]
                                  | t["planted_inflated_vpr"]].index
    assert not small.schools.loc[all_social, "school_id"].isin(planted).any()


def test_no_missing_cells_when_the_rate_is_zero():
    region = generate_region(RegionSpec(n_municipalities=4, n_schools=80, seed=7,
                                        missing_rate=0.0))
    assert region.schools[INDICATORS].notna().all().all()


def test_many_village_schools_have_small_cohorts(small):
    r = small.results.merge(small.schools[["year", "school_id", "settlement_type"]],
                            on=["year", "school_id"])
    village = r.loc[r["settlement_type"] == "village"]
    assert (village["participants"] < 10).mean() > 0.5
    small_rows = village.loc[village["participants"].between(2, 9)]
    assert small_rows["school_id"].nunique() >= 5
    city = r.loc[r["settlement_type"] == "city"]
    assert city["participants"].median() > 30


def test_grade_11_only_where_a_school_has_one(small):
    t = truth_of(small)
    ege = set(small.results.loc[small.results["procedure"] == "EGE", "school_id"])
    assert not set(t.loc[list(ege), "school_type"]) & {"basic", "adapted"}


# --- planted truth ----------------------------------------------------------------------------


def test_context_group_is_municipality_kind_by_settlement_type():
    region = generate_region(RegionSpec(n_municipalities=8, n_schools=200, seed=3))
    t = truth_of(region)
    urban = t["municipality"].str.contains("городской округ|^Город ")
    expected = np.where(urban, "urban", "rural") + "/" + t["settlement_type"].astype(str)
    assert (t["context_group"] == expected).all()
    assert t["context_group"].dtype == "string"
    # urban districts have no villages and rural ones no city (SETTLEMENT_MIX)
    assert set(t["context_group"]) == {"urban/city", "urban/town", "rural/town",
                                       "rural/village"}
    assert t.loc[urban, "municipality"].nunique() == region.truth_params["counts"][
        "municipalities_urban"]



def test_meets_shnor_is_the_rule_applied_to_the_results(small):
    t = truth_of(small)
    last = SMALL.years[-1]
    present = small.schools.loc[small.schools["year"] == last, "school_id"]
    rule = shnor_rule(small.results, last).reindex(t.index, fill_value=False)
    rule[~rule.index.isin(present)] = False
    assert rule.to_dict() == t["meets_shnor"].to_dict()


def test_planted_low_schools_meet_the_shnor_rule(small):
    t = truth_of(small)
    low = t.index[t["planted_low"]]
    assert len(low) >= 1
    assert (t.loc[low, "school_effect"] == -1.0).all()
    assert shnor_rule(small.results, SMALL.years[-1]).reindex(low).fillna(False).all()


def test_planted_resilient_schools_beat_their_context():
    region = generate_region(RegionSpec(n_municipalities=8, n_schools=300, seed=11))
    t = with_results(region)
    q = quality(region.results).join(t["latent_ses"], how="inner")
    slope, intercept = np.polyfit(q["latent_ses"], q["q"], 1, w=np.sqrt(q["participants"]))
    residual = q["q"] - (intercept + slope * q["latent_ses"])
    res = t.index[t["planted_resilient"]]
    assert len(res) >= 5
    assert (t.loc[res, "latent_ses"] <= t["latent_ses"].quantile(0.30) + 1e-9).all()
    assert (t.loc[res, "school_effect"] == 1.0).all()
    assert (residual[res] > 0).all()
    assert not (t.loc[res, "planted_low"] | t.loc[res, "planted_inflated_vpr"]).any()


def test_planted_inflated_schools_stand_out_at_vpr_only(small):
    t = truth_of(small)
    inflated = t.index[t["planted_inflated_vpr"]]
    assert len(inflated) >= 1
    vpr, oge = quality(small.results, ("VPR",)), quality(small.results, ("OGE",))
    region_vpr = vpr["good"].sum() / vpr["participants"].sum()
    region_oge = oge["good"].sum() / oge["participants"].sum()
    gap = (vpr["q"] - region_vpr) - (oge["q"] - region_oge)
    assert (gap[inflated] > 0.1).all()
    assert gap[inflated].min() > gap.median()


def test_planted_groups_are_disjoint_and_ordinary(small):
    t = truth_of(small)
    groups = t[["planted_resilient", "planted_low", "planted_inflated_vpr"]]
    assert (groups.sum(axis=1) <= 1).all()
    planted = groups.any(axis=1)
    assert t.loc[planted, "opened_year"].isna().all() and t.loc[planted, "closed_year"].isna().all()
    assert set(t.index[planted]) <= set(small.results["school_id"])
    counts = small.truth_params["counts"]
    assert counts["planted_low"] == t["planted_low"].sum()
    assert counts["planted_resilient"] == t["planted_resilient"].sum()
    assert counts["planted_inflated_vpr"] == t["planted_inflated_vpr"].sum()


# --- truth per school-year and per result row ------------------------------------------------


def observed_shares(results: pd.DataFrame) -> pd.DataFrame:
    """Observed share of «2» (ЕГЭ: below the minimum) and of «4»/«5» of each result row."""
    n = results["participants"].astype("float64")
    low = results["n_mark2"].fillna(results["n_below_min"]).astype("float64") / n
    good = (results["n_mark4"] + results["n_mark5"]).astype("float64") / n
    return pd.DataFrame({"low": low, "good": good})


def test_truth_years_are_the_panel_with_the_true_effect(small):
    ty, t = small.truth_years, truth_of(small)
    assert tuple(ty.columns) == TRUTH_YEARS_COLUMNS
    assert ty["school_id"].dtype == "string"
    assert ty["year"].dtype == "int64" and ty["participants"].dtype == "int64"
    assert ty[["school_id", "year"]].equals(small.schools[["school_id", "year"]])
    u = t.loc[ty["school_id"], "school_effect"].to_numpy()
    np.testing.assert_allclose(ty["effect"], u + ty["year_effect"], atol=2e-4)
    assert 0.07 <= ty["year_effect"].std() <= 0.13
    drift = ty["latent_ses_year"] - t.loc[ty["school_id"], "latent_ses"].to_numpy()
    assert drift.abs().max() < 0.3 and 0.03 <= drift.std() <= 0.07
    r = small.results.loc[small.results["procedure"].isin(["VPR", "OGE"])]
    sittings = r.groupby(["school_id", "year"])["participants"].sum()
    got = ty.set_index(["school_id", "year"])["participants"]
    assert got.to_dict() == sittings.reindex(got.index, fill_value=0).to_dict()
    adapted = ty["school_id"].isin(t.index[t["school_type"] == "adapted"])
    assert (ty.loc[adapted, "participants"] == 0).all() and (ty.loc[~adapted, "participants"]
                                                             > 0).all()


def test_truth_procedures_are_the_result_rows(small):
    tp, r = small.truth_procedures, small.results
    assert tuple(tp.columns) == TRUTH_PROCEDURES_COLUMNS
    key = ["school_id", "year", "procedure", "subject", "grade", "participants"]
    assert tp[key].equals(r[key])
    for col in ("expected_share_low", "expected_share_good"):
        x = tp[col]
        assert x.dtype == "float64" and ((x >= 0) & (x <= 1) | x.isna()).all(), col
    ege = tp["procedure"] == "EGE"
    assert tp.loc[ege, "expected_share_good"].isna().all()
    assert tp.loc[~ege, ["expected_share_low", "expected_share_good"]].notna().all().all()
    assert (tp.loc[~ege, "expected_share_low"] + tp.loc[~ege, "expected_share_good"]
            <= 1 + 1e-4).all()


def test_expected_shares_follow_the_generating_model(small):
    """Recomputed from truth.json, truth.csv and truth_years: y ~ N(mu, sd) given the
    school-year, and a score below a threshold is y below its latent cut-point."""
    tp, t, params = small.truth_procedures, truth_of(small), small.truth_params
    sm, ege = params["model"]["student_model"], params["model"]["ege"]
    years = small.truth_years.set_index(["school_id", "year"])
    row = years.loc[pd.MultiIndex.from_frame(tp[["school_id", "year"]])]
    school = t.loc[tp["school_id"]]
    assessment = tp["procedure"] + "/" + tp["subject"] + "/" + tp["grade"].astype(str)
    vpr = (tp["procedure"] == "VPR").to_numpy()
    shift = np.where(vpr & school["planted_inflated_vpr"].to_numpy(),
                     params["model"]["planted"]["inflated_vpr"]["vpr_shift"], 0.0)
    mu = ((sm["b_ses"] + sm["b_comp"]) * row["latent_ses_year"].to_numpy()
          + school["school_type"].map(sm["type_effect"]).to_numpy(dtype=float)
          + row["effect"].to_numpy() + assessment.map(sm["d_assessment"]).to_numpy(dtype=float)
          + shift)
    sd = np.sqrt(sm["b_ses"] ** 2 * sm["sd_student_ses"] ** 2 + sm["sd_student"] ** 2)
    cuts = {proc: c["latent_cut_points"] for proc, c in params["cut_points"].items()}
    ege_cut = {s: (ege["min_score"][s] - 0.5 - c["intercept"]) / c["slope"]
               for s, c in ege["score"].items()}
    low_cut = np.where(tp["procedure"] == "EGE", tp["subject"].map(ege_cut),
                       tp["procedure"].map(lambda proc: cuts.get(proc, [np.nan])[0]))
    good_cut = tp["procedure"].map(lambda proc: cuts.get(proc, [np.nan, np.nan])[1])
    np.testing.assert_allclose(tp["expected_share_low"], norm.cdf((low_cut - mu) / sd),
                               atol=5e-4)
    np.testing.assert_allclose(tp["expected_share_good"], norm.sf((good_cut - mu) / sd),
                               atol=5e-4)
    inflated_vpr = vpr & school["planted_inflated_vpr"].to_numpy()
    assert inflated_vpr.any()
    without = norm.cdf((low_cut - mu + shift) / sd)
    assert (tp.loc[inflated_vpr, "expected_share_low"] < without[inflated_vpr]).all()


def test_expected_shares_match_the_drawn_students(demo_region):
    """The observed share of each result row is a binomial draw around the expected share."""
    tp = demo_region.truth_procedures
    obs = observed_shares(demo_region.results)
    assert abs(obs["low"].mean() - tp["expected_share_low"].mean()) < 0.01
    marked = tp["procedure"] != "EGE"
    assert abs(obs.loc[marked, "good"].mean()
               - tp.loc[marked, "expected_share_good"].mean()) < 0.01
    big = tp["participants"] >= 50
    assert big.sum() > 1000
    assert np.corrcoef(obs.loc[big, "low"], tp.loc[big, "expected_share_low"])[0, 1] > 0.9
    assert np.corrcoef(obs.loc[big & marked, "good"],
                       tp.loc[big & marked, "expected_share_good"])[0, 1] > 0.9
    # standardised binomial residuals: mean 0, SD 1 (the model is exact, not only correlated)
    p = tp["expected_share_low"].clip(1e-3, 1 - 1e-3)
    z = (obs["low"] - p) / np.sqrt(p * (1 - p) / tp["participants"])
    assert abs(z.mean()) < 0.05 and 0.95 <= z.std() <= 1.05


# --- students ---------------------------------------------------------------------------------


def test_students_aggregate_exactly_to_results(small_students):
    st_, r = small_students.students, small_students.results
    key = list(schema.RESULT_KEY)
    g = st_.groupby(key, sort=True)
    agg = pd.DataFrame({"participants": g.size()})
    for k, col in zip(range(2, 6), schema.MARK_COUNTS, strict=True):
        agg[col] = g["mark"].apply(lambda m, k=k: int((m == k).sum()))
    below = st_["score"] < st_["subject"].map({"rus": 24, "math_profile": 27})
    agg["n_below_min"] = st_.assign(b=below & (st_["procedure"] == "EGE")).groupby(key)["b"].sum()
    agg["mean_score"] = g["score"].mean().round(2)
    merged = r.set_index(key).merge(agg, left_index=True, right_index=True, how="outer",
                                    suffixes=("", "_st"))
    assert (merged["participants"] == merged["participants_st"]).all()
    marked = merged.index.get_level_values("procedure") != "EGE"
    for col in schema.MARK_COUNTS:
        assert (merged.loc[marked, col] == merged.loc[marked, col + "_st"]).all(), col
    assert (merged.loc[~marked, "n_below_min"] == merged.loc[~marked, "n_below_min_st"]).all()
    np.testing.assert_allclose(merged.loc[~marked, "mean_score"],
                               merged.loc[~marked, "mean_score_st"], atol=0.006)


def test_students_are_pseudonymous_and_plausible(small_students):
    st_ = small_students.students
    assert st_["student_key"].str.fullmatch(r"s\d{6,}").all()
    assert not st_.duplicated([*schema.RESULT_KEY, "student_key"]).any()
    ege = st_["procedure"] == "EGE"
    assert st_.loc[ege, "mark"].isna().all()
    assert st_.loc[~ege, "mark"].between(2, 5).all()
    assert st_.loc[~ege, "score"].between(0, 40).all()
    assert st_.loc[ege, "score"].between(0, 100).all()
    # a student's marks rise with the primary score (marks come from score thresholds)
    m = st_.loc[~ege].groupby(["procedure", "mark"])["score"].agg(["min", "max"])
    for proc in ("VPR", "OGE"):
        x = m.loc[proc]
        assert (x["max"].to_numpy()[:-1] < x["min"].to_numpy()[1:]).all()
    # the same student sits both subjects of a grade with the same ses
    pairs = st_.groupby(["year", "student_key"])["ses"].nunique()
    assert (pairs == 1).all()
    assert st_["ses"].corr(st_["score"].where(~ege)) > 0.1


# --- files and command line -------------------------------------------------------------------


def test_truth_files_document_the_truth(tmp_path, small):
    write_region(small, tmp_path / "raw", tmp_path / "truth")
    text = (tmp_path / "truth" / "truth.json").read_text(encoding="utf-8")
    params = json.loads(text)
    assert text == json.dumps(params, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert params["spec"]["n_schools"] == 80 and params["spec"]["years"] == list(SMALL.years)
    assert params["model"]["student_model"]["b_ses"] == pytest.approx(0.3)
    assert params["counts"]["result_rows"] == len(small.results)
    readme = (tmp_path / "truth" / "README.md").read_text(encoding="utf-8")
    assert "never reads this folder" in readme
    for col in (*TRUTH_COLUMNS, *TRUTH_YEARS_COLUMNS, *TRUTH_PROCEDURES_COLUMNS):
        assert f"`{col}`" in readme, col
    assert "`truth_years.csv`" in readme and "`truth_procedures.csv`" in readme
    assert "adapted" in readme and "Inflated" in readme and "Resilient" in readme


def test_cli_writes_the_region_and_returns_zero(tmp_path, capsys):
    code = main(["--out", str(tmp_path / "raw"), "--truth", str(tmp_path / "truth"),
                 "--n-schools", "40", "--n-municipalities", "3", "--seed", "3",
                 "--years", "2024", "2025", "--students"])
    assert code == 0
    for name in ("schools.csv", "results.csv", "students.parquet"):
        assert (tmp_path / "raw" / name).exists(), name
    for name in ("truth.csv", "truth_years.csv", "truth_procedures.csv", "truth.json",
                 "README.md"):
        assert (tmp_path / "truth" / name).exists(), name
    schools = pd.read_csv(tmp_path / "raw" / "schools.csv", dtype=str)
    assert set(schools["year"]) == {"2024", "2025"} and schools["school_id"].nunique() == 40
    assert "40 schools" in capsys.readouterr().out


def test_cli_reads_the_demo_section_of_params(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"year": 2025, "demo": {
        "n_municipalities": 3, "n_schools": 45, "years": [2024, 2025], "seed": 5}}),
        encoding="utf-8")
    assert main(["--params", str(params), "--seed", "6", "--out", str(tmp_path / "raw"),
                 "--truth", str(tmp_path / "truth")]) == 0
    spec = json.loads((tmp_path / "truth" / "truth.json").read_text(encoding="utf-8"))["spec"]
    assert spec == {"n_municipalities": 3, "n_schools": 45, "years": [2024, 2025], "seed": 6,
                    "missing_rate": 0.05, "write_students": False}


def test_cli_no_students_overrides_the_params_file(tmp_path):
    """``make data STUDENTS=0``: the index-only region whatever ``demo.write_students`` says."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"year": 2025, "demo": {
        "n_municipalities": 3, "n_schools": 40, "years": [2024, 2025], "seed": 5,
        "write_students": True}}), encoding="utf-8")
    assert main(["--params", str(params), "--no-students", "--out", str(tmp_path / "raw"),
                 "--truth", str(tmp_path / "truth")]) == 0
    assert (tmp_path / "raw" / "schools.csv").exists()
    assert not (tmp_path / "raw" / "students.parquet").exists()
    spec = json.loads((tmp_path / "truth" / "truth.json").read_text(encoding="utf-8"))["spec"]
    assert spec["write_students"] is False
    with pytest.raises(SystemExit):
        main(["--students", "--no-students", "--out", str(tmp_path / "r"),
              "--truth", str(tmp_path / "t")])


@pytest.mark.parametrize("spec", [
    RegionSpec(n_municipalities=1),
    RegionSpec(n_municipalities=10, n_schools=29),
    RegionSpec(years=(2025, 2024)),
    RegionSpec(years=()),
    RegionSpec(missing_rate=1.5),
])
def test_impossible_specs_are_refused(spec):
    with pytest.raises(ValueError):
        generate_region(spec)


def test_a_single_year_region_has_no_opening_or_closing():
    region = generate_region(RegionSpec(n_municipalities=3, n_schools=40, years=(2025,)))
    assert region.truth["opened_year"].isna().all() and region.truth["closed_year"].isna().all()
    assert region.schools["school_id"].nunique() == len(region.schools) == 40


@settings(max_examples=12, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1), n_municipalities=st.integers(2, 6),
       n_schools=st.integers(30, 150))
def test_invariants_hold_for_any_small_region(seed, n_municipalities, n_schools):
    n_schools = max(n_schools, 3 * n_municipalities)
    region = generate_region(RegionSpec(n_municipalities=n_municipalities, n_schools=n_schools,
                                        seed=seed))
    s, r, t = region.schools, region.results, truth_of(region)
    assert len(t) == n_schools and s.groupby("year").size().max() == n_schools
    assert s.groupby("municipality")["school_id"].nunique().min() >= 3
    assert set(s["school_type"]) == set(schema.SCHOOL_TYPES)
    assert set(s["settlement_type"]) == set(schema.SETTLEMENT_TYPES)
    assert not r.duplicated(list(schema.RESULT_KEY)).any()
    m = r.loc[r["procedure"] != "EGE"]
    assert (m[list(schema.MARK_COUNTS)].sum(axis=1) == m["participants"]).all()
    low = t.index[t["planted_low"]]
    assert shnor_rule(r, 2025).reindex(low).fillna(False).all()
    assert (s["school_name"].str.contains("&", regex=False)).groupby(s["year"]).sum().eq(1).all()


# --- scoring flags against the truth (analysis.demo.evaluate) -----------------------------------


def test_the_benchmark_scores_a_flag_against_planted_resilience():
    from analysis.demo import evaluate as bench

    truth = pd.DataFrame({
        "school_id": pd.array(["01", "02", "03", "04", "05", "06"], dtype="string"),
        "latent_ses": [-1.0, -0.8, -0.5, 0.5, 1.0, -1.2],
        "school_effect": [1.0, 1.0, 0.2, -0.3, 0.1, 1.0],
        "planted_resilient": [True, True, False, False, False, True],
    })
    # school 06 has no results in the reporting year: outside the scope
    procedures = pd.DataFrame({"school_id": ["01", "02", "03", "04", "05", "06"],
                               "year": [2025, 2025, 2025, 2025, 2025, 2024]})
    t = bench.reporting_truth(truth, procedures, 2025)
    assert list(t.index) == ["01", "02", "03", "04", "05"]
    # 02 is missing from the flags: not flagged
    flags = pd.DataFrame({"school_id": pd.array(["01", "03", "04", "05"], dtype="string"),
                          "resilient": [True, True, False, pd.NA]})
    m = bench.resilient_metrics(flags, t, "resilient")
    assert m == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "n_flagged": 2.0}
    missing = bench.resilient_metrics(flags, t, "quadrant")  # a column stage 04 did not write
    assert all(np.isnan(v) for v in missing.values())


# --- the default region -----------------------------------------------------------------------


def test_default_region_is_realistic_and_fast():
    start = time.perf_counter()
    region = generate_region()
    elapsed = time.perf_counter() - start
    assert elapsed < 30, elapsed
    s, r, t = region.schools, region.results, truth_of(region)
    mid = s.loc[s["year"] == 2024]
    assert len(mid) == 1000 and mid["municipality"].nunique() == 30
    mix = mid["school_type"].value_counts(normalize=True)
    assert 0.45 <= mix["secondary"] <= 0.65 and 0.10 <= mix["basic"] <= 0.20
    for kind in ("advanced", "gymnasium", "lyceum", "adapted", "other"):
        assert 0.03 <= mix[kind] <= 0.10, kind
    elite = mid.loc[mid["school_type"].isin(["gymnasium", "lyceum", "advanced"])]
    assert (elite["settlement_type"] == "city").mean() > 0.6
    assert (mid.loc[mid["school_type"] == "basic", "settlement_type"] == "village").mean() > 0.6
    n = len(with_results(region))
    for col, share in (("planted_resilient", 0.04), ("planted_low", 0.04),
                       ("planted_inflated_vpr", 0.02)):
        assert abs(t[col].sum() - share * n) <= 2, col
    # indicators follow the latent status, with the documented sign
    m = s.merge(region.truth[["school_id", "latent_ses"]], on="school_id")
    m = m.loc[m["school_type"] != "adapted"]
    for col, sign in schema.SOCIAL_INDICATORS.items():
        corr = m[col].corr(m["latent_ses"])
        assert 0.45 <= sign * corr <= 0.85, (col, corr)
    # region-wide mark shares near the calibration targets
    for proc, target in (("VPR", (0.15, 0.40, 0.33, 0.12)), ("OGE", (0.08, 0.40, 0.37, 0.15))):
        x = r.loc[r["procedure"] == proc, list(schema.MARK_COUNTS)].sum()
        np.testing.assert_allclose(x / x.sum(), target, atol=0.04)
    assert 0.1 <= (r["participants"] < 10).mean() <= 0.4
    assert shnor_rule(r, 2025).reindex(t.index[t["planted_low"]]).all()
